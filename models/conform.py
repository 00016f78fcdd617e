"""Put generated audio onto the project's bar grid.

Neural generators drift: MusicGen asked for 92 bpm may play at 95. This module measures the
tempo and beat phase of generated audio (onset-strength autocorrelation, numpy/scipy only),
time-stretches it onto the project tempo (a phase vocoder), trims or pads it to the exact
section length, normalises loudness (pyloudnorm) and fades the cut points.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import istft, stft

from conditioning.types import Audio

log = logging.getLogger(__name__)

_HOP = 512  # onset envelope hop at the analysis rate
_ANALYSIS_SR = 22050


@dataclass(frozen=True)
class TempoEstimate:
    """A measured tempo.

    Attributes:
        bpm: estimated tempo in beats per minute.
        phase_s: seconds from the audio start to the first beat (0 <= phase_s < one beat).
        confidence: 0-1, the normalised autocorrelation at the beat period; below about 0.1
            the audio has no clear pulse.
    """

    bpm: float
    phase_s: float
    confidence: float


@dataclass(frozen=True)
class ConformReport:
    """What :func:`conform_to_grid` measured and did (written to ``Generation.info``).

    Attributes:
        target_bpm: the project tempo over the section.
        measured_bpm: the estimated tempo of the generated audio (before stretching).
        drift_bpm: measured minus target, in bpm.
        drift_percent: drift as a percentage of the target tempo.
        confidence: pulse clarity 0-1 of the estimate.
        stretched: whether the audio was time-stretched.
        phase_shift_s: seconds trimmed from the start to put the first beat on the grid
            (negative: seconds of silence inserted because the audio was early).
    """

    target_bpm: float
    measured_bpm: float
    drift_bpm: float
    drift_percent: float
    confidence: float
    stretched: bool
    phase_shift_s: float

    def as_info(self) -> dict[str, float | bool]:
        """The report as plain values for a manifest."""
        return {
            "target_bpm": round(self.target_bpm, 3),
            "measured_bpm": round(self.measured_bpm, 3),
            "tempo_drift_bpm": round(self.drift_bpm, 3),
            "tempo_drift_percent": round(self.drift_percent, 3),
            "tempo_confidence": round(self.confidence, 3),
            "time_stretched": self.stretched,
            "phase_shift_s": round(self.phase_shift_s, 4),
        }


def onset_envelope(audio: Audio) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength of the mono mix.

    Returns:
        (envelope, frame_rate): a non-negative float64 array, one value per frame, and its
        frame rate in Hz.
    """
    from conditioning.io.audio import resample

    mono = resample(Audio(audio.mono()[None, :], audio.sample_rate), _ANALYSIS_SR).samples[0]
    if mono.size < 4 * _HOP:
        return np.zeros(0), _ANALYSIS_SR / _HOP
    # centre frame i on sample i * hop, so frame times need no offset
    mono = np.pad(mono, (1024, 0))
    _, _, spec = stft(mono, fs=_ANALYSIS_SR, nperseg=2048, noverlap=2048 - _HOP, boundary=None, padded=False)
    mag = np.log1p(100.0 * np.abs(spec))
    flux = np.maximum(np.diff(mag, axis=1), 0.0).sum(axis=0)
    env = np.concatenate([[0.0], flux])
    return env, _ANALYSIS_SR / _HOP


def estimate_tempo(
    audio: Audio, *, around_bpm: float | None = None, min_bpm: float = 50.0, max_bpm: float = 220.0
) -> TempoEstimate:
    """Estimate tempo and beat phase from onset-strength autocorrelation.

    Args:
        audio: the audio to measure (any rate, any channels).
        around_bpm: when given, search only 0.75x-1.33x of it (avoids half/double-tempo errors
            when checking drift from a known target).
        min_bpm: lowest tempo searched without ``around_bpm``.
        max_bpm: highest tempo searched without ``around_bpm``.

    Returns:
        The estimate; ``confidence`` 0 when the audio is too short or has no onsets.
    """
    env, fr = onset_envelope(audio)
    lo_bpm, hi_bpm = (around_bpm * 0.75, around_bpm * 1.33) if around_bpm else (min_bpm, max_bpm)
    fallback = TempoEstimate(bpm=around_bpm or 120.0, phase_s=0.0, confidence=0.0)
    if env.size < 8 or not np.any(env > 0):
        return fallback
    x = env - env.mean()
    n = x.size
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:n]
    if ac[0] <= 0:
        return fallback
    ac = ac / ac[0]
    lag_lo = max(1, int(math.floor(60.0 * fr / hi_bpm)))
    lag_hi = min(n - 2, int(math.ceil(60.0 * fr / lo_bpm)))
    if lag_hi <= lag_lo:
        return fallback
    # favour the true period over its multiples by also rewarding the half-period lag
    lags = np.arange(lag_lo, lag_hi + 1)
    score = ac[lags] + 0.5 * np.interp(lags * 2.0, np.arange(n), ac, right=0.0)
    best = int(lags[int(np.argmax(score))])
    # parabolic interpolation of the autocorrelation peak for sub-frame accuracy
    y0, y1, y2 = ac[best - 1], ac[best], ac[best + 1]
    denom = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    period = best + float(np.clip(shift, -0.5, 0.5))
    bpm = 60.0 * fr / period
    # beat phase: the offset whose comb of beats collects the most onset strength
    offsets = np.arange(int(math.ceil(period)))
    comb = [env[np.round(np.arange(o, n, period)).astype(int).clip(0, n - 1)].sum() for o in offsets]
    phase_frames = float(offsets[int(np.argmax(comb))])
    return TempoEstimate(bpm=bpm, phase_s=phase_frames / fr, confidence=float(max(0.0, y1)))


def time_stretch(audio: Audio, rate: float, n_fft: int = 2048) -> Audio:
    """Phase-vocoder time stretch keeping pitch.

    Args:
        audio: input audio.
        rate: speed factor; > 1 plays faster (shorter), < 1 slower (longer). The output has
            about ``num_samples / rate`` samples.
        n_fft: analysis window in samples.

    Raises:
        ValueError: ``rate`` is not positive.
    """
    if not rate > 0:
        raise ValueError(f"time-stretch rate {rate!r} must be positive")
    if abs(rate - 1.0) < 1e-9:
        return audio
    hop = n_fft // 4
    out_len = int(round(audio.num_samples / rate))
    chans = []
    for ch in audio.samples.astype(np.float64):
        _, _, spec = stft(ch, nperseg=n_fft, noverlap=n_fft - hop, boundary="even", padded=True)
        steps = np.arange(0, spec.shape[1] - 1, rate)
        bins = spec.shape[0]
        expected = 2 * np.pi * hop * np.arange(bins) / n_fft
        phase = np.angle(spec[:, 0])
        frames = np.empty((bins, steps.size), dtype=np.complex128)
        for i, t in enumerate(steps):
            k = int(t)
            frac = t - k
            mag = (1 - frac) * np.abs(spec[:, k]) + frac * np.abs(spec[:, k + 1])
            frames[:, i] = mag * np.exp(1j * phase)
            dphi = np.angle(spec[:, k + 1]) - np.angle(spec[:, k]) - expected
            dphi -= 2 * np.pi * np.round(dphi / (2 * np.pi))
            phase = phase + expected + dphi
        _, y = istft(frames, nperseg=n_fft, noverlap=n_fft - hop, boundary=True)
        y = y[:out_len]
        chans.append(np.pad(y, (0, max(0, out_len - y.size))))
    return Audio(np.stack(chans).astype(np.float32), audio.sample_rate)


def fit_length(audio: Audio, num_samples: int) -> Audio:
    """Trim or zero-pad at the end to exactly ``num_samples`` samples."""
    x = audio.samples[:, :num_samples]
    if x.shape[1] < num_samples:
        x = np.pad(x, ((0, 0), (0, num_samples - x.shape[1])))
    return Audio(x, audio.sample_rate)


def apply_fades(audio: Audio, fade_in_s: float = 0.005, fade_out_s: float = 0.005) -> Audio:
    """Short raised-cosine fades at the start and end (cut points), lengths in seconds."""
    x = audio.samples.copy()
    k_in = min(int(fade_in_s * audio.sample_rate), x.shape[1])
    k_out = min(int(fade_out_s * audio.sample_rate), x.shape[1])
    if k_in > 0:
        x[:, :k_in] *= _ramp(k_in)
    if k_out > 0:
        x[:, x.shape[1] - k_out :] *= _ramp(k_out)[::-1]
    return Audio(x, audio.sample_rate)


def _ramp(k: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(k) + 0.5) / k)).astype(np.float32)


def loudness_lufs(audio: Audio) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 via pyloudnorm); -inf for silence or < 0.4 s."""
    import pyloudnorm

    if audio.duration_s < 0.4:
        return float("-inf")
    meter = pyloudnorm.Meter(audio.sample_rate)
    return float(meter.integrated_loudness(audio.samples.T.astype(np.float64)))


def normalize_loudness(
    audio: Audio, target_lufs: float, *, max_gain_db: float = 24.0, peak_ceiling_dbfs: float = -1.0
) -> tuple[Audio, float]:
    """Scale ``audio`` to ``target_lufs``, never boosting more than ``max_gain_db``.

    The gain is lowered when the peak would pass ``peak_ceiling_dbfs``, so a very dynamic
    signal may end below the target.

    Returns:
        (audio, gain_db applied).
    """
    loud = loudness_lufs(audio)
    if not math.isfinite(loud):
        return audio, 0.0
    gain_db = min(target_lufs - loud, max_gain_db)
    peak = float(np.max(np.abs(audio.samples))) if audio.num_samples else 0.0
    if peak > 0:
        gain_db = min(gain_db, peak_ceiling_dbfs - 20 * math.log10(peak))
    gain = 10 ** (gain_db / 20)
    return Audio(audio.samples * np.float32(gain), audio.sample_rate), gain_db


def conform_to_grid(
    audio: Audio,
    target_bpm: float,
    num_samples: int,
    *,
    tolerance_percent: float = 0.5,
    min_confidence: float = 0.1,
    align_phase: bool = True,
) -> tuple[Audio, ConformReport]:
    """Stretch ``audio`` onto ``target_bpm``, put its first beat at the start, and fit its length.

    Args:
        audio: generated audio, at least as long as the section (extra is trimmed).
        target_bpm: the project tempo over the section.
        num_samples: the exact output length in samples.
        tolerance_percent: drift below this is left alone (no stretch).
        min_confidence: below this pulse clarity the tempo is not trusted: nothing is stretched
            or shifted, but the measurement is still reported.
        align_phase: trim up to half a beat from the start (or delay by up to half a beat) so a
            beat falls on sample 0 (use False
            when the audio continues from a prompt that is already on the grid).

    Returns:
        (audio of exactly ``num_samples`` samples, report).
    """
    if not target_bpm > 0:
        raise ValueError(f"project tempo {target_bpm!r} bpm must be positive")
    est = estimate_tempo(audio, around_bpm=target_bpm)
    drift = est.bpm - target_bpm
    drift_pct = 100.0 * drift / target_bpm
    trusted = est.confidence >= min_confidence
    stretched = trusted and abs(drift_pct) > tolerance_percent
    out = time_stretch(audio, target_bpm / est.bpm) if stretched else audio
    shift_s = 0.0
    if trusted and align_phase:
        # after stretching, the phase scales with the time axis
        phase = est.phase_s * (est.bpm / target_bpm if stretched else 1.0)
        beat_s = 60.0 / target_bpm
        if phase <= beat_s / 2:  # late: trim the lead-in
            cut = int(round(phase * out.sample_rate))
            if out.num_samples - cut >= num_samples:
                shift_s = cut / out.sample_rate
                out = Audio(out.samples[:, cut:], out.sample_rate)
        else:  # early by a little: delay with silence (the fade-in hides the join)
            pad = int(round((beat_s - phase) * out.sample_rate))
            shift_s = -pad / out.sample_rate
            out = Audio(np.pad(out.samples, ((0, 0), (pad, 0))), out.sample_rate)
    if not trusted:
        log.info("tempo unclear (confidence %.2f); audio left unstretched", est.confidence)
    report = ConformReport(
        target_bpm=target_bpm, measured_bpm=est.bpm, drift_bpm=drift, drift_percent=drift_pct,
        confidence=est.confidence, stretched=stretched, phase_shift_s=shift_s,
    )
    return fit_length(out, num_samples), report

"""What a session report shows, as plain values (no files, no requests): built by the job layer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio, ChordProgression, DrumPattern, Melody

log = logging.getLogger(__name__)

#: Hum pitch-track range in Hz (a low male hum to a high whistle).
PITCH_FMIN_HZ = 65.0
PITCH_FMAX_HZ = 1000.0
#: Frames quieter than this many dB below the loudest frame count as unvoiced.
VOICING_FLOOR_DB = 35.0
_PITCH_RATE = 16000
_PITCH_FRAME = 1024
_PITCH_HOP = 160  # 10 ms at 16 kHz


@dataclass(frozen=True)
class PitchTrack:
    """The hum's fundamental frequency over time.

    Attributes:
        times_s: frame centres in project seconds, shape ``(frames,)``.
        midi: pitch of each frame as a (fractional) MIDI note number, NaN where unvoiced.
    """

    times_s: np.ndarray
    midi: np.ndarray


@dataclass(frozen=True)
class StemView:
    """One placed stem file.

    Attributes:
        stem: stem name ("drums").
        section: the section it covers.
        take: take number.
        file: the WAV's path relative to the report page (a link).
        audio: its samples (drawn as waveform and spectrogram).
    """

    stem: str
    section: Section
    take: int
    file: str
    audio: Audio


@dataclass(frozen=True)
class ReportData:
    """Everything one session report shows.

    Attributes:
        title: page title (the project's name).
        job_id: the job.
        tempo_map: the project's tempo map.
        sections: every section of the song, in order.
        model: generator name; ``seed`` its seed.
        key: the song key's name ("A minor") or None.
        chords / drums / melody: the understood material, or None where not given.
        hum: the hum's pitch track, or None.
        stems: the placed stem files.
        links: (label, path relative to the page) for every other file worth opening.
        notes: short lines for the page (e.g. what could not be shown and why).
    """

    title: str
    job_id: str
    tempo_map: TempoMap
    sections: Sequence[Section]
    model: str = ""
    seed: int | None = None
    key: str | None = None
    chords: ChordProgression | None = None
    drums: DrumPattern | None = None
    melody: Melody | None = None
    hum: PitchTrack | None = None
    stems: Sequence[StemView] = ()
    links: Sequence[tuple[str, str]] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def _yin_f0(x: np.ndarray, sr: int, threshold: float = 0.15) -> np.ndarray:
    """YIN (de Cheveigne & Kawahara 2002) per frame: f0 in Hz, NaN where no period is clear.

    Frames of ``_PITCH_FRAME`` samples every ``_PITCH_HOP``, centred (the signal is zero-padded
    by half a frame). The difference function comes from one batched FFT over all frames.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    frame = _PITCH_FRAME
    frames = sliding_window_view(np.pad(x, frame // 2), frame)[::_PITCH_HOP].astype(np.float64)
    tau_min, tau_max = int(sr // PITCH_FMAX_HZ), min(int(np.ceil(sr / PITCH_FMIN_HZ)), frame // 2)
    w = frame - tau_max
    n_fft = 1 << int(np.ceil(np.log2(frame + w)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :w], n_fft)) * np.fft.rfft(frames, n_fft), n_fft)
    corr = corr[:, : tau_max + 1]
    squares = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    shifted_energy = squares[:, taus + w] - squares[:, taus]
    diff = np.maximum(squares[:, [w]] + shifted_energy - 2 * corr, 0.0)
    cmnd = np.ones_like(diff)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(running, 1e-12)
    search = cmnd[:, tau_min:]
    below = search < threshold
    voiced = below.any(axis=1)
    tau = np.argmax(below, axis=1)
    rows = np.arange(search.shape[0])
    for _ in range(tau_max):  # walk down to the local minimum after the first dip
        step = (tau + 1 < search.shape[1]) & (search[rows, np.minimum(tau + 1, search.shape[1] - 1)] < search[rows, tau])
        if not step.any():
            break
        tau = tau + step
    tau = tau + tau_min
    lo, mid, hi = cmnd[rows, np.maximum(tau - 1, 1)], cmnd[rows, tau], cmnd[rows, np.minimum(tau + 1, tau_max)]
    curve = lo - 2 * mid + hi
    shift = np.where(np.abs(curve) > 1e-12, (lo - hi) / (2 * np.where(curve == 0, 1, curve)), 0.0)
    f0 = sr / (tau + np.clip(shift, -1, 1))
    return np.where(voiced, f0, np.nan)


def pitch_track(audio: Audio, offset_s: float = 0.0) -> PitchTrack:
    """Estimate the hum's pitch every 10 ms with YIN; quiet or unclear frames are unvoiced.

    Args:
        audio: the hum as recorded (any rate; it is resampled to 16 kHz mono here).
        offset_s: project time in seconds at which the recording's first sample plays.

    Returns:
        Frame times in project seconds and MIDI pitches (NaN where unvoiced).
    """
    from conditioning.io.audio import resample

    mono = resample(Audio(audio.mono()[None, :], audio.sample_rate), _PITCH_RATE).samples[0].astype(np.float64)
    if mono.size < _PITCH_FRAME:
        return PitchTrack(np.zeros(0), np.zeros(0))
    f0 = _yin_f0(mono, _PITCH_RATE)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(mono, _PITCH_FRAME // 2), _PITCH_FRAME)[::_PITCH_HOP]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    level_db = 20 * np.log10(np.maximum(rms, 1e-9) / max(float(rms.max()), 1e-9))
    midi = 69.0 + 12.0 * np.log2(f0 / 440.0)
    midi[level_db < -VOICING_FLOOR_DB] = np.nan
    times = offset_s + np.arange(midi.size) * _PITCH_HOP / _PITCH_RATE
    return PitchTrack(times, midi)

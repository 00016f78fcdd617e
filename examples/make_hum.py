"""Synthesise the demo session's hum.wav: 16 hummed bars, 92 bpm, 4/4, A minor over Am F C G.

Run from the repository root::

    .venv/bin/python examples/make_hum.py            # writes bridge/cli/demo_session/hum.wav (22.05 kHz, 16-bit)
    .venv/bin/python examples/make_hum.py --force    # replace an existing file

The voice model (:func:`synth_voice`) is also used by ``benchmarks/eval_melody.py`` and the
melody tests: a glottal-like harmonic source shaped by moving formant resonances, with vibrato,
pitch scoops at onsets, glides between legato notes, jitter/drift, breath and consonant noise,
amplitude envelopes, a short room reverb and background noise. The output is deterministic for
a given seed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

#: Vowel formants (Hz) and bandwidths; "m" is a closed-mouth hum.
VOWELS: dict[str, tuple[tuple[float, float, float], ...]] = {
    # (frequency Hz, bandwidth Hz, gain)
    "m": ((270.0, 90.0, 1.0), (1100.0, 200.0, 0.12), (2300.0, 250.0, 0.06)),
    "a": ((750.0, 110.0, 1.0), (1250.0, 130.0, 0.7), (2600.0, 200.0, 0.25)),
    "o": ((480.0, 90.0, 1.0), (850.0, 110.0, 0.6), (2500.0, 220.0, 0.15)),
    "u": ((330.0, 80.0, 1.0), (800.0, 110.0, 0.35), (2400.0, 220.0, 0.08)),
    "e": ((450.0, 90.0, 1.0), (1900.0, 140.0, 0.45), (2650.0, 200.0, 0.3)),
    "i": ((300.0, 80.0, 1.0), (2250.0, 150.0, 0.35), (3000.0, 200.0, 0.3)),
}


@dataclass(frozen=True)
class SungNote:
    """One note to sing: onset/offset in seconds, MIDI pitch, loudness 0-1."""

    start_s: float
    end_s: float
    pitch: int
    loudness: float = 0.8


@dataclass(frozen=True)
class VoiceStyle:
    """How the synthetic singer performs.

    Attributes:
        vowels: vowels to pick from per note ("m" only = humming).
        legato_gap_s: notes whose gap is at most this are sung legato (a glide, no re-attack)
            unless they repeat the same pitch.
        legato_prob: probability that a touching pair is sung legato instead of re-articulated.
        vibrato_cents: peak vibrato depth in cents.
        scoop_semitones: largest scoop from below at an onset, in semitones.
        detune_cents: the singer's overall tuning offset in cents.
        noise_db: background noise level relative to full scale (dB).
        reverb_wet: reverb mix 0-1.
    """

    vowels: tuple[str, ...] = ("m",)
    legato_gap_s: float = 0.05
    legato_prob: float = 0.6
    vibrato_cents: float = 35.0
    scoop_semitones: float = 1.0
    detune_cents: float = 0.0
    noise_db: float = -55.0
    reverb_wet: float = 0.12


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, cutoff_hz: float) -> np.ndarray:
    sos = butter(2, cutoff_hz, btype="low", fs=sr, output="sos")
    x = sosfilt(sos, rng.standard_normal(n))
    return np.asarray(x / (np.std(x) + 1e-12))


def _formant_gain(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Spectral envelope at ``freqs`` (any shape) for per-sample formants ``(3, 3, samples)``."""
    gain = np.full(freqs.shape, 0.02)
    for i in range(formants.shape[0]):
        f, bw, g = formants[i, 0], formants[i, 1], formants[i, 2]
        gain += g / (1.0 + ((freqs - f) / (0.5 * bw)) ** 2)
    return gain


@dataclass(frozen=True)
class SungTake:
    """A synthetic performance: mono float32 ``samples`` and the notes as actually sung
    (a legato note lasts until the next note starts)."""

    samples: np.ndarray
    notes: tuple[SungNote, ...]


def synth_voice(
    notes: Sequence[SungNote],
    sample_rate: int,
    seed: int = 0,
    style: VoiceStyle | None = None,
    tail_s: float = 0.5,
) -> SungTake:
    """Sing ``notes`` with a synthetic voice.

    Args:
        notes: notes in time order (monophonic); seconds from the start of the output.
        sample_rate: output rate in Hz.
        seed: random seed (the output is deterministic for a seed).
        style: performance settings.
        tail_s: silence kept after the last note, in seconds.

    Returns:
        Mono float32 samples (peak about -3 dBFS) and the notes as sung.
    """
    style = style or VoiceStyle()
    rng = np.random.default_rng(seed)
    notes = sorted(notes, key=lambda n: n.start_s)
    total = int((notes[-1].end_s + tail_s) * sample_rate) if notes else int(tail_s * sample_rate)
    t = np.arange(total) / sample_rate
    midi = np.full(total, np.nan)
    amp = np.zeros(total)
    vib_gain = np.zeros(total)
    formants = np.repeat(np.asarray(VOWELS["m"])[:, :, None], total, axis=2)
    breath = np.zeros(total)

    sung: list[SungNote] = []
    prev: SungNote | None = None
    prev_legato_end = -1.0
    for idx, note in enumerate(notes):
        nxt = notes[idx + 1] if idx + 1 < len(notes) else None
        legato_in = (
            prev is not None
            and note.start_s - prev.end_s <= style.legato_gap_s
            and prev.pitch != note.pitch
            and prev_legato_end == prev.end_s
        )
        legato_out = (
            nxt is not None
            and nxt.start_s - note.end_s <= style.legato_gap_s
            and nxt.pitch != note.pitch
            and rng.random() < style.legato_prob
        )
        a = int(note.start_s * sample_rate)
        end_s = nxt.start_s if legato_out and nxt is not None else note.end_s
        b = min(total, int(end_s * sample_rate))
        if b <= a:
            continue
        sung.append(SungNote(note.start_s, end_s, note.pitch, note.loudness))
        seg = t[a:b] - note.start_s
        dur = note.end_s - note.start_s
        # Pitch: target + scoop from below (or glide from the previous note) + drift.
        contour = np.full(b - a, float(note.pitch))
        if legato_in and prev is not None:
            glide = rng.uniform(0.03, 0.07)
            contour += (prev.pitch - note.pitch) * np.exp(-seg / (glide / 3.0))
        else:
            scoop = rng.uniform(0.2, 1.0) * style.scoop_semitones
            tau = rng.uniform(0.015, 0.035)
            contour -= scoop * np.exp(-seg / tau)
        midi[a:b] = contour
        # Vibrato fades in on notes longer than ~0.35 s.
        vib_gain[a:b] = np.clip((seg - 0.25) / 0.3, 0.0, 1.0) * (dur > 0.35)
        # Loudness envelope: attack; release at a non-legato end.
        attack = rng.uniform(0.015, 0.04) if not legato_in else 0.005
        env = np.clip(seg / attack, 0.0, 1.0) ** 1.5
        env *= 1.0 - 0.15 * np.clip(seg / max(dur, 1e-3), 0.0, 1.0)
        if not legato_out:
            release = min(rng.uniform(0.03, 0.07), 0.5 * dur)
            env *= np.clip((note.end_s - t[a:b]) / release, 0.0, 1.0)
        amp[a:b] = np.maximum(amp[a:b], env * note.loudness * rng.uniform(0.85, 1.0))
        vowel = VOWELS[style.vowels[int(rng.integers(len(style.vowels)))]]
        formants[:, :, a:b] = np.asarray(vowel)[:, :, None]
        if not legato_in and len(style.vowels) > 1:
            # A consonant: a short noise burst just before the vowel.
            c0 = max(0, a - int(0.03 * sample_rate))
            breath[c0:a] += 0.25 * note.loudness
        prev = note
        prev_legato_end = note.end_s if legato_out else -1.0

    voiced = ~np.isnan(midi)
    midi_filled = np.where(voiced, midi, 60.0)
    # Smooth the formant tracks so vowels change over ~40 ms.
    k = max(1, int(0.04 * sample_rate))
    kernel = np.ones(k) / k
    for i in range(3):
        for j in range(3):
            formants[i, j] = np.convolve(formants[i, j], kernel, mode="same")
    drift = 8.0 * _smooth_noise(rng, total, sample_rate, 3.0)
    jitter = 3.0 * _smooth_noise(rng, total, sample_rate, 30.0)
    rate = rng.uniform(5.0, 6.5)
    vibrato = style.vibrato_cents * vib_gain * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.28))
    cents = drift + jitter + vibrato + style.detune_cents
    f0 = 440.0 * 2.0 ** ((midi_filled - 69.0 + cents / 100.0) / 12.0)
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    shimmer = 1.0 + 0.05 * _smooth_noise(rng, total, sample_rate, 20.0)
    voice = np.zeros(total)
    n_harm = int(min(60, (0.45 * sample_rate) // max(60.0, float(np.min(f0)))))
    for h in range(1, n_harm + 1):
        fh = h * f0
        gain = _formant_gain(fh, formants) / h**1.1 * (fh < 0.45 * sample_rate)
        voice += gain * np.sin(h * phase + 0.3 * h)
    # Level out vowel-to-vowel loudness (singers keep a steady level across vowels).
    win = np.hanning(max(3, int(0.05 * sample_rate)))
    power = np.convolve(voice**2, win / win.sum(), mode="same")
    voice /= np.sqrt(power + 1e-8 * np.max(power))
    voice *= amp * shimmer
    # Breath: band-passed noise following the voice, plus consonant bursts.
    sos = butter(2, [1500.0, min(6000.0, 0.45 * sample_rate)], btype="band", fs=sample_rate, output="sos")
    noise = sosfilt(sos, rng.standard_normal(total))
    breath_env = np.convolve(breath, np.ones(int(0.01 * sample_rate)) / 10, mode="same")
    voice += (0.03 * amp + breath_env) * noise * np.max(np.abs(voice) + 1e-9) * 0.5
    # Room: short exponentially decaying noise reverb and a noise floor.
    ir_len = int(0.4 * sample_rate)
    ir = rng.standard_normal(ir_len) * np.exp(-np.arange(ir_len) / (0.08 * sample_rate))
    ir /= np.sqrt(np.sum(ir**2))
    wet = fftconvolve(voice, ir)[:total]
    out = (1.0 - style.reverb_wet) * voice + style.reverb_wet * wet
    out /= np.max(np.abs(out)) + 1e-12
    floor = 10.0 ** (style.noise_db / 20.0)
    hum_noise = floor * (_smooth_noise(rng, total, sample_rate, 2000.0) + 0.3 * rng.standard_normal(total))
    out = 0.7 * out + hum_noise
    return SungTake(np.asarray(out, dtype=np.float32), tuple(sung))


# --------------------------------------------------------------------------------------------
# The example session's melody: 16 bars at 92 bpm, 4/4, A minor over Am | F | C | G (x4).
# --------------------------------------------------------------------------------------------

BPM = 92.0
#: (start beat, length in beats, MIDI pitch) per note; a four-bar phrase per chord cycle.
_PHRASES: tuple[tuple[tuple[float, float, int], ...], ...] = (
    # Am            F                        C                        G
    ((0, 1, 69), (1, 1, 72), (2, 1.5, 71), (3.5, 0.5, 69), (4, 2, 69), (6, 1, 65), (7, 1, 67),
     (8, 1.5, 67), (9.5, 0.5, 64), (10, 2, 72), (12, 1, 71), (13, 1, 67), (14, 2, 67)),
    ((0, 0.5, 64), (0.5, 0.5, 67), (1, 1, 69), (2, 2, 72), (4, 1, 72), (5, 1, 69), (6, 1.5, 65),
     (7.5, 0.5, 69), (8, 1, 67), (9, 1, 64), (10, 1, 67), (11, 1, 72), (12, 3, 71)),
    ((0, 1.5, 76), (1.5, 0.5, 74), (2, 1, 72), (3, 1, 71), (4, 2, 72), (6, 1, 69), (7, 1, 72),
     (8, 1, 76), (9, 1, 74), (10, 2, 72), (12, 1, 74), (13, 1, 71), (14, 2, 67)),
    ((0, 1, 69), (1, 1, 72), (2, 1, 71), (3, 1, 69), (4, 1.5, 69), (5.5, 0.5, 65), (6, 2, 69),
     (8, 1, 67), (9, 1, 72), (10, 2, 71), (12, 1, 67), (13, 1, 71), (14, 2, 69)),
)


def example_notes(bpm: float = BPM) -> list[SungNote]:
    """The example session's 16-bar melody as sung notes (seconds), slightly detached."""
    spb = 60.0 / bpm
    notes = []
    for p, phrase in enumerate(_PHRASES):
        for start, length, pitch in phrase:
            beat = 16.0 * p + start
            end = beat + length
            gap = 0.06 if length <= 0.5 else 0.1
            notes.append(SungNote(beat * spb, end * spb - gap, pitch - 12, 0.75 + 0.05 * (start % 2)))
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "bridge" / "cli" / "demo_session" / "hum.wav")
    parser.add_argument("--sample-rate", type=int, default=22050, help="Hz (default 22050)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from conditioning.io.audio import write_wav
    from conditioning.types import Audio

    # 16 bars at 92 bpm last 41.7 s: 16-bit mono at 22.05 kHz keeps the file under 2 MB
    # (48 kHz would be 4 MB); the bridge resamples where audio enters a model.
    sr = args.sample_rate
    samples = synth_voice(example_notes(), sr, seed=92, style=VoiceStyle(vowels=("m",))).samples
    audio = Audio(samples[None, :], sr)
    if args.force and args.out.exists():
        args.out.unlink()
    write_wav(args.out, audio, subtype="PCM_16")
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({audio.duration_s:.2f} s, {sr} Hz, 16-bit mono, {size} bytes)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

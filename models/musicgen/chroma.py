"""Chroma conditioning for MusicGen-melody, computed without torchaudio.

MusicGen-melody is conditioned on a 12-bin chromagram at 32000 / 4096 = 7.8125 frames per
second. We build it from the musician's material rather than from audio: the hummed melody's
dominant pitch class per frame (one-hot, as the model was trained on), the chord progression as
a multi-hot chord chroma (the "MusicGen-Chord" community approach), or both combined. Audio
(e.g. the previous section used as a prompt) can be turned into the same kind of chroma with
:func:`audio_chroma` (numpy/scipy STFT).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import stft

from conditioning.chord_features import chord_chroma
from conditioning.melody import melody_chroma
from conditioning.types import Audio, SectionConditioning


def _fit_frames(x: np.ndarray, frames: int) -> np.ndarray:
    if x.shape[0] >= frames:
        return x[:frames]
    return np.pad(x, ((0, frames - x.shape[0]), (0, 0)))


def conditioning_chroma(
    conditioning: SectionConditioning,
    start_s: float,
    end_s: float,
    frame_rate: float,
    *,
    melody_weight: float = 1.0,
    chord_weight: float = 0.5,
) -> np.ndarray | None:
    """Chroma for the song span ``[start_s, end_s)`` from the melody and/or chords.

    Each frame is ``melody_weight`` x melody one-hot + ``chord_weight`` x chord multi-hot,
    scaled so its largest bin is 1: with both present, the melody note stands out above the
    chord tones (a melody note inside the chord adds up).

    Args:
        conditioning: the section's conditioning (melody and chords cover the whole song).
        start_s: span start in seconds from the project start.
        end_s: span end in seconds.
        frame_rate: chroma frames per second.
        melody_weight: weight of the melody's pitch class.
        chord_weight: weight of each chord tone.

    Returns:
        float32 ``(round((end_s - start_s) * frame_rate), 12)`` array, or None when the
        conditioning has neither melody nor chords.

    Raises:
        ValueError: the span is empty.
    """
    if end_s <= start_s:
        raise ValueError(f"chroma span {start_s:g}-{end_s:g} s is empty")
    if conditioning.melody is None and conditioning.chords is None:
        return None
    tm = conditioning.tempo_map
    a, b = tm.seconds_to_beat(max(0.0, start_s)), tm.seconds_to_beat(end_s)
    frames = int(round((end_s - start_s) * frame_rate))
    lead_in = int(round(max(0.0, -start_s) * frame_rate))  # before the song starts: silence
    total = np.zeros((frames - lead_in, 12), dtype=np.float32)
    if conditioning.melody is not None and conditioning.melody.notes:
        mel = melody_chroma(conditioning.melody, tm, a, b, frame_rate)
        total += melody_weight * _fit_frames(mel, total.shape[0])
    if conditioning.chords is not None:
        chords = chord_chroma(conditioning.chords, tm, a, b, frame_rate, num_frames=total.shape[0])
        total += chord_weight * _fit_frames(chords, total.shape[0])
    peak = total.max(axis=1, keepdims=True)
    total = np.divide(total, peak, out=np.zeros_like(total), where=peak > 0)
    return np.pad(total, ((lead_in, 0), (0, 0))).astype(np.float32)


def audio_chroma(audio: Audio, frame_rate: float, *, n_fft: int = 8192, silence_db: float = -60.0) -> np.ndarray:
    """Dominant-pitch-class chroma of audio (one-hot per frame, MusicGen-melody style).

    Args:
        audio: any rate, any channels.
        frame_rate: chroma frames per second.
        n_fft: STFT size in samples (long windows resolve low notes).
        silence_db: frames quieter than this (relative to the loudest) are all zero.

    Returns:
        float32 ``(round(duration_s * frame_rate), 12)`` array, column 0 = C.
    """
    sr = audio.sample_rate
    frames = int(round(audio.duration_s * frame_rate))
    out = np.zeros((frames, 12), dtype=np.float32)
    if frames == 0:
        return out
    hop = max(1, int(round(sr / frame_rate)))
    n_fft = min(n_fft, max(256, audio.num_samples))
    _, _, spec = stft(audio.mono(), fs=sr, nperseg=n_fft, noverlap=max(0, n_fft - hop))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    band = (freqs >= 55.0) & (freqs <= 4200.0)
    pcs = np.round(12 * np.log2(freqs[band] / 440.0)).astype(int) % 12
    pcs = (pcs + 9) % 12  # A = 9 when C = 0
    power = np.abs(spec[band]) ** 2
    bins = np.zeros((12, power.shape[1]))
    np.add.at(bins, pcs, power)
    energy = bins.sum(axis=0)
    loud = energy > energy.max() * 10 ** (silence_db / 10) if energy.max() > 0 else energy > 0
    idx = np.clip(np.round(np.arange(frames) / frame_rate * sr / hop).astype(int), 0, bins.shape[1] - 1)
    for i, j in enumerate(idx):
        if loud[j]:
            out[i, int(np.argmax(bins[:, j]))] = 1.0
    return out

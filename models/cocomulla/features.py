"""Coco-Mulla content conditions from the musician's material, at the codec frame rate.

For a window of song time the conditions are:

* chords: the 37-value frames of :func:`conditioning.chord_features.coco_mulla_frames`
  (all "no chord" when the song has no chords; chords are never masked by the adapter);
* piano roll: the chord part's own notes with the sustain pedal applied
  (:func:`conditioning.piano_roll.notes_piano_roll`), present over the beats those notes are
  known for (``chords.notes``); when only chord symbols were given, voiced from the symbols
  (:func:`conditioning.piano_roll.chord_piano_roll`), present only where a chord sounds;
* drums: the drum MIDI rendered with FluidSynth at the model's rate and encoded by the model's
  own EnCodec, present over the whole window when the song has drum notes.

Whatever the song does not have is masked (``present`` false), never made up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from conditioning.chord_features import COCO_MULLA_DIM, coco_mulla_frames
from conditioning.piano_roll import PITCHES, chord_piano_roll, notes_piano_roll
from conditioning.types import SectionConditioning

#: Renders drum notes to mono audio: ``(start_s, samples, sample_rate) -> (samples,) float32``.
DrumRenderer = Callable[[float, int, int], np.ndarray]
#: Encodes mono audio at the model rate to codes: ``(samples,) -> (codebooks, frames) int64``.
CodeEncoder = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ContentFrames:
    """Content conditions of one window, frame ``i`` at ``start_s + i / frame_rate`` seconds.

    Attributes:
        chords: (T, 37) float32 chord frames.
        piano_roll: (T, 128) float32 0/1.
        drum_codes: (K, T) int64 EnCodec codes (zeros where the drums are absent).
        piano_present: (T,) bool; False frames use the adapter's learned masked embedding.
        drums_present: (T,) bool, likewise.
    """

    chords: np.ndarray
    piano_roll: np.ndarray
    drum_codes: np.ndarray
    piano_present: np.ndarray
    drums_present: np.ndarray

    def __post_init__(self) -> None:
        frames = self.chords.shape[0]
        shapes = {
            "chords": (self.chords.shape, (frames, COCO_MULLA_DIM)),
            "piano_roll": (self.piano_roll.shape, (frames, PITCHES)),
            "drum_codes": (self.drum_codes.shape[1:], (frames,)),
            "piano_present": (self.piano_present.shape, (frames,)),
            "drums_present": (self.drums_present.shape, (frames,)),
        }
        for name, (got, want) in shapes.items():
            if tuple(got) != want:
                raise ValueError(f"content frames: {name} has shape {tuple(got)}, expected {want}")

    @property
    def frames(self) -> int:
        """Number of frames T."""
        return int(self.chords.shape[0])


def content_frames(
    conditioning: SectionConditioning, start_s: float, frames: int, *, frame_rate: float, codebooks: int,
    render_drums: DrumRenderer | None, encode: CodeEncoder | None, sample_rate: int,
) -> ContentFrames:
    """The conditions of ``frames`` frames from song time ``start_s``.

    Args:
        conditioning: the section request (its chords and drums cover the whole song).
        start_s: song time of frame 0 in seconds.
        frames: frame count T.
        frame_rate: frames per second (50).
        codebooks: EnCodec codebooks K.
        render_drums: drum renderer, or None to leave the drums out (masked).
        encode: the model's audio encoder, or None (drums masked).
        sample_rate: the model's audio rate in Hz.
    """
    if frames < 1:
        raise ValueError(f"a condition window needs at least one frame, got {frames}")
    tm = conditioning.tempo_map
    # frames before the song's start carry nothing
    lead = min(frames, max(0, int(round(-start_s * frame_rate))))
    body = frames - lead
    chords = np.zeros((frames, COCO_MULLA_DIM), dtype=np.float32)
    chords[:, 36] = 1.0
    roll = np.zeros((frames, PITCHES), dtype=np.float32)
    piano = np.zeros(frames, dtype=bool)
    codes = np.zeros((codebooks, frames), dtype=np.int64)
    drums = np.zeros(frames, dtype=bool)
    if body > 0:
        t0 = max(0.0, start_s)
        b0, b1 = tm.seconds_to_beat(t0), tm.seconds_to_beat(t0 + body / frame_rate)
        prog = conditioning.chords
        if prog is not None and prog.spans:
            chords[lead:] = coco_mulla_frames(prog, tm, b0, b1, frame_rate, body)
            if prog.notes is None:
                roll[lead:] = chord_piano_roll(prog, tm, b0, b1, frame_rate, body)
                piano[lead:] = chords[lead:, 36] == 0
        if prog is not None and prog.notes is not None:
            played = prog.notes
            roll[lead:] = notes_piano_roll(played.notes, tm, b0, b1, frame_rate, body, pedal_spans=played.pedal_spans)
            # known only over the span the notes describe; beyond it the roll is masked
            beats = np.array([tm.seconds_to_beat(t0 + (i + 0.5) / frame_rate) for i in range(body)])
            piano[lead:] = (beats >= played.start_beat) & (beats < played.end_beat)
            roll[lead:][~piano[lead:]] = 0.0
        has_drums = conditioning.drums is not None and bool(conditioning.drums.notes)
        if has_drums and render_drums is not None and encode is not None:
            hop = sample_rate / frame_rate
            audio = render_drums(t0, int(round(body * hop)), sample_rate)
            got = encode(audio)
            n = min(body, got.shape[1])
            codes[:, lead : lead + n] = got[:codebooks, :n]
            drums[lead : lead + n] = True
    return ContentFrames(chords, roll, codes, piano, drums)

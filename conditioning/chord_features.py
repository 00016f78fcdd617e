"""Frame-aligned chord features for generators, at any frame rate.

Frames are laid on the seconds axis of the beat span ``[start_beat, end_beat)``: with
``t0 = tempo_map.beat_to_seconds(start_beat)`` and ``t1`` likewise, there are
``round((t1 - t0) * frame_rate)`` frames (or ``num_frames`` when given); frame ``i`` covers
``[t0 + i / frame_rate, t0 + (i + 1) / frame_rate)`` seconds and takes the chord sounding at
its centre (converted back to beats through the tempo map, so tempo changes are honoured).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from conditioning.harte import HarteChord, parse_harte
from conditioning.timeline import TempoMap
from conditioning.types import ChordProgression

#: Width of the Coco-Mulla chord frame: 12 root + 12 bass + 12 quality + 1 no-chord.
COCO_MULLA_DIM = 37


@lru_cache(maxsize=512)
def _parsed(label: str) -> HarteChord:
    return parse_harte(label)


def frame_labels(
    prog: ChordProgression,
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    frame_rate: float,
    num_frames: int | None = None,
) -> list[str]:
    """The chord label of every frame (see the module docstring for the frame grid).

    Args:
        prog: the chord progression (beats).
        tempo_map: beats <-> seconds.
        start_beat: span start in beats.
        end_beat: span end in beats (exclusive).
        frame_rate: frames per second (Hz), e.g. 50 for MusicGen's token rate.
        num_frames: force this many frames (e.g. to match a model's sequence length).

    Raises:
        ValueError: a non-positive frame rate or a span that runs backwards.
    """
    if not frame_rate > 0:
        raise ValueError(f"frame rate {frame_rate!r} must be positive frames per second, e.g. 50")
    if not end_beat > start_beat:
        raise ValueError(
            f"feature span runs from beat {start_beat:g} to {end_beat:g}; the end must be after the start"
        )
    t0 = tempo_map.beat_to_seconds(start_beat)
    t1 = tempo_map.beat_to_seconds(end_beat)
    count = int(round((t1 - t0) * frame_rate)) if num_frames is None else int(num_frames)
    if count < 0:
        raise ValueError(f"num_frames {num_frames} must be >= 0")
    spans = prog.spans
    starts = np.array([s.start_beat for s in spans]) if spans else np.zeros(0)
    labels = []
    for i in range(count):
        beat = tempo_map.seconds_to_beat(t0 + (i + 0.5) / frame_rate)
        j = int(np.searchsorted(starts, beat, side="right")) - 1
        if j >= 0 and spans[j].start_beat <= beat < spans[j].end_beat:
            labels.append(spans[j].label)
        else:
            labels.append(prog.label_at(beat))
    return labels


def chord_chroma(
    prog: ChordProgression,
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    frame_rate: float,
    num_frames: int | None = None,
) -> np.ndarray:
    """Multi-hot chord chroma per frame.

    Returns:
        float32 array shaped (frames, 12): 1 at every pitch class of the frame's chord (bass
        included; pitch class 0 = C), all zeros for "N".
    """
    labels = frame_labels(prog, tempo_map, start_beat, end_beat, frame_rate, num_frames)
    out = np.zeros((len(labels), 12), dtype=np.float32)
    for i, label in enumerate(labels):
        pcs = _parsed(label).pitch_classes
        if pcs:
            out[i, sorted(pcs)] = 1.0
    return out


def coco_mulla_frames(
    prog: ChordProgression,
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    frame_rate: float,
    num_frames: int | None = None,
) -> np.ndarray:
    """Chord frames in the Coco-Mulla layout.

    Layout of the 37 columns (float32, one row per frame):

    * ``[0:12]`` root one-hot, absolute pitch class (column 0 = C);
    * ``[12:24]`` bass one-hot, in semitones above the root (column 12 = root position,
      column 16 = major-third bass as in ``C:maj/3``);
    * ``[24:36]`` quality bitmap: the chord's pitch classes in semitones above the root
      (``C:min7`` sets 24, 27, 31, 34);
    * ``[36]`` no-chord flag: 1 for "N", when every other column is 0.

    Returns:
        Array shaped (frames, 37).
    """
    labels = frame_labels(prog, tempo_map, start_beat, end_beat, frame_rate, num_frames)
    out = np.zeros((len(labels), COCO_MULLA_DIM), dtype=np.float32)
    for i, label in enumerate(labels):
        chord = _parsed(label)
        if chord.root is None:
            out[i, 36] = 1.0
            continue
        out[i, chord.root] = 1.0
        out[i, 12 + chord.bass] = 1.0
        for interval in chord.intervals | {chord.bass}:
            out[i, 24 + interval] = 1.0
    return out

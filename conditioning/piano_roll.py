"""Frame-aligned 128-pitch piano rolls, from notes or voiced from chord symbols.

Frames use the grid of :mod:`conditioning.chord_features`: with ``t0`` the span start in
seconds, frame ``i`` covers ``[t0 + i / frame_rate, t0 + (i + 1) / frame_rate)``. A note sounds
in frame ``i`` when ``round(onset * frame_rate) <= i < round(release * frame_rate)`` (seconds
from ``t0``; every note lasts at least one frame), as in pretty_midi's ``get_piano_roll``.
Values are 0/1 (the Coco-Mulla adapter takes a binary roll).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conditioning.chord_features import frame_labels
from conditioning.chords import apply_sustain
from conditioning.harte import parse_harte
from conditioning.timeline import TempoMap
from conditioning.types import ChordProgression, Note

#: MIDI pitches in a piano roll.
PITCHES = 128
#: Lowest pitch of the bass voicing (C2) and of the chord-tone voicing (C4).
BASS_LOW = 36
CHORD_LOW = 60
#: Longest sustain-pedal extension of a note in a piano roll, in beats.
MAX_SUSTAIN_BEATS = 4.0


def frame_count(tempo_map: TempoMap, start_beat: float, end_beat: float, frame_rate: float) -> int:
    """Frames in ``[start_beat, end_beat)`` at ``frame_rate`` Hz (rounded seconds * rate)."""
    if not frame_rate > 0:
        raise ValueError(f"frame rate {frame_rate!r} must be positive frames per second, e.g. 50")
    t0, t1 = tempo_map.beat_to_seconds(start_beat), tempo_map.beat_to_seconds(end_beat)
    return int(round((t1 - t0) * frame_rate))


def notes_piano_roll(
    notes: Sequence[Note],
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    frame_rate: float,
    num_frames: int | None = None,
    *,
    pedal_spans: Sequence[tuple[float, float]] = (),
    max_sustain_beats: float = MAX_SUSTAIN_BEATS,
) -> np.ndarray:
    """Piano roll of ``notes`` over the span, with the sustain pedal applied.

    Args:
        notes: notes in beats from the project start (notes outside the span are cut off).
        tempo_map: beats <-> seconds.
        start_beat: span start in beats.
        end_beat: span end in beats (exclusive).
        frame_rate: frames per second (50 for Coco-Mulla).
        num_frames: force this many frames.
        pedal_spans: (down_beat, up_beat) sustain-pedal spans; notes released under the pedal
            ring on to the pedal's release (at most ``max_sustain_beats`` longer).
        max_sustain_beats: cap on the sustain extension (beats).

    Returns:
        (frames, 128) float32 of 0/1.
    """
    if not end_beat > start_beat:
        raise ValueError(f"piano-roll span runs from beat {start_beat:g} to {end_beat:g}; the end must be after the start")
    count = frame_count(tempo_map, start_beat, end_beat, frame_rate) if num_frames is None else int(num_frames)
    if count < 0:
        raise ValueError(f"num_frames {num_frames} must be >= 0")
    roll = np.zeros((count, PITCHES), dtype=np.float32)
    t0 = tempo_map.beat_to_seconds(start_beat)
    for note in apply_sustain(notes, list(pedal_spans), max_sustain_beats):
        if not 0 <= note.pitch < PITCHES:
            raise ValueError(f"note pitch {note.pitch} is outside MIDI 0-127")
        a = int(round((tempo_map.beat_to_seconds(note.start_beat) - t0) * frame_rate))
        b = int(round((tempo_map.beat_to_seconds(note.end_beat) - t0) * frame_rate))
        b = max(b, a + 1)
        a, b = max(a, 0), min(b, count)
        if b > a:
            roll[a:b, note.pitch] = 1.0
    return roll


def chord_piano_roll(
    prog: ChordProgression,
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    frame_rate: float,
    num_frames: int | None = None,
) -> np.ndarray:
    """Piano roll voiced from chord symbols: the bass note from C2 up, chord tones from C4 up.

    Frames with no chord ("N") are silent.

    Returns:
        (frames, 128) float32 of 0/1.
    """
    labels = frame_labels(prog, tempo_map, start_beat, end_beat, frame_rate, num_frames)
    roll = np.zeros((len(labels), PITCHES), dtype=np.float32)
    for i, label in enumerate(labels):
        chord = parse_harte(label)
        if chord.root is None:
            continue
        roll[i, BASS_LOW + (chord.root + chord.bass) % 12] = 1.0
        for interval in chord.intervals:
            roll[i, CHORD_LOW + (chord.root + interval) % 12] = 1.0
    return roll

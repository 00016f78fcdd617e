"""Piano-roll frames from notes (with sustain) and from chord symbols."""

from __future__ import annotations

import numpy as np
import pytest

from conditioning.chords import chords_from_symbols
from conditioning.piano_roll import chord_piano_roll, frame_count, notes_piano_roll
from conditioning.timeline import TempoMap
from conditioning.types import Note

TM = TempoMap.constant(120)  # one beat = 0.5 s = 25 frames at 50 Hz


def test_note_frames_follow_onset_and_release() -> None:
    roll = notes_piano_roll([Note(60, 1.0, 2.0), Note(64, 0.0, 0.6)], TM, 0.0, 4.0, 50)
    assert roll.shape == (100, 128)
    assert np.flatnonzero(roll[:, 60]).tolist() == list(range(25, 50))
    assert np.flatnonzero(roll[:, 64]).tolist() == list(range(0, 15))  # 0.3 s = 15 frames
    assert roll.sum() == 25 + 15


def test_span_cuts_notes_and_offsets_frames() -> None:
    roll = notes_piano_roll([Note(60, 1.0, 3.0)], TM, 2.0, 4.0, 50)
    assert np.flatnonzero(roll[:, 60]).tolist() == list(range(0, 25))


def test_sustain_pedal_extends_release() -> None:
    dry = notes_piano_roll([Note(60, 0.0, 1.0)], TM, 0.0, 4.0, 50)
    wet = notes_piano_roll([Note(60, 0.0, 1.0)], TM, 0.0, 4.0, 50, pedal_spans=[(0.5, 3.0)])
    assert dry[:, 60].sum() == 25
    assert wet[:, 60].sum() == 75


def test_chord_symbols_are_voiced() -> None:
    prog = chords_from_symbols([["C:maj", 0, 2], ["A:min/b3", 2, 4]])
    roll = chord_piano_roll(prog, TM, 0.0, 6.0, 50)
    assert roll.shape == (frame_count(TM, 0.0, 6.0, 50), 128) == (150, 128)
    assert np.flatnonzero(roll[10]).tolist() == [36, 60, 64, 67]  # C2 | C4 E4 G4
    assert np.flatnonzero(roll[60]).tolist() == [36, 60, 64, 69]  # C bass | A C E
    assert roll[120].sum() == 0  # no chord after beat 4


def test_bad_spans_are_refused() -> None:
    with pytest.raises(ValueError, match="end must be after the start"):
        notes_piano_roll([], TM, 2.0, 2.0, 50)
    with pytest.raises(ValueError, match="outside MIDI"):
        notes_piano_roll([Note(200, 0.0, 1.0)], TM, 0.0, 2.0, 50)

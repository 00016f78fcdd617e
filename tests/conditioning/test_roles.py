"""Track-role hints: one list shared by material loading, `analyze` and the chord recogniser."""

from __future__ import annotations

from pathlib import Path

import pytest

from conditioning.chords import accompaniment_notes
from conditioning.roles import name_has_role, role_notes
from conditioning.score import MidiFile, MidiTrack
from conditioning.timeline import TempoMap
from conditioning.types import Note

TM = TempoMap.constant(120.0)


def _chordal(name: str, root: int) -> MidiTrack:
    return MidiTrack(name, 0, False, tuple(Note(root + i, 0.0, 4.0) for i in (0, 4, 7)))


def _line(name: str) -> MidiTrack:
    return MidiTrack(name, 0, False, tuple(Note(p, i, i + 1.0) for i, p in enumerate([72, 74, 76, 77])))


@pytest.mark.parametrize(
    ("name", "role"),
    [("Lead Vox", "melody"), ("Hum take 3", "melody"), ("BRIDGE", "melody"), ("E.Piano", "chords"),
     ("Rhodes", "chords"), ("Organ", "chords"), ("Kit", "drums"), ("Percussion", "drums")],
)
def test_names_have_their_role(name: str, role: str) -> None:
    assert name_has_role(name, role)
    assert not any(name_has_role(name, other) for other in ("chords", "drums", "melody") if other != role)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown track role 'bass'"):
        name_has_role("Bass", "bass")


def test_role_notes_picks_the_hinted_track(tmp_path: Path) -> None:
    hum, organ = _line("Hum"), _chordal("Organ", 48)
    midi = MidiFile(tmp_path / "x.mid", TM, (hum, organ))
    assert role_notes(midi, "melody") == hum.notes
    assert role_notes(midi, "chords") == organ.notes
    single = MidiFile(tmp_path / "y.mid", TM, (organ,))
    assert role_notes(single, "melody") == organ.notes  # one track: it is the material


def test_chord_recogniser_uses_the_same_chord_words(tmp_path: Path) -> None:
    # "Organ" is a chord word for material loading; the recogniser now reads it alone as the
    # accompaniment instead of mixing in the un-hinted "Strings" track
    organ, strings = _chordal("Organ", 48), _chordal("Strings", 53)
    midi = MidiFile(tmp_path / "x.mid", TM, (strings, organ))
    assert accompaniment_notes(midi, pedal_extend_beats=0.0) == list(organ.notes)

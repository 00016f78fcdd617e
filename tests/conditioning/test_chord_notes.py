"""Chord notes as played: their known span, cutting them to a section, and build_conditioning."""

from __future__ import annotations

import pytest

from conditioning.build import build_conditioning
from conditioning.chords import chords_from_symbols
from conditioning.timeline import Section, TempoMap
from conditioning.types import ChordNotes, Note

TM = TempoMap.constant(120)


def test_played_span_runs_from_first_onset_to_the_pedal_release() -> None:
    played = ChordNotes.played((Note(60, 1.0, 2.0), Note(64, 3.0, 5.0)), ((4.5, 7.0),))
    assert (played.start_beat, played.end_beat) == (1.0, 7.0)
    assert ChordNotes.played((Note(60, 1.0, 2.0),)).end_beat == 2.0
    with pytest.raises(ValueError, match="at least one note"):
        ChordNotes.played(())


def test_in_range_keeps_notes_that_can_ring_into_it() -> None:
    played = ChordNotes.played(
        (Note(48, 0.0, 3.5), Note(60, 4.0, 5.0), Note(62, 9.0, 10.0)), ((3.0, 6.0),)
    )
    cut = played.in_range(4.0, 8.0, sustain_beats=1.0)
    assert cut is not None and (cut.start_beat, cut.end_beat) == (4.0, 8.0)
    assert [n.pitch for n in cut.notes] == [48, 60]  # 48 is released under the pedal 0.5 beat before
    assert cut.pedal_spans == ((3.0, 6.0),)
    assert played.in_range(20.0, 24.0, sustain_beats=1.0) is None


def test_build_cuts_chord_notes_to_each_section_and_the_one_before() -> None:
    notes = tuple(Note(60 + bar, 4.0 * bar, 4.0 * bar + 3.0) for bar in range(6))
    prog = chords_from_symbols([["C:maj", 0, 24]])
    prog = type(prog)(prog.spans, prog.key, ChordNotes.played(notes))
    sections = [Section.from_bars(n, a, b, TM) for n, a, b in (("A", 1, 3), ("B", 3, 5), ("C", 5, 7))]
    out = build_conditioning(sections=sections, tempo_map=TM, sample_rate=48000, stems=("keys",), chords=prog)
    first, last = out[0].chords, out[2].chords
    assert first is not None and first.notes is not None and last is not None and last.notes is not None
    assert [n.pitch for n in first.notes.notes] == [60, 61]
    assert (last.notes.start_beat, last.notes.end_beat) == (8.0, 23.0)  # from section B's start
    assert [n.pitch for n in last.notes.notes] == [61, 62, 63, 64, 65]  # 61 ends within a pedal's reach
    assert last.spans == prog.spans  # the chord symbols stay whole-song

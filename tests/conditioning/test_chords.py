"""Chord recognition from notes, chord symbols, and the analyze JSON."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from conditioning.chords import (
    accompaniment_notes,
    analyze_midi_chords,
    apply_sustain,
    chords_from_notes,
    chords_from_symbols,
)
from conditioning.harte import parse_harte
from conditioning.score import MidiFile, MidiTrack
from conditioning.timeline import TempoMap
from conditioning.types import ChordProgression, Note

TM = TempoMap.constant(120.0)
POP909 = Path(os.environ.get("STEMBRIDGE_POP909", Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909-dev"))


def block(pitches: Sequence[int], start: float, length: float = 4.0, velocity: int = 90) -> list[Note]:
    return [Note(p, start, start + length, velocity) for p in pitches]


def arpeggio(pitches: Sequence[int], start: float, length: float = 4.0, step: float = 0.5) -> list[Note]:
    out = []
    t, i = start, 0
    while t < start + length - 1e-9:
        out.append(Note(pitches[i % len(pitches)], t, t + step, 80))
        t += step
        i += 1
    return out


def labels(prog: ChordProgression) -> list[str]:
    return [s.label for s in prog.spans]


def majmin(label: str) -> tuple[int | None, bool]:
    c = parse_harte(label)
    return c.root, 3 in c.intervals and 4 not in c.intervals


def test_block_chords_and_merging() -> None:
    # the same chord struck twice must merge into one span
    notes = block([48, 60, 64, 67], 0) + block([48, 60, 64, 67], 4) + block([45, 57, 60, 64], 8)
    notes += block([41, 57, 60, 65], 12) + block([43, 55, 59, 62], 16) + block([36, 60, 64, 67], 20)
    prog = chords_from_notes(notes, TM)
    assert labels(prog) == ["C:maj", "A:min", "F:maj", "G:maj", "C:maj"]
    assert [(s.start_beat, s.end_beat) for s in prog.spans] == [(0, 8), (8, 12), (12, 16), (16, 20), (20, 24)]
    assert prog.key is not None and prog.key.name == "C major"


def test_legato_changes_land_on_the_new_onset() -> None:
    # each chord is released 1/24 beat before the next is struck (a common legato MIDI export):
    # the change is where the next chord starts, not where the previous one let go
    notes: list[Note] = []
    for i, pitches in enumerate([(45, 57, 60, 64), (41, 57, 60, 65), (48, 55, 60, 64), (43, 55, 59, 62)]):
        notes += block(pitches, 4.0 * i, length=4.0 - 1 / 24)
    prog = chords_from_notes(notes, TM)
    assert labels(prog) == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert [s.start_beat for s in prog.spans] == [0.0, 4.0, 8.0, 12.0]


def test_arpeggios() -> None:
    notes = arpeggio([45, 52, 57, 60, 64], 0) + arpeggio([41, 48, 53, 57, 60], 4) + arpeggio([48, 55, 60, 64, 67], 8) + arpeggio([43, 50, 55, 59, 62], 12)
    prog = chords_from_notes(notes, TM)
    assert labels(prog) == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert prog.spans[1].start_beat == pytest.approx(4.0)


def test_inversions_are_slash_chords() -> None:
    notes = block([40, 55, 60, 64], 0) + block([43, 60, 64, 67], 4) + block([41, 57, 62, 65], 8)
    prog = chords_from_notes(notes, TM)
    assert labels(prog) == ["C:maj/3", "C:maj/5", "D:min/b3"]


@pytest.mark.parametrize(
    ("pitches", "expected"),
    [
        ([43, 55, 59, 62, 65], "G:7"),
        ([48, 60, 64, 67, 71], "C:maj7"),
        ([45, 57, 60, 64, 67], "A:min7"),
        ([47, 59, 62, 65, 69], "B:hdim7"),
        ([47, 59, 62, 65, 68], "B:dim7"),
        ([43, 55, 60, 62, 67], "G:sus4"),
        ([50, 57, 62, 64, 69], "D:sus2"),
        ([52, 55, 58, 64], "E:dim"),
    ],
)
def test_sevenths_sus_and_dim(pitches: list[int], expected: str) -> None:
    prog = chords_from_notes(block(pitches, 0, 4.0), TM)
    assert labels(prog) == [expected]


def test_seventh_in_inversion() -> None:
    prog = chords_from_notes(block([47, 55, 62, 65], 0), TM)
    assert labels(prog) == ["G:7/3"]


def test_pop_accompaniment_with_passing_notes() -> None:
    """Bass on the beat, broken chord in eighths, a melody with passing tones above."""
    progression = [(48, [60, 64, 67], "C:maj"), (43, [59, 62, 67], "G:maj"), (45, [60, 64, 69], "A:min"), (41, [60, 65, 69], "F:maj")]
    notes: list[Note] = []
    melody_runs = [[72, 74, 76, 77], [74, 72, 71, 69], [72, 71, 69, 67], [69, 70, 72, 74]]
    for bar, ((bass, chord, _), run) in enumerate(zip(progression * 2, melody_runs * 2, strict=True)):
        t = 4.0 * bar
        notes.append(Note(bass, t, t + 2.0, 95))
        notes.append(Note(bass + 12, t + 2.0, t + 4.0, 85))
        notes += arpeggio(chord, t + 0.5, 3.5, 0.5)
        # melody in quarters: the 2nd and 4th notes are often not chord tones
        notes += [Note(p, t + i, t + i + 1.0, 70) for i, p in enumerate(run)]
    prog = chords_from_notes(notes, TM)
    expected = [lab for _, _, lab in progression] * 2
    got = [prog.label_at(4.0 * bar + 2.0) for bar in range(8)]
    assert [majmin(g) for g in got] == [majmin(e) for e in expected]
    assert len(prog.spans) <= 10


def test_rests_and_empty_input() -> None:
    notes = block([48, 60, 64, 67], 0, 2.0) + block([43, 59, 62, 67], 10, 2.0)
    prog = chords_from_notes(notes, TM)
    assert labels(prog) == ["C:maj", "N", "G:maj"]
    assert prog.label_at(5.0) == "N"
    with pytest.raises(ValueError, match="has no notes; select a clip with notes"):
        chords_from_notes([], TM)


def test_spans_tile_without_gaps() -> None:
    notes = arpeggio([45, 52, 57, 60], 0.25, 7.5, 0.25) + block([41, 57, 60, 65], 8, 3.0)
    prog = chords_from_notes(notes, TM)
    for a, b in zip(prog.spans, prog.spans[1:], strict=False):
        assert a.end_beat == pytest.approx(b.start_beat)
        assert a.label != b.label
    assert prog.spans[0].start_beat == pytest.approx(0.25)
    assert prog.spans[-1].end_beat == pytest.approx(11.0)


def test_chords_from_symbols() -> None:
    prog = chords_from_symbols([["A:min", 0, 4], ["F:maj", 4, 8], ["G:7/3", 8, 12.5], ["N", 12.5, 16]])
    assert labels(prog) == ["A:min", "F:maj", "G:7/3", "N"]
    assert prog.label_at(9.0) == "G:7/3"
    assert chords_from_symbols([["Gb:maj", 4, 8], ["C", 0, 4]]).spans[0].label == "C:maj"


@pytest.mark.parametrize(
    ("symbols", "match"),
    [
        ([["H:min", 0, 4]], "'H:min'.*C:maj"),
        ([["C:major", 0, 4]], "'C:major'.*C:maj"),
        ([["C:maj", 4, 4]], "end must be after the start"),
        ([["C:maj", -1, 4]], "beats start at 0"),
        ([["C:maj", 0, 4], ["D:min", 3, 8]], "overlap"),
        ([["C:maj", 0]], "label, start_beat, end_beat"),
        ([["C:maj", "zero", 4]], "numbers"),
        ([[7, 0, 4]], "must be text"),
        ([], "non-empty list"),
    ],
)
def test_chords_from_symbols_errors(symbols: list[list[object]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        chords_from_symbols(symbols)


def test_apply_sustain_extends_only_under_pedal() -> None:
    notes = [Note(60, 0.0, 0.5), Note(64, 2.0, 2.5)]
    out = apply_sustain(notes, [(0.2, 1.0)], max_extend_beats=4.0)
    assert out[0].end_beat == pytest.approx(1.0)
    assert out[1] == notes[1]
    assert apply_sustain(notes, [(0.2, 9.0)], max_extend_beats=0.25)[0].end_beat == pytest.approx(0.75)


def test_accompaniment_track_choice(tmp_path: Path) -> None:
    melody = MidiTrack("MELODY", 0, False, tuple(Note(p, i, i + 1.0) for i, p in enumerate([73, 75, 78, 80])))
    piano = MidiTrack("PIANO", 0, False, tuple(block([48, 60, 64, 67], 0)))
    drums = MidiTrack("Drums", 0, True, (Note(36, 0, 0.5),))
    midi = MidiFile(tmp_path / "x.mid", TM, (melody, piano, drums))
    assert accompaniment_notes(midi, pedal_extend_beats=0.0) == list(piano.notes)
    # no names: the monophonic (melody-like) track is left out, the chordal one kept
    unnamed = MidiFile(
        tmp_path / "y.mid", TM, (MidiTrack("", 0, False, melody.notes), MidiTrack("", 0, False, piano.notes), drums)
    )
    assert accompaniment_notes(unnamed, pedal_extend_beats=0.0) == list(piano.notes)
    only_melody = MidiFile(tmp_path / "z.mid", TM, (melody,))
    assert accompaniment_notes(only_melody, pedal_extend_beats=0.0) == list(melody.notes)


def _song_majmin(num: int) -> float:
    mir_eval = pytest.importorskip("mir_eval")
    from conditioning.io.midi import read_midi

    song = POP909 / f"{num:03d}"
    midi = read_midi(song / f"{num:03d}.mid")
    prog = analyze_midi_chords(midi)
    tm = midi.tempo_map
    rows = [line.split("\t") for line in (song / "chord_midi.txt").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if float(r[1]) > float(r[0])]
    ref_int = np.array([[float(r[0]), float(r[1])] for r in rows])
    ref_lab = [r[2].strip() for r in rows]
    est = [(tm.beat_to_seconds(c.start_beat), tm.beat_to_seconds(c.end_beat), c.label) for c in prog.spans]
    est = [c for c in est if c[1] > c[0]]
    est_int = np.array([[a, b] for a, b, _ in est])
    est_lab = [label for _, _, label in est]
    est_int, est_lab = mir_eval.util.adjust_intervals(est_int, est_lab, ref_int.min(), ref_int.max(), "N", "N")
    return float(mir_eval.chord.evaluate(ref_int, ref_lab, est_int, est_lab)["majmin"])


@pytest.mark.skipif(not (POP909 / "045" / "045.mid").is_file(), reason="POP909 dev data not present")
def test_pop909_held_out_song_majmin() -> None:
    assert _song_majmin(45) >= 0.85


@pytest.mark.parametrize(
    ("symbols", "key"),
    [
        ([["D:min7", 0, 4], ["G:7", 4, 8], ["C:maj7", 8, 16]], "C major"),
        ([["A:min", 0, 4], ["D:min", 4, 8], ["E:7", 8, 12], ["A:min", 12, 16]], "A minor"),
        ([["E:maj", 0, 4], ["B:maj", 4, 8], ["C#:min", 8, 12], ["A:maj", 12, 16]], "E major"),
        ([["N", 0, 4]], None),
    ],
)
def test_key_is_estimated_from_chord_symbols(symbols: list[list[object]], key: str | None) -> None:
    prog = chords_from_symbols(symbols)
    assert (prog.key.name if prog.key is not None else None) == key

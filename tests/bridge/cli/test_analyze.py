"""``stembridge analyze``'s JSON documents (moved here from the conditioning modules they present)."""

from __future__ import annotations

import pytest

from bridge.cli.analyze import bar_and_beat, chords_to_json, drums_to_json, melody_to_json
from conditioning.chords import chords_from_notes, chords_from_symbols
from conditioning.drums import drums_from_notes
from conditioning.timeline import TempoMap, TempoPoint, TimeSignature
from conditioning.types import Melody, Note


def block(pitches: list[int], start: float, length: float = 4.0, velocity: int = 90) -> list[Note]:
    return [Note(p, start, start + length, velocity) for p in pitches]


def _hit(pitch: int, beat: float, vel: int = 100) -> Note:
    return Note(pitch, beat, beat + 0.1, vel)


def test_chords_to_json_with_tempo_change() -> None:
    tm = TempoMap([TempoPoint(0.0, 120.0), TempoPoint(4.0, 60.0)])
    prog = chords_from_symbols([["A:min", 0, 4], ["F:maj", 4, 8]])
    doc = chords_to_json(prog, tm)
    assert doc["key"] == "A minor"  # estimated from the symbols themselves
    assert doc["tempo_bpm"] == 120.0
    assert doc["chords"] == [
        {"start_s": 0.0, "end_s": 2.0, "start_beat": 0.0, "end_beat": 4.0, "start_bar": 1.0, "end_bar": 2.0,
         "label": "A:min"},
        {"start_s": 2.0, "end_s": 6.0, "start_beat": 4.0, "end_beat": 8.0, "start_bar": 2.0, "end_bar": 3.0,
         "label": "F:maj"},
    ]
    recognised = chords_from_notes(block([45, 57, 60, 64], 0) + block([41, 57, 60, 65], 4), tm)
    assert chords_to_json(recognised, tm)["key"] in ("A minor", "C major", "F major")


def test_chords_to_json_carries_bars_through_the_tempo_map() -> None:
    # two bars of 4/4, then 3/4: beat 8 is bar 3, beat 11 is bar 4, beat 12.5 is half-way into bar 4
    tm = TempoMap([TempoPoint(0.0, 120.0), TempoPoint(8.0, 90.0, TimeSignature(3, 4))])
    prog = chords_from_symbols([["A:min", 0, 4], ["F:maj", 4, 8], ["C:maj", 8, 11], ["G:maj", 11, 12.5]])
    doc = chords_to_json(prog, tm)
    assert [(c["start_bar"], c["end_bar"]) for c in doc["chords"]] == [(1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 4.5)]
    assert TempoMap.from_json(doc["tempo_map"]) == tm
    assert bar_and_beat(doc["chords"][3]["end_bar"], tm) == (4, 2.5)
    assert bar_and_beat(doc["chords"][1]["start_bar"], tm) == (2, 1.0)


def test_melody_to_json() -> None:
    tm = TempoMap.constant(92.0)
    mel = Melody((Note(57, 4.0, 5.0, 90), Note(60, 0.0, 1.0, 80)), source="audio")
    js = melody_to_json(mel, tm)
    assert js == {
        "notes": [
            {"start_s": 0.0, "end_s": round(60 / 92, 4), "pitch": 60, "velocity": 80},
            {"start_s": round(240 / 92, 4), "end_s": round(300 / 92, 4), "pitch": 57, "velocity": 90},
        ]
    }


def test_drums_json_summary() -> None:
    pattern = drums_from_notes([_hit(36, 0), _hit(38, 1), _hit(36, 4)])
    out = drums_to_json(pattern, TempoMap.constant(90))
    assert out["roles"] == {"kick": 2, "snare": 1}
    assert out["onsets"][2]["start_s"] == pytest.approx(4 * 60 / 90, abs=1e-6)
    assert out["bars"][0]["grid"]["kick"].startswith("x...")
    assert [b["bar"] for b in out["bars"]] == [1, 2]

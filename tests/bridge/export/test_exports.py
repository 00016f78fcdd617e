"""The REAPER project and arrangement MIDI exports, read back by independent parsers."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest
import rpp

from bridge.export.midi import write_arrangement_midi
from bridge.export.rpp import RppItem, rpp_text, write_rpp
from conditioning.io.midi import read_midi
from conditioning.timeline import Section, TempoMap
from conditioning.types import Note


@pytest.fixture
def song() -> tuple[TempoMap, list[Section]]:
    tm = TempoMap.from_json([
        {"beat": 0, "bpm": 92, "time_signature": [4, 4]},
        {"beat": 32, "bpm": 120, "time_signature": [7, 8]},
    ])
    return tm, [Section.from_bars("Verse 1", 1, 9, tm), Section.from_bars("Chorus 1", 9, 13, tm)]


def test_rpp_parses_with_independent_parser(song: tuple[TempoMap, list[Section]], tmp_path: Path) -> None:
    tm, sections = song
    items = [
        RppItem("SB Drums", 0.0, sections[0].length_seconds(tm), (("Verse 1 take 1", "verse-1_drums_take1.wav"),)),
        RppItem("SB Drums", tm.beat_to_seconds(32), sections[1].length_seconds(tm),
                (("Chorus 1 take 1", "chorus-1_drums_take1.wav"), ("Chorus 1 take 2", "chorus-1_drums_take2.wav"))),
        RppItem("SB Bass", 0.0, sections[0].length_seconds(tm), (("Verse 1 take 1", "verse-1_bass_take1.wav"),)),
    ]
    path = write_rpp(tmp_path / "a.rpp", tm, sections, items, 48000)
    project = rpp.loads(path.read_text())
    assert project.tag == "REAPER_PROJECT"
    assert project.find("SAMPLERATE")[1] == "48000"
    assert project.find("TEMPO")[1:4] == ["92", "4", "4"]
    pts = project.find("TEMPOENVEX").findall("PT")
    assert float(pts[1][1]) == pytest.approx(32 * 60 / 92)
    assert int(pts[1][4]) == 7 + 8 * 65536
    markers = project.findall("MARKER")
    assert [m[3] for m in markers if m[3]] == ["Verse 1", "Chorus 1"]
    assert float(markers[2][2]) == pytest.approx(tm.beat_to_seconds(tm.bar_to_beat(9)))
    tracks = project.findall("TRACK")
    assert [t.find("NAME")[1] for t in tracks] == ["SB Drums", "SB Bass"]
    chorus_item = tracks[0].findall("ITEM")[1]
    assert float(chorus_item.find("POSITION")[1]) == pytest.approx(tm.beat_to_seconds(tm.bar_to_beat(9)))
    files = [s.find("FILE")[1] for s in chorus_item.findall("SOURCE")]
    assert files == ["chorus-1_drums_take1.wav", "chorus-1_drums_take2.wav"]
    with pytest.raises(FileExistsError):
        write_rpp(path, tm, sections, items, 48000)


def test_rpp_quotes_names_with_quotes(song: tuple[TempoMap, list[Section]]) -> None:
    tm, _ = song
    text = rpp_text(tm, [Section.from_bars('The "Big" Chorus', 1, 2, tm)], [], 44100)
    markers = rpp.loads(text).findall("MARKER")
    assert markers[0][3] == 'The "Big" Chorus'


def test_arrangement_midi_round_trip(song: tuple[TempoMap, list[Section]], tmp_path: Path) -> None:
    tm, sections = song
    parts = {
        "drums": [Note(36, 0, 0.25, 100), Note(38, 33.5, 33.75, 90)],
        "bass": [Note(45, 0, 1, 90), Note(41, 32, 35.5, 80)],
    }
    path = write_arrangement_midi(tmp_path / "a.mid", tm, sections, parts, {"bass": 33})
    back = read_midi(path)
    # MIDI stores microseconds per quarter, so tempi come back within a microsecond
    assert [(p.beat, p.time_signature) for p in back.tempo_map.points] == [(p.beat, p.time_signature) for p in tm.points]
    assert [p.bpm for p in back.tempo_map.points] == pytest.approx([p.bpm for p in tm.points], rel=1e-5)
    by_name = {t.name: t for t in back.tracks}
    assert by_name["drums"].is_drum and not by_name["bass"].is_drum
    assert by_name["bass"].program == 33
    assert [(n.pitch, n.start_beat) for n in by_name["drums"].notes] == [(36, 0), (38, 33.5)]
    markers = [m.text for t in mido.MidiFile(str(path)).tracks for m in t if m.type == "marker"]
    assert markers == ["Verse 1", "Chorus 1"]

"""DAWproject export: validated against Bitwig's official XSDs, positions read back in beats/seconds."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xmlschema

from bridge.export.dawproject import AudioClip, write_dawproject, xml_text
from conditioning.io.audio import write_wav
from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio, Note

_REPO = Path(__file__).resolve().parents[3]
#: Bitwig's official schemas: $STEMBRIDGE_DAWPROJECT_XSD, else shared/data/dawproject next to or in the repo.
SCHEMAS = next(
    (p for p in (Path(os.environ.get("STEMBRIDGE_DAWPROJECT_XSD", _REPO / "missing")),
                 _REPO.parent / "shared" / "data" / "dawproject", _REPO / "shared" / "data" / "dawproject")
     if (p / "Project.xsd").exists()),
    _REPO.parent / "shared" / "data" / "dawproject",
)


@pytest.fixture(scope="module")
def schemas() -> tuple[xmlschema.XMLSchema, xmlschema.XMLSchema]:
    if not (SCHEMAS / "Project.xsd").exists():
        pytest.skip(f"the DAWproject schemas are not at {SCHEMAS} (set STEMBRIDGE_DAWPROJECT_XSD to the folder holding Project.xsd)")
    return xmlschema.XMLSchema(str(SCHEMAS / "Project.xsd")), xmlschema.XMLSchema(str(SCHEMAS / "MetaData.xsd"))


def _stem(folder: Path, name: str, section: Section, tm: TempoMap, sr: int = 8000) -> Path:
    n = section.length_samples(tm, sr)
    samples = np.sin(np.linspace(0, 50, n, dtype=np.float32))[None, :].repeat(2, axis=0)
    return write_wav(folder / name, Audio(samples, sr), subtype="FLOAT")


def _open(path: Path, schemas: tuple[xmlschema.XMLSchema, xmlschema.XMLSchema]) -> tuple[ET.Element, zipfile.ZipFile]:
    z = zipfile.ZipFile(path)
    project, metadata = z.read("project.xml"), z.read("metadata.xml")
    schemas[0].validate(project.decode("utf-8"))
    schemas[1].validate(metadata.decode("utf-8"))
    return ET.fromstring(project), z


def test_positions_tempo_map_and_takes(tmp_path: Path, schemas: tuple[xmlschema.XMLSchema, xmlschema.XMLSchema]) -> None:
    tm = TempoMap.from_json([
        {"beat": 0, "bpm": 92, "time_signature": [4, 4]},
        {"beat": 16, "bpm": 120, "time_signature": [4, 4]},
        {"beat": 20, "bpm": 150, "time_signature": [7, 8]},
    ])
    verse, chorus = Section.from_bars("Verse 1", 1, 5, tm), Section.from_bars("Chorus & <Co>", 5, 8, tm)
    clips = [
        AudioClip("SB Drums", verse, _stem(tmp_path, "verse-1_drums_take1.wav", verse, tm), "Verse 1 take 1"),
        AudioClip("SB Drums", chorus, _stem(tmp_path, "chorus_drums_take1.wav", chorus, tm), "Chorus take 1", active=False),
        AudioClip("SB Drums", chorus, _stem(tmp_path, "chorus_drums_take2.wav", chorus, tm), "Chorus take 2"),
        AudioClip("SB Bass", chorus, _stem(tmp_path, "chorus_bass_take2.wav", chorus, tm), "Chorus take 2"),
    ]
    parts = {"bass": [Note(40, 16.0, 17.0, 127), Note(43, 17.0, 30.0, 64)], "drums": [Note(36, 0.0, 0.25, 100)]}
    out = write_dawproject(tmp_path / "a.dawproject", tm, [verse, chorus], clips, parts, title="My song", comment="funk")
    root, z = _open(out, schemas)

    # tempo and metre: transport = first point, automation = every change, in beats, held
    assert root.find("Transport/Tempo").get("value") == "92.0"
    tempo = root.find("Arrangement/TempoAutomation")
    assert tempo.get("timeUnit") == "beats"
    assert tempo.find("Target").get("parameter") == root.find("Transport/Tempo").get("id")
    assert [(p.get("time"), p.get("value"), p.get("interpolation")) for p in tempo.findall("RealPoint")] == [
        ("0.0", "92.0", "hold"), ("16.0", "120.0", "hold"), ("20.0", "150.0", "hold")]
    metre = root.find("Arrangement/TimeSignatureAutomation")
    assert [(p.get("time"), p.get("numerator"), p.get("denominator")) for p in metre.findall("TimeSignaturePoint")] == [
        ("0.0", "4", "4"), ("20.0", "7", "8")]
    # markers at section starts, in beats; names escaped, not mangled
    markers = root.findall("Arrangement/Markers/Marker")
    assert [(m.get("time"), m.get("name")) for m in markers] == [("0.0", "Verse 1"), ("16.0", "Chorus & <Co>")]

    tracks = {t.get("name"): t for t in root.findall("Structure/Track")}
    assert set(tracks) == {"SB Drums", "SB Bass", "bass (MIDI)", "drums (MIDI)", "Master"}
    assert tracks["SB Drums"].get("contentType") == "audio"
    lanes = {ln.get("track"): ln for ln in root.find("Arrangement/Lanes").findall("Lanes")}
    assert root.find("Arrangement/Lanes").get("timeUnit") == "beats"
    drum_clips = lanes[tracks["SB Drums"].get("id")].findall("Clips/Clip")
    assert [(c.get("time"), c.get("name"), c.get("enable")) for c in drum_clips] == [
        ("0.0", "Verse 1 take 1", "true"), ("16.0", "Chorus take 1", "false"), ("16.0", "Chorus take 2", "true")]
    # the chorus is 3 bars: 4/4 at 120 (4 beats), then 2 bars of 7/8 at 150 (7 beats)
    chorus_clip = drum_clips[2]
    assert float(chorus_clip.get("duration")) == pytest.approx(11.0)
    warps = chorus_clip.find("Warps")
    assert (warps.get("timeUnit"), warps.get("contentTimeUnit")) == ("beats", "seconds")
    audio = warps.find("Audio")
    assert audio.get("timeUnit") == "seconds" and audio.get("sampleRate") == "8000" and audio.get("channels") == "2"
    length_s = chorus.length_samples(tm, 8000) / 8000
    assert float(audio.get("duration")) == pytest.approx(length_s)
    points = [(float(w.get("time")), float(w.get("contentTime"))) for w in warps.findall("Warp")]
    assert [b for b, _ in points] == [0.0, 4.0, 11.0]  # clip start, the tempo change at beat 20, clip end
    assert [s for _, s in points] == pytest.approx([0.0, 2.0, length_s])
    assert length_s == pytest.approx(2.0 + 7 * 60 / 150, abs=1 / 8000)
    # the WAV is embedded byte for byte
    path = audio.find("File").get("path")
    assert path == "audio/chorus_drums_take2.wav"
    assert z.read(path) == (tmp_path / "chorus_drums_take2.wav").read_bytes()
    for f in root.iter("File"):
        assert f.get("path") in z.namelist()

    # MIDI parts: one clip per section holding notes, times relative to the clip, cut at its end
    bass_clips = lanes[tracks["bass (MIDI)"].get("id")].findall("Clips/Clip")
    assert [c.get("time") for c in bass_clips] == ["16.0"]
    notes = bass_clips[0].findall("Notes/Note")
    assert [(n.get("time"), n.get("duration"), n.get("key"), n.get("channel"), n.get("vel")) for n in notes] == [
        ("0.0", "1.0", "40", "0", "1.0"), ("1.0", "10.0", "43", "0", "0.503937008")]
    drum_notes = lanes[tracks["drums (MIDI)"].get("id")].findall("Clips/Clip/Notes/Note")
    assert [n.get("channel") for n in drum_notes] == ["9"]
    meta = ET.fromstring(z.read("metadata.xml"))
    assert meta.findtext("Title") == "My song" and meta.findtext("Comment") == "funk"
    with pytest.raises(FileExistsError):
        write_dawproject(out, tm, [verse], [], {}, title="again")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_names_xml_rejects_still_validate(tmp_path: Path, schemas: tuple[xmlschema.XMLSchema, xmlschema.XMLSchema]) -> None:
    tm = TempoMap.constant(100)
    hostile = 'Ch\x00or\x1bus "1" \ud800 / \\ :*?<>| \u2603'
    sec = Section.from_bars(hostile, 1, 2, tm)
    clip = AudioClip("SB Lead", sec, _stem(tmp_path, "x.wav", sec, tm), f"{hostile} take 1")
    out = write_dawproject(tmp_path / "h.dawproject", tm, [sec], [clip], {"lead": [Note(60, 0, 1)]}, title=hostile)
    root, _z = _open(out, schemas)
    assert root.find("Arrangement/Markers/Marker").get("name") == xml_text(hostile)
    assert xml_text(hostile) == 'Ch\ufffdor\ufffdus "1" \ufffd / \\ :*?<>| \u2603'


def test_200_sections_and_100_tempo_changes_validate(
    tmp_path: Path, schemas: tuple[xmlschema.XMLSchema, xmlschema.XMLSchema]
) -> None:
    points, beat = [], 0.0
    for i in range(100):  # a change on every bar line, metre changing too
        points.append({"beat": beat, "bpm": 80 + (i * 7) % 90, "time_signature": [3 + i % 5, 4]})
        beat += 3 + i % 5
    tm = TempoMap.from_json(points)
    sections = [Section.from_bars(f"S{i}", i + 1, i + 2, tm) for i in range(200)]
    wav = _stem(tmp_path, "one.wav", sections[0], tm, sr=1000)
    clips = [AudioClip("SB Keys", sections[0], wav, "S0 take 1")]
    parts = {"keys": [Note(60, s.start_beat, s.start_beat + 0.5) for s in sections]}
    out = write_dawproject(tmp_path / "big.dawproject", tm, sections, clips, parts, title="big")
    root, _z = _open(out, schemas)
    assert len(root.findall("Arrangement/Markers/Marker")) == 200
    assert len(root.findall("Arrangement/TempoAutomation/RealPoint")) == 100
    marker_beats = [float(m.get("time")) for m in root.findall("Arrangement/Markers/Marker")]
    assert marker_beats == pytest.approx([s.start_beat for s in sections])
    assert len(root.findall(".//Notes/Note")) == 200

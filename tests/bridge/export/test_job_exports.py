"""Every job writes Broadcast-WAV stems, arrangement.dawproject and a session report; `stembridge report`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from wavinfo import WavInfoReader

import bridge.job.report as job_report
from bridge.cli.main import main
from bridge.export.report import pitch_track
from bridge.job.pipeline import run_request
from bridge.job.request import parse_request
from conditioning.timeline import TempoMap
from conditioning.types import Audio
from tests.bridge.conftest import base_request


@pytest.mark.slow
def test_every_job_writes_positions_dawproject_and_report(project: Path) -> None:
    result = run_request(parse_request(base_request(project, variations=2)))
    m = result.manifest
    tm = TempoMap.from_json(m["tempo_map"])
    for p in m["placements"]:
        bext = WavInfoReader(str(project / p["file"])).bext
        assert bext.time_reference == tm.beat_to_samples(p["start_beat"], m["sample_rate"])
        assert bext.description == f"stembridge: {p['section']} / {p['stem']} / take {p['take']}"
        assert bext.originator_ref == m["job_id"]
    chorus = [p for p in m["placements"] if p["section"] == "Chorus 1"]
    assert {p["take"] for p in chorus} == {1, 2}
    assert chorus[0]["start_s"] == pytest.approx(4.0)  # bar 3 at 120 bpm
    assert WavInfoReader(str(project / chorus[0]["file"])).bext.time_reference == 4 * 48000

    with zipfile.ZipFile(project / m["exports"]["dawproject"]) as z:
        import xml.etree.ElementTree as ET

        root = ET.fromstring(z.read("project.xml"))
        from tests.bridge.export.test_dawproject import SCHEMAS

        if (SCHEMAS / "Project.xsd").exists():
            import xmlschema

            xmlschema.XMLSchema(str(SCHEMAS / "Project.xsd")).validate(z.read("project.xml").decode("utf-8"))
            xmlschema.XMLSchema(str(SCHEMAS / "MetaData.xsd")).validate(z.read("metadata.xml").decode("utf-8"))
        for p in m["placements"]:
            name = Path(p["file"]).name
            assert z.read(f"audio/{name}") == (project / p["file"]).read_bytes()
    clips = root.findall("Arrangement/Lanes/Lanes/Clips/Clip")
    audio_clips = [c for c in clips if c.find("Warps") is not None]
    assert len(audio_clips) == len(m["placements"])
    enabled = {(c.get("name"), c.get("enable")) for c in audio_clips}
    assert ("Chorus 1 take 2", "true") in enabled and ("Chorus 1 take 1", "false") in enabled
    assert any(c.find("Notes") is not None for c in clips), "the MIDI parts are note clips"

    page = project / m["exports"]["report"]
    assert page.name == "report.html" and page.parent == result.manifest_path.parents[1] / "renders" / m["job_id"]
    html = page.read_text(encoding="utf-8")
    for p in m["placements"]:
        assert f'href="{Path(p["file"]).name}"' in html
    assert 'href="arrangement.dawproject"' in html and f'href="../../outbox/{m["job_id"]}.json"' in html
    assert (page.parent / "report" / "timeline.png").is_file() and (page.parent / "report" / "drums.png").is_file()
    assert "warnings" not in m


def test_a_failing_report_never_loses_the_stems(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("no fonts on this machine")

    monkeypatch.setattr(job_report, "write_report", broken)
    m = run_request(parse_request(base_request(project))).manifest
    assert m["status"] == "done" and len(m["placements"]) == 8
    assert all((project / p["file"]).is_file() for p in m["placements"])
    assert "report" not in m["exports"] and (project / m["exports"]["dawproject"]).is_file()
    assert m["warnings"] == ["session report not written: RuntimeError: no fonts on this machine"]


@pytest.mark.slow
def test_report_command_draws_a_new_page_beside_the_first(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = run_request(parse_request(base_request(project))).manifest
    first = (project / m["exports"]["report"]).read_bytes()
    assert main(["report", m["job_id"], "--project-dir", str(project)]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == project / "stembridge" / "renders" / m["job_id"] / "report-2.html"
    assert out.is_file() and (out.parent / "report-2" / "timeline.png").is_file()
    assert (project / m["exports"]["report"]).read_bytes() == first
    manifest = project / "stembridge" / "outbox" / f"{m['job_id']}.json"
    assert main(["report", str(manifest)]) == 0  # a manifest path names its project
    assert capsys.readouterr().out.strip().endswith("report-3.html")
    assert json.loads(manifest.read_text())["job_id"] == m["job_id"]


def test_report_command_unknown_job_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "no-such-job", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "no finished job 'no-such-job'" in err and "--project-dir" in err
    assert main(["report", "x", "--project-dir", str(project / "nope")]) == 2


def test_hum_pitch_track_finds_the_note_and_the_silence() -> None:
    sr = 22050
    t = np.arange(int(1.0 * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 220.0 * t)  # A3 = MIDI 57
    samples = np.concatenate([tone, np.zeros(sr // 2)]).astype(np.float32)[None, :]
    track = pitch_track(Audio(samples, sr), offset_s=2.0)
    assert track.times_s[0] == pytest.approx(2.0)
    voiced = (track.times_s > 2.1) & (track.times_s < 2.9)
    assert np.nanmedian(track.midi[voiced]) == pytest.approx(57.0, abs=0.2)
    assert np.all(np.isnan(track.midi[track.times_s > 3.15]))
    noise = np.random.default_rng(0).normal(0, 0.1, (1, sr)).astype(np.float32)
    assert np.isnan(pitch_track(Audio(noise, sr)).midi).mean() > 0.95  # breath noise has no pitch


def test_a_section_name_files_and_xml_reject_still_gives_valid_exports(project: Path) -> None:
    from tests.bridge.export.test_dawproject import SCHEMAS

    name = 'Ch/or\\us: "*?<>|" \x01\x7f & </Marker>'
    req = base_request(project, sections=[{"name": name, "start_bar": 1, "end_bar": 2}], stems=["drums", "bass"])
    m = run_request(parse_request(req)).manifest
    assert m["sections"][0]["name"] == name.strip()
    for p in m["placements"]:
        assert "/" not in Path(p["file"]).name.replace(".wav", "") and (project / p["file"]).is_file()
        assert WavInfoReader(str(project / p["file"])).bext.description.isascii()
    with zipfile.ZipFile(project / m["exports"]["dawproject"]) as z:
        text = z.read("project.xml").decode("utf-8")
    if (SCHEMAS / "Project.xsd").exists():
        import xmlschema

        xmlschema.XMLSchema(str(SCHEMAS / "Project.xsd")).validate(text)
    import xml.etree.ElementTree as ET

    marker = ET.fromstring(text).find("Arrangement/Markers/Marker")
    assert marker.get("name") == 'Ch/or\\us: "*?<>|" \ufffd\x7f & </Marker>'
    html = (project / m["exports"]["report"]).read_text(encoding="utf-8")
    assert "&lt;/Marker&gt;" in html and "\x01" not in html


def test_the_report_shows_the_seed_a_seedless_job_drew_and_reads_no_stem_back(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conditioning.io.audio as audio_io

    read_back: list[str] = []
    real_read = audio_io.read_audio

    def spy(path: object) -> Audio:
        read_back.append(Path(str(path)).name)
        return real_read(path)  # type: ignore[arg-type]

    monkeypatch.setattr(audio_io, "read_audio", spy)
    request = base_request(project)
    del request["seed"]
    m = run_request(parse_request(request)).manifest
    html = (project / m["exports"]["report"]).read_text(encoding="utf-8")
    assert f"seed {m['seed']}" in html
    assert not [name for name in read_back if name.endswith(".wav") and "_take" in name]

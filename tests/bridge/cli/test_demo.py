"""The example session as a newcomer runs it: `stembridge demo --out DIR`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.cli.main import main
from tests.bridge.job.test_pipeline import _check_manifest_against_wavs

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.slow
def test_demo_places_stems_matching_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--examples", str(EXAMPLES), "--json", "--quiet"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    _check_manifest_against_wavs(out, manifest)
    sections = [(s["name"], s["start_bar"], s["end_bar"]) for s in manifest["sections"]]
    assert sections == [("Intro", 1, 5), ("Verse 1", 5, 13), ("Chorus 1", 13, 21), ("Outro", 21, 25)]
    assert len(manifest["placements"]) == 16
    assert manifest["key"] == "A minor"
    # the musician's material is copied in once and never changed; a second run adds takes
    before = (out / "hum.wav").read_bytes()
    assert main(["demo", "--out", str(out), "--examples", str(EXAMPLES), "--json", "--quiet"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert {p["take"] for p in second["placements"]} == {2}
    assert (out / "hum.wav").read_bytes() == before
    for p in manifest["placements"]:
        assert (out / p["file"]).is_file()


def test_demo_refuses_to_overwrite_a_different_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "chords.mid").write_bytes(b"my own chords")
    assert main(["demo", "--out", str(out), "--examples", str(EXAMPLES), "--quiet"]) == 2
    assert "differs" in capsys.readouterr().err
    assert (out / "chords.mid").read_bytes() == b"my own chords"

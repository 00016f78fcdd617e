"""The ready-made requests in examples/requests/ run through `stembridge generate` as they are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from bridge.cli.main import main
from tests.bridge.job.test_pipeline import _check_manifest_against_wavs

REPO = Path(__file__).resolve().parents[3]
SESSION = REPO / "bridge" / "cli" / "demo_session"
REQUESTS = REPO / "examples" / "requests"


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project holding the example session's MIDI and the requests: their project.dir is ``..``."""
    root = tmp_path / "examples"
    root.mkdir()
    for name in ("chords.mid", "drums.mid"):
        shutil.copyfile(SESSION / name, root / name)
    shutil.copytree(REQUESTS, root / "requests")
    return root


def _generate(project: Path, name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = main(["generate", str(project / "requests" / name), "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    manifest: dict[str, Any] = json.loads(out)
    _check_manifest_against_wavs(project, manifest)
    return manifest


def test_every_example_request_is_listed_and_parses() -> None:
    names = sorted(p.name for p in REQUESTS.glob("*.json"))
    assert names == [
        "generate.json", "inline-notes-and-chords.json", "regenerate-bars.json", "tempo-and-metre-change.json",
    ]
    readme = (REQUESTS / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}`" in readme, f"{name} is not described in examples/requests/README.md"


def test_generate_then_regenerate_bars(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _generate(project, "generate.json", capsys)
    assert [(s["name"], s["start_bar"], s["end_bar"]) for s in first["sections"]] == [
        ("Verse 1", 5, 7), ("Chorus 1", 7, 9),
    ]
    assert len(first["placements"]) == 8 and {p["take"] for p in first["placements"]} == {1}
    again = _generate(project, "regenerate-bars.json", capsys)
    assert again["range"] == {"start_bar": 8, "end_bar": 9}
    assert again["base_job"] == first["job_id"]
    # only the chorus (bars 7-9) is touched; its new take keeps bar 7 sample for sample
    assert {(p["section"], p["take"]) for p in again["placements"]} == {("Chorus 1", 2)}
    old = {p["stem"]: p for p in first["placements"] if p["section"] == "Chorus 1"}
    changed = False
    for p in again["placements"]:
        new_audio, sr = sf.read(project / p["file"], always_2d=True, dtype="float32")
        old_audio, _ = sf.read(project / old[p["stem"]]["file"], always_2d=True, dtype="float32")
        bar_8 = int(round(4 * 60 / 92 * sr))  # one 4/4 bar at 92 bpm, in samples
        np.testing.assert_array_equal(new_audio[: bar_8 - sr // 10], old_audio[: bar_8 - sr // 10])
        changed |= not np.array_equal(new_audio[bar_8:], old_audio[bar_8:])
    assert changed, "the regenerated bar sounds exactly as before"


def test_tempo_and_metre_change(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _generate(project, "tempo-and-metre-change.json", capsys)
    assert m["tempo_map"] == [
        {"beat": 0.0, "bpm": 120.0, "time_signature": [4, 4]}, {"beat": 8.0, "bpm": 96.0, "time_signature": [3, 4]},
    ]
    bridge = [p for p in m["placements"] if p["section"] == "Bridge"]
    assert {p["stem"] for p in bridge} == {"drums", "bass", "keys"}
    # bars 3-5 in 3/4 at 96 bpm: 6 beats from beat 8, 3.75 s starting at 4 s
    for p in bridge:
        assert (p["start_beat"], p["end_beat"]) == (8.0, 14.0)
        assert p["start_s"] == pytest.approx(4.0) and p["length_s"] == pytest.approx(3.75)


def test_inline_notes_and_chords(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _generate(project, "inline-notes-and-chords.json", capsys)
    assert [s["role"] for s in m["sections"]] == ["intro", "outro"]
    assert len(m["placements"]) == 8
    assert m["key"] == "C major"  # estimated from the chord symbols (ii-V-I-vi in C)

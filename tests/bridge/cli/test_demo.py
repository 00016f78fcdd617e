"""The example session as a newcomer runs it: `stembridge demo --out DIR`."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.cli.demo import DEMO_SESSION_DIR, SESSION_FILE, bundled_session
from bridge.cli.main import main
from tests.bridge.job.test_pipeline import _check_manifest_against_wavs

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "bridge" / "cli" / DEMO_SESSION_DIR


def _session_files() -> list[str]:
    session = tomllib.loads(bundled_session().joinpath(SESSION_FILE).read_text(encoding="utf-8"))
    material = [src[k] for src in session["inputs"].values() for k in ("midi", "audio") if k in src]
    return [SESSION_FILE, *material]


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
    # the session gives no seed: take 2 has a new one (recorded) and sounds different
    assert second["seed"] != manifest["seed"]
    keys = [next(p for p in m["placements"] if p["stem"] == "keys") for m in (manifest, second)]
    assert (out / keys[0]["file"]).read_bytes() != (out / keys[1]["file"]).read_bytes()
    # --seed repeats a take exactly
    assert main(["demo", "--out", str(out), "--seed", str(manifest["seed"]), "--json", "--quiet"]) == 0
    third = json.loads(capsys.readouterr().out)
    for a, c in zip(manifest["placements"], third["placements"], strict=True):
        assert np.array_equal(sf.read(out / a["file"])[0], sf.read(out / c["file"])[0]), a["file"]
    for p in manifest["placements"]:
        assert (out / p["file"]).is_file()


def test_demo_refuses_to_overwrite_a_different_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "chords.mid").write_bytes(b"my own chords")
    assert main(["demo", "--out", str(out), "--quiet"]) == 2  # the bundled session, found as package data
    assert "differs" in capsys.readouterr().err
    assert (out / "chords.mid").read_bytes() == b"my own chords"


def test_bundled_session_is_package_data() -> None:
    """Every file the session names is reachable through importlib.resources and packaged."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["bridge.cli"]
    for name in _session_files():
        assert bundled_session().joinpath(name).is_file(), name
        assert any(fnmatch.fnmatch(f"{DEMO_SESSION_DIR}/{name}", g) for g in globs), f"{name} is not package data"


@pytest.mark.slow
def test_wheel_ships_the_demo_session(tmp_path: Path) -> None:
    src = tmp_path / "src"  # build from a copy: a build leaves build/ and *.egg-info behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("bridge", "conditioning", "models"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("stembridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in _session_files():
        assert f"bridge/cli/{DEMO_SESSION_DIR}/{name}" in names

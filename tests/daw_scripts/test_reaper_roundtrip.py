"""Round trip: manifests written by the real pipeline, imported by the REAPER listener (lua5.4).

Everything the listener reads here comes from stembridge itself: a generation and a bar-range
regeneration of a song with a tempo and metre change, and a status.json in the server's shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.job.pipeline import run_request
from bridge.job.request import parse_request
from tests.bridge.conftest import write_midi

TEMPO = [{"beat": 0, "bpm": 110, "time_signature": [4, 4]}, {"beat": 8, "bpm": 84, "time_signature": [6, 8]}]
FAKE_TEMPO = [{"qn": 0, "bpm": 110, "num": 4, "den": 4}, {"qn": 8, "bpm": 84, "num": 6, "den": 8}]


def _request(proj: Path, **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "project": {"dir": str(proj), "sample_rate": 44100, "tempo_map": TEMPO},
        "sections": [{"name": "Verse 1", "start_bar": 1, "end_bar": 3}, {"name": "Chorus 1", "start_bar": 3, "end_bar": 5}],
        "inputs": {"chords": {"midi": "chords.mid"}},
        "stems": ["bass", "keys"],
        "seed": 1,
        **extra,
    }


def test_listener_places_real_manifests_and_takes(lua: Any, tmp_path: Path) -> None:
    proj = tmp_path / "song"
    proj.mkdir()
    (proj / "song.rpp").write_text("<REAPER_PROJECT\n>\n")
    write_midi(proj / "chords.mid", [(p, 0.0, 14.0, 80) for p in (57, 60, 64)], name="chords")
    first = run_request(parse_request(_request(proj))).manifest
    regen = run_request(parse_request(_request(proj, seed=2, range={"start_bar": 3, "end_bar": 4}))).manifest
    status = {
        "version": 1, "updated": 0.0,
        "queued": [{"job_id": "20260101-000000-qqqqqq", "source": "osc", "model": "arranger", "created": 0.0,
                    "interrupted": False}],
        "running": [],
        "finished": [{"job_id": first["job_id"], "status": "done", "manifest": "x", "error": None}],
    }
    (proj / "stembridge" / "outbox" / "status.json").write_text(json.dumps(status))
    cfg = {"project_file": str(proj / "song.rpp"), "tempo": FAKE_TEMPO, "tracks": []}
    state = lua.run(cfg, lua.run_action("Listener") + "fake.run_deferred(3)\n")

    assert "error" not in state["console"].lower(), state["console"]
    for stem in ("Bass", "Keys"):
        (track,) = [t for t in state["tracks"] if t["name"] == f"SB {stem}"]
        placed = [p for p in first["placements"] if p["track"] == f"SB {stem}"]
        assert [(i["pos"], i["len"]) for i in track["items"]] == [
            (pytest.approx(p["start_s"], abs=1e-6), pytest.approx(p["length_s"], abs=1e-6)) for p in placed
        ]
        verse, chorus = track["items"]
        assert len(verse["takes"]) == 1 and len(chorus["takes"]) == 2 and chorus["active"] == 2
        new = next(p for p in regen["placements"] if p["track"] == f"SB {stem}")
        assert chorus["takes"][1]["file"].endswith(new["file"].split("/")[-1])
        assert Path(chorus["takes"][1]["file"]).is_file()
    # 8 beats at 110 bpm, then 6/8 bars of 3 beats at 84 bpm
    assert state["tracks"][0]["items"][1]["pos"] == pytest.approx(8 * 60 / 110)
    assert state["tracks"][0]["items"][1]["len"] == pytest.approx(6 * 60 / 84)
    assert "1 queued" in " ".join(state["frame_text"])

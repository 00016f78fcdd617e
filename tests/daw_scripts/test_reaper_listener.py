"""REAPER listener: manifests become items and takes on "SB ..." tracks at the right positions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conditioning.timeline import Section, TempoMap

# 120 bpm 4/4 for bars 1-9, then 90 bpm 3/4: a tempo and metre change mid-song.
TEMPO = [{"beat": 0, "bpm": 120, "time_signature": [4, 4]}, {"beat": 32, "bpm": 90, "time_signature": [3, 4]}]
FAKE_TEMPO = [{"qn": 0, "bpm": 120, "num": 4, "den": 4}, {"qn": 32, "bpm": 90, "num": 3, "den": 4}]
SECTIONS = [("Verse 1", 1, 9), ("Chorus 1", 9, 17)]


def _placement(job: str, stem: str, name: str, b0: int, b1: int, take: int) -> dict[str, Any]:
    tm = TempoMap.from_json(TEMPO)
    sec = Section.from_bars(name, b0, b1, tm)
    return {
        "stem": stem, "track": f"SB {stem.capitalize()}", "section": name,
        "file": f"stembridge/renders/{job}/{sec.slug}_{stem}_take{take}.wav",
        "start_bar": b0, "end_bar": b1, "start_beat": sec.start_beat,
        "start_s": sec.start_seconds(tm), "length_s": sec.length_seconds(tm), "take": take,
    }


def _write_manifest(proj: Path, job: str, placements: list[dict[str, Any]], **extra: Any) -> None:
    for p in placements:
        wav = proj / p["file"]
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"RIFF....WAVE")  # the fake only checks that the file exists
    manifest = {"version": 1, "job_id": job, "status": "done", "model": "arranger", "seed": 7,
                "sample_rate": 48000, "tempo_map": TEMPO, "placements": placements, **extra}
    outbox = proj / "stembridge" / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / f"{job}.json").write_text(json.dumps(manifest))


@pytest.fixture
def song(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    proj = tmp_path / "song"
    proj.mkdir()
    (proj / "song.rpp").write_text("<REAPER_PROJECT\n>\n")
    cfg = {"project_file": str(proj / "song.rpp"), "tempo": FAKE_TEMPO,
           "tracks": [{"name": "Chords"}, {"name": "SB Bass"}]}
    return proj, cfg


def _lua_write_file(path: Path, data: Any) -> str:
    """Lua that writes JSON to path (so a file can appear while the listener runs)."""
    return (f"do local f = io.open({json.dumps(str(path))}, 'w'); "
            f"f:write({json.dumps(json.dumps(data))}); f:close() end\n")


def _track(state: dict[str, Any], name: str) -> dict[str, Any]:
    (track,) = [t for t in state["tracks"] if t["name"] == name]
    return track


def test_import_then_regenerate_keeps_old_take(lua: Any, song: tuple[Path, dict[str, Any]]) -> None:
    proj, cfg = song
    job_a = "20260101-120000-aaaaaa"
    first = [_placement(job_a, stem, name, b0, b1, 1)
             for name, b0, b1 in SECTIONS for stem in ("drums", "bass")]
    _write_manifest(proj, job_a, first)

    job_b = "20260101-121000-bbbbbb"
    regen = [_placement(job_b, stem, "Chorus 1", 9, 17, 2) for stem in ("drums", "bass")]
    job_b_manifest = {"version": 1, "job_id": job_b, "status": "done", "model": "arranger", "seed": 8,
                      "sample_rate": 48000, "tempo_map": TEMPO, "placements": regen,
                      "range": {"start_bar": 11, "end_bar": 13}, "base_job": job_a}
    for p in regen:
        (proj / p["file"]).parent.mkdir(parents=True, exist_ok=True)
        (proj / p["file"]).write_bytes(b"RIFF")
    outbox = proj / "stembridge" / "outbox"
    status = {"queued": ["q1", "q2"], "running": [{"job_id": job_b, "progress": 0.42, "message": "drums"}],
              "finished": [job_a]}
    body = (
        lua.run_action("Listener")
        + "local after_first = fake.dump()\n"
        + _lua_write_file(outbox / "status.json", status)
        + "fake.run_deferred(2)\n"
        + "local frame = fake.dump().frame_text\n"
        + _lua_write_file(outbox / f"{job_b}.json", job_b_manifest)
        + "fake.run_deferred(3)\n"
        + "P.console[#P.console + 1] = 'FIRST=' .. require('stembridge_json').encode(after_first.tracks) .. '\\n'\n"
        + "P.console[#P.console + 1] = 'FRAME=' .. require('stembridge_json').encode(frame) .. '\\n'\n"
    )
    state = lua.run(cfg, body)

    tm = TempoMap.from_json(TEMPO)
    chorus = Section.from_bars("Chorus 1", 9, 17, tm)
    assert chorus.start_seconds(tm) == pytest.approx(16.0)
    assert chorus.length_seconds(tm) == pytest.approx(16.0)  # 24 beats at 90 bpm

    first_tracks = json.loads(state["console"].split("FIRST=")[1].split("\n")[0])
    names = [t["name"] for t in first_tracks]
    assert names == ["Chords", "SB Bass", "SB Drums"]  # existing SB Bass reused, SB Drums added
    drums = [t for t in first_tracks if t["name"] == "SB Drums"][0]
    assert [(i["pos"], i["len"]) for i in drums["items"]] == [(0.0, 16.0), (16.0, pytest.approx(16.0))]
    assert [len(i["takes"]) for i in drums["items"]] == [1, 1]

    frame = json.loads(state["console"].split("FRAME=")[1].split("\n")[0])
    assert any("42%" in line and job_b in line and "drums" in line for line in frame)
    assert "2 queued, 1 finished" in frame

    for stem in ("Drums", "Bass"):
        track = _track(state, f"SB {stem}")
        verse, chorus_item = track["items"]
        assert len(track["items"]) == 2, "a regeneration must not add a new item"
        assert len(verse["takes"]) == 1
        assert chorus_item["pos"] == pytest.approx(16.0) and chorus_item["len"] == pytest.approx(16.0)
        old, new = chorus_item["takes"]
        assert chorus_item["active"] == 2
        assert old["file"].endswith(f"{job_a}/chorus-1_{stem.lower()}_take1.wav")
        assert new["file"].endswith(f"{job_b}/chorus-1_{stem.lower()}_take2.wav")
        assert new["name"] == f"chorus-1_{stem.lower()}_take2 (bars 11-12)"
        assert Path(new["file"]).is_file()

    assert [u["desc"] for u in state["undo"]] == [f"StemBridge: import {job_a}", f"StemBridge: import {job_b}"]
    assert not any(u["open"] for u in state["undo"]) and state["refresh"] == 0
    ext = state["ext"]
    assert ext["StemBridge/last_job:Chorus 1"] == job_b and ext["StemBridge/last_job:Verse 1"] == job_a
    assert state["toggles"] == {"0:55555": 1} and state["deferred"] == 1


def test_listener_reports_errors_and_imports_once(lua: Any, song: tuple[Path, dict[str, Any]]) -> None:
    proj, cfg = song
    job = "20260101-130000-cccccc"
    _write_manifest(proj, job, [_placement(job, "keys", "Verse 1", 1, 9, 1)])
    (proj / _placement(job, "keys", "Verse 1", 1, 9, 1)["file"]).unlink()  # file missing
    outbox = proj / "stembridge" / "outbox"
    (outbox / "job-err.json").write_text(json.dumps(
        {"version": 1, "job_id": "job-err", "status": "error", "message": "model 'foo' is not installed"}))
    failed = proj / "stembridge" / "inbox" / "failed"
    failed.mkdir(parents=True)
    (failed / "reaper-generate-x.error.txt").write_text("sections overlap: end one where the next starts\n")
    (outbox / "status.json").write_text("{not json")  # tolerated
    state = lua.run(cfg, lua.run_action("Listener") + "fake.run_deferred(4)\nfake.exit()\n")
    console = state["console"]
    assert console.count("stem file stembridge/renders/") == 1  # reported once, not every poll
    assert "job job-err ended with status 'error': model 'foo' is not installed" in console
    assert console.count("the bridge rejected reaper-generate-x.json: sections overlap") == 1
    assert state["ext"][f"StemBridge/imported:{job}"] == "1"
    assert state["toggles"] == {"0:55555": 0}  # stopped: toggle off
    assert "Waiting for the bridge" in " ".join(state["frame_text"])


def test_listener_without_saved_project(lua: Any) -> None:
    state = lua.run({"project_file": ""}, lua.run_action("Listener") + "fake.run_deferred(1)\n")
    assert "Save the project" in " ".join(state["frame_text"])
    assert state["tracks"] == []


def test_import_uses_update_arrange_and_imports_each_manifest_once(lua: Any, song: tuple[Path, dict[str, Any]]) -> None:
    """Defect: UpdateArrangement (not a REAPER function) raised after placing, every 0.5 s."""
    proj, cfg = song
    job = "20260101-140000-dddddd"
    _write_manifest(proj, job, [_placement(job, "drums", "Verse 1", 1, 9, 1)])
    state = lua.run(cfg, lua.run_action("Listener") + "fake.run_deferred(6)\n")
    (item,) = _track(state, "SB Drums")["items"]
    assert len(item["takes"]) == 1, "the same stem was imported again on a later poll"
    assert [u["open"] for u in state["undo"]] == [False]
    assert state["arrange_updates"] == 1 and "Error" not in state["console"]


def test_an_import_failing_half_way_closes_its_undo_block_and_is_not_retried(
        lua: Any, song: tuple[Path, dict[str, Any]]) -> None:
    proj, cfg = song
    job = "20260101-150000-eeeeee"
    _write_manifest(proj, job, [_placement(job, stem, "Verse 1", 1, 9, 1) for stem in ("drums", "bass", "keys")])
    body = ("fake.break_function('SetMediaItemTake_Source', 1, 'cannot read the file')\n"
            + lua.run_action("Listener") + "fake.run_deferred(6)\n")
    state = lua.run(cfg, body)
    assert len(_track(state, "SB Drums")["items"]) == 1  # placed before the failure, once
    assert [u["open"] for u in state["undo"]] == [False], "the undo block was left open"
    assert state["refresh"] == 0, "PreventUIRefresh was left on"
    console = state["console"]
    assert console.count("the import stopped after 1 of 3 stem(s)") == 1
    assert "cannot read the file" in console and "will not be retried" in console
    assert state["ext"][f"StemBridge/imported:{job}"] == "1"
    assert "had errors" in " ".join(state["frame_text"])


def test_a_stem_reaper_cannot_open_leaves_no_empty_track_item_or_take(
        lua: Any, song: tuple[Path, dict[str, Any]]) -> None:
    proj, cfg = song
    job = "20260101-160000-ffffff"
    _write_manifest(proj, job, [_placement(job, "drums", "Verse 1", 1, 9, 1)])
    wav = Path(_placement(job, "drums", "Verse 1", 1, 9, 1)["file"]).name
    state = lua.run({**cfg, "undecodable": [wav]}, lua.run_action("Listener") + "fake.run_deferred(6)\n")
    assert not [t for t in state["tracks"] if t["name"] == "SB Drums"]
    assert "REAPER cannot open" in state["console"]
    assert [u["open"] for u in state["undo"]] == [False]


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_listener_keeps_terminate_on_rerun_set(lua: Any, song: tuple[Path, dict[str, Any]], mode: str) -> None:
    """Either reading of repeated set_action_options calls leaves "terminate on re-run" on."""
    _, cfg = song
    state = lua.run({**cfg, "action_options_mode": mode}, lua.run_action("Listener") + "fake.run_deferred(1)\n")
    assert state["action_flags"] & 1, f"terminate-on-re-run lost: calls {state['action_options']}"
    assert state["action_flags"] & 4 and state["toggles"] == {"0:55555": 1}


def test_listener_runs_on_reaper_6_without_set_action_options(lua: Any, song: tuple[Path, dict[str, Any]]) -> None:
    proj, cfg = song
    job = "20260101-160000-ffffff"
    _write_manifest(proj, job, [_placement(job, "drums", "Verse 1", 1, 9, 1)])
    state = lua.run({**cfg, "absent": ["set_action_options"]},
                    lua.run_action("Listener") + "fake.run_deferred(2)\nfake.exit()\n")
    assert state["action_options"] == [] and state["toggles"] == {"0:55555": 0}
    assert len(_track(state, "SB Drums")["items"]) == 1 and "Error" not in state["console"]

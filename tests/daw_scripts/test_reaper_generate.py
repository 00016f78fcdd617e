"""REAPER scripts: Generate, Regenerate selection, Variation and Cancel write the right mailbox files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from bridge.job.request import parse_request
from conditioning.timeline import TempoMap


def _project(tmp_path: Path) -> tuple[Path, Path]:
    proj = tmp_path / "My Song"
    proj.mkdir()
    rpp = proj / "My Song.rpp"
    rpp.write_text("<REAPER_PROJECT\n>\n")
    return proj, rpp


def _hum(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sr = 22050
    t = np.arange(sr) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    return path


def _inbox(proj: Path) -> list[Path]:
    inbox = proj / "stembridge" / "inbox"
    return sorted(inbox.glob("*.json")) if inbox.is_dir() else []


def _read_inbox(proj: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in _inbox(proj)]


def _base_config(rpp: Path, hum: Path) -> dict[str, Any]:
    """120 bpm 4/4: one bar is 2 s. Verse bars 1-9 (0-16 s), Chorus 1 bars 9-17 (16-32 s)."""
    return {
        "project_file": str(rpp),
        "srate_use": 1,
        "srate": 48000,
        "tempo": [{"qn": 0, "bpm": 120, "num": 4, "den": 4}],
        "regions": [
            {"name": "Chorus 1", "pos": 16.0, "rgnend": 32.0},
            {"name": "Verse 1", "pos": 0.0, "rgnend": 16.0},
            {"name": "just a marker", "pos": 4.0, "isrgn": False},
        ],
        "tracks": [
            {
                "name": "SB Drums",
                "items": [{"pos": 0.0, "len": 16.0, "selected": True,
                           "takes": [{"source": {"file": "/elsewhere/verse-1_drums_take1.wav"}}]}],
            },
            {
                "name": "Chords (Rhodes)",
                "items": [
                    {
                        "pos": 0.0, "len": 32.0, "selected": True,
                        "takes": [{"notes": [
                            {"pitch": 60, "start": 4.0, "len": 4.0, "vel": 90},
                            {"pitch": 57, "start": 0.0, "len": 4.0, "vel": 80},
                            {"pitch": 64, "start": 0.0, "len": 4.0, "vel": 80, "muted": True},
                        ]}],
                    }
                ],
            },
            {
                "name": "Drum MIDI",
                "items": [
                    {
                        "pos": 16.0, "len": 2.0, "selected": True,
                        "takes": [{"notes": [
                            {"pitch": 36, "start": 0.0, "len": 0.25, "vel": 110},
                            {"pitch": 38, "start": 1.0, "len": 0.25, "vel": 100},
                            {"pitch": 36, "start": 4.5, "len": 0.25, "vel": 100},  # after item end
                        ]}],
                    },
                    {"pos": 20.0, "len": 2.0, "selected": False,
                     "takes": [{"notes": [{"pitch": 42, "start": 0.0, "len": 0.1}]}]},
                ],
            },
            {
                "name": "Synth 2",
                "guid": "{SYNTH-2}",
                "items": [
                    {"pos": 8.0, "len": 2.0, "selected": True,
                     "takes": [{"notes": [{"pitch": 48, "start": 0.0, "len": 2.0, "vel": 70}]}]}
                ],
            },
            {
                "name": "Vox",
                "items": [
                    {"pos": 2.0, "len": 0.5, "selected": True,
                     "takes": [{"startoffs": 0.25, "source": {"file": str(hum), "length": 1.0}}]}
                ],
            },
        ],
        # (the "SB Drums" track below holds a generated stem: selected, but never an input)
        # 1st dialog: generate settings (prompt, stems, model, seed); 2nd: role of "Synth 2".
        "inputs": ["lo-fi funk, warm rhodes\ndrums, bass,keys\narranger\n7", "chords"],
    }


def test_generate_writes_request_v1_the_bridge_accepts(lua: Any, tmp_path: Path) -> None:
    proj, rpp = _project(tmp_path)
    hum = _hum(tmp_path / "elsewhere" / "hum take 3.wav")  # outside the project: gets copied in
    state = lua.run(_base_config(rpp, hum), lua.run_action("Generate"))

    files = _inbox(proj)
    assert len(files) == 1 and files[0].name.startswith("reaper-generate-")
    assert not list((proj / "stembridge" / "inbox").glob("*.tmp")), "temporary file left behind"
    req = json.loads(files[0].read_text())

    assert req["version"] == 1
    assert req["project"] == {
        "dir": str(proj), "sample_rate": 48000,
        "tempo_map": [{"beat": 0, "bpm": 120, "time_signature": [4, 4]}],
    }
    assert req["sections"] == [
        {"name": "Verse 1", "start_bar": 1, "end_bar": 9},
        {"name": "Chorus 1", "start_bar": 9, "end_bar": 17},
    ]
    # Chords: the Rhodes notes (muted one dropped) plus Synth 2 (role asked once) in beat order.
    assert req["inputs"]["chords"]["notes"] == [
        {"pitch": 57, "start_beat": 0.0, "end_beat": 4.0, "velocity": 80},
        {"pitch": 60, "start_beat": 4.0, "end_beat": 8.0, "velocity": 90},
        {"pitch": 48, "start_beat": 16.0, "end_beat": 18.0, "velocity": 70},
    ]
    # Drums item starts at 16 s = beat 32; the note past the item's end is not heard, not sent.
    assert req["inputs"]["drums"]["notes"] == [
        {"pitch": 36, "start_beat": 32.0, "end_beat": 32.25, "velocity": 110},
        {"pitch": 38, "start_beat": 33.0, "end_beat": 33.25, "velocity": 100},
    ]
    assert req["inputs"]["melody"] == {
        "audio": "stembridge/inputs/hum take 3.wav", "offset_s": 2.0,
        "source_offset_s": 0.25, "length_s": 0.5,
    }
    assert (proj / "stembridge" / "inputs" / "hum take 3.wav").read_bytes() == hum.read_bytes()
    assert req["prompt"] == "lo-fi funk, warm rhodes"
    assert req["stems"] == ["drums", "bass", "keys"]
    assert (req["model"], req["seed"], req["variations"]) == ("arranger", 7, 1)

    parsed = parse_request(req)  # the real bridge parser: no unknown keys, paths inside project
    assert [s.name for s in parsed.sections] == ["Verse 1", "Chorus 1"]
    assert parsed.melody is not None and parsed.melody.source_offset_s == 0.25

    ext = state["ext"]
    assert ext["StemBridge/role:{SYNTH-2}"] == "chords"
    assert ext["StemBridge/last_request:Verse 1"] == files[0].stem
    assert ext["StemBridge/last_request:Chorus 1"] == files[0].stem
    assert ext["StemBridge/prompt"] == "lo-fi funk, warm rhodes"
    assert "Sent reaper-generate-" in state["console"]


def test_generate_remembers_roles_and_settings(lua: Any, tmp_path: Path) -> None:
    proj, rpp = _project(tmp_path)
    cfg = _base_config(rpp, _hum(proj / "hum.wav"))
    state = lua.run(cfg, lua.run_action("Generate") + "\n" + lua.run_action("Generate"))
    asked = [a["title"] for a in state["inputs_asked"]]
    # settings twice (pre-filled the second time), the role of "Synth 2" only once
    assert asked.count("StemBridge: what is on Synth 2?") == 1
    assert asked.count("StemBridge: generate") == 2
    assert state["inputs_asked"][-1]["defaults"] == "lo-fi funk, warm rhodes\ndrums, bass,keys\narranger\n7"
    reqs = _read_inbox(proj)
    assert len(reqs) == 2 and reqs[0]["inputs"] == reqs[1]["inputs"]
    assert reqs[0]["inputs"]["melody"]["audio"] == "hum.wav"  # inside the project: not copied


@pytest.mark.parametrize("off_bar", ["partial", "continue"])
def test_tempo_change_mid_song(lua: Any, tmp_path: Path, off_bar: str) -> None:
    """120 bpm 4/4 for 8 bars, then 90 bpm 3/4 from beat 32 (16 s), under both readings of
    how REAPER counts measures across time-signature markers."""
    proj, rpp = _project(tmp_path)
    cfg = {
        "timesig_off_bar": off_bar,
        "project_file": str(rpp),
        "device_srate": 44100,  # no project rate set: the audio device's rate is sent
        "tempo": [{"qn": 0, "bpm": 120, "num": 4, "den": 4}, {"qn": 32, "bpm": 90, "num": 3, "den": 4}],
        "regions": [
            {"name": "Verse", "pos": 0.0, "rgnend": 16.0},
            {"name": "Bridge", "pos": 16.0, "rgnend": 32.0},  # 8 bars of 3/4 at 90 bpm = 16 s
            {"name": "Outro", "pos": 32.0, "rgnend": 33.0},  # ends mid-bar: sent in beats
        ],
        "tracks": [{"name": "melody", "items": [
            {"pos": 18.0, "len": 4.0, "selected": True,
             "takes": [{"notes": [{"pitch": 72, "start": 0.5, "len": 1.0, "vel": 64}]}]},
        ]}],
        "inputs": [],
    }
    lua.run(cfg, lua.run_action("Generate"))
    (req,) = _read_inbox(proj)
    assert req["project"]["sample_rate"] == 44100
    assert req["project"]["tempo_map"] == [
        {"beat": 0, "bpm": 120, "time_signature": [4, 4]},
        {"beat": 32, "bpm": 90, "time_signature": [3, 4]},
    ]
    assert req["sections"][:2] == [
        {"name": "Verse", "start_bar": 1, "end_bar": 9},
        {"name": "Bridge", "start_bar": 9, "end_bar": 17},
    ]
    outro = req["sections"][2]
    assert outro["name"] == "Outro"
    assert outro["start_beat"] == pytest.approx(56.0) and outro["end_beat"] == pytest.approx(57.5)
    # 18 s is 2 s after the change: 3 beats at 90 bpm, so the note at +0.5 beat is beat 35.5.
    (note,) = req["inputs"]["melody"]["notes"]
    assert note["start_beat"] == pytest.approx(35.5) and note["end_beat"] == pytest.approx(36.5)
    tm = TempoMap.from_json(req["project"]["tempo_map"])
    assert tm.beat_to_seconds(note["start_beat"]) == pytest.approx(18.0 + 0.5 * 60 / 90)
    parsed = parse_request(req)
    assert [s.end_bar for s in parsed.sections][:2] == [9.0, 17.0]


def test_looped_midi_item_repeats_its_notes(lua: Any, tmp_path: Path) -> None:
    proj, rpp = _project(tmp_path)
    cfg = {
        "project_file": str(rpp),
        "time_selection": [0.0, 8.0],
        "tracks": [{"name": "drums", "items": [
            {"pos": 0.0, "len": 5.0, "loop": 1, "selected": True,
             "takes": [{"source_len": 4.0, "notes": [{"pitch": 36, "start": 0.0, "len": 0.5}]}]},
        ]}],
    }
    lua.run(cfg, lua.run_action("Generate"))
    (req,) = _read_inbox(proj)
    assert [n["start_beat"] for n in req["inputs"]["drums"]["notes"]] == [0.0, 4.0, 8.0]
    assert req["sections"] == [{"name": "Selection", "start_bar": 1, "end_bar": 5}]


def test_generate_unsaved_project_or_no_sections_tells_the_musician(lua: Any, tmp_path: Path) -> None:
    state = lua.run({"project_file": ""}, lua.run_action("Generate"))
    assert "Save the project first" in state["boxes"][0]["msg"]
    _, rpp = _project(tmp_path)
    state = lua.run({"project_file": str(rpp)}, lua.run_action("Generate"))
    assert "Mark your song sections as regions" in state["boxes"][0]["msg"]


def _generated_song(lua: Any, tmp_path: Path, extra_body: str, *, selection: list[float],
                    ext: dict[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    proj, rpp = _project(tmp_path)
    cfg = _base_config(rpp, _hum(proj / "hum.wav"))
    cfg["inputs"] = ["funk\ndrums,bass\narranger\n7", "chords"]
    body = (
        lua.run_action("Generate")
        + "\nlocal util = require('stembridge_util')\n"
        + "".join(f"util.set_state({json.dumps(k)}, {json.dumps(v)})\n" for k, v in (ext or {}).items())
        + f"P.timesel = {{{selection[0]}, {selection[1]}}}\n"
        + extra_body
    )
    return proj, lua.run(cfg, body)


def test_regenerate_selection_snaps_to_bars_and_reuses_the_request(lua: Any, tmp_path: Path) -> None:
    # 21 s..25 s is bar 11.5..13.5: snapped out to bars 11-14 (end exclusive).
    proj, state = _generated_song(
        lua, tmp_path, lua.run_action("Regenerate selection"),
        selection=[21.0, 25.0], ext={"last_job:Chorus 1": "20260101-000000-aaaaaa"},
    )
    gen, regen = sorted(_read_inbox(proj), key=lambda r: "range" in r)
    assert regen["range"] == {"start_bar": 11, "end_bar": 14}
    assert regen["base_job"] == "20260101-000000-aaaaaa"
    assert regen["seed"] != gen["seed"]
    for key in ("project", "sections", "inputs", "prompt", "stems", "model"):
        assert regen[key] == gen[key]
    parsed = parse_request(regen)
    assert parsed.range_bars == (11.0, 14.0)
    assert [s.name for s in parsed.sections_to_generate()] == ["Chorus 1"]
    assert "regenerate bars 11-13 of Chorus 1" in state["console"]


def test_regenerate_across_sections_from_different_jobs(lua: Any, tmp_path: Path) -> None:
    proj, _ = _generated_song(
        lua, tmp_path, lua.run_action("Regenerate selection"),
        selection=[14.5, 18.5],  # bars 8.25..10.25 -> 8..11, across the Verse/Chorus line at bar 9
        ext={"last_job:Verse 1": "job-verse", "last_job:Chorus 1": "job-chorus"},
    )
    regens = [r for r in _read_inbox(proj) if "range" in r]
    by_job = {r["base_job"]: r["range"] for r in regens}
    assert by_job == {"job-verse": {"start_bar": 8, "end_bar": 9}, "job-chorus": {"start_bar": 9, "end_bar": 11}}
    for r in regens:
        parse_request(r)


def test_regenerate_needs_a_generated_section(lua: Any, tmp_path: Path) -> None:
    proj, rpp = _project(tmp_path)
    cfg = _base_config(rpp, _hum(proj / "hum.wav"))
    cfg["time_selection"] = [1.0, 3.0]
    state = lua.run(cfg, lua.run_action("Regenerate selection"))
    assert "has not been generated yet" in state["boxes"][0]["msg"]
    assert _inbox(proj) == []


def test_variation_and_cancel_write_control_files(lua: Any, tmp_path: Path) -> None:
    proj, rpp = _project(tmp_path)
    outbox = proj / "stembridge" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / "status.json").write_text(json.dumps({
        "queued": [{"job_id": "job-q"}],
        "running": [{"job_id": "job-r", "progress": 0.5, "message": "rendering"}],
        "finished": ["job-old"],
    }))
    cfg = _base_config(rpp, _hum(proj / "hum.wav"))
    cfg["cursor"] = 20.0  # inside Chorus 1
    cfg["ext"] = {"StemBridge/last_job:Chorus 1": "job-chorus", "StemBridge/last_job": "job-latest"}
    lua.run(cfg, lua.run_action("Variation") + "\n" + lua.run_action("Cancel"))
    docs = _read_inbox(proj)
    assert {"version": 1, "action": "variation", "job_id": "job-chorus"} in docs
    cancels = sorted(d["job_id"] for d in docs if d["action"] == "cancel")
    assert cancels == ["job-q", "job-r"]
    assert all(set(d) == {"version", "action", "job_id"} for d in docs)


def test_cancel_with_nothing_running(lua: Any, tmp_path: Path) -> None:
    proj, rpp = _project(tmp_path)
    state = lua.run({"project_file": str(rpp)}, lua.run_action("Cancel"))
    assert "Nothing to cancel" in state["console"]
    assert _inbox(proj) == []


def test_project_metre_without_tempo_markers_keeps_its_denominator(lua: Any, tmp_path: Path) -> None:
    """A new 6/8 project has no tempo markers: bars are 3 beats, not 6 (the metre came out as 6/4)."""
    proj, rpp = _project(tmp_path)
    cfg = {
        "project_file": str(rpp),
        "tempo": [{"qn": 0, "bpm": 120, "num": 6, "den": 8}],
        "no_markers": True,
        "regions": [{"name": "Verse", "pos": 0.0, "rgnend": 6.0}],  # 12 beats at 120 bpm = 4 bars of 6/8
        "tracks": [{"name": "chords", "items": [
            {"pos": 0.0, "len": 6.0, "selected": True,
             "takes": [{"notes": [{"pitch": 60, "start": 0.0, "len": 1.5, "vel": 90}]}]},
        ]}],
        "inputs": [],
    }
    lua.run(cfg, lua.run_action("Generate"))
    (req,) = _read_inbox(proj)
    assert req["project"]["tempo_map"] == [{"beat": 0, "bpm": 120, "time_signature": [6, 8]}]
    assert req["sections"] == [{"name": "Verse", "start_bar": 1, "end_bar": 5}]
    parsed = parse_request(req)
    assert parsed.sections[0].end_beat == pytest.approx(12.0)


def test_dialog_captions_label_the_boxes_they_ask_for(lua: Any, tmp_path: Path) -> None:
    """REAPER splits captions on commas even with separator=: no caption may hold a comma."""
    proj, rpp = _project(tmp_path)
    state = lua.run(_base_config(rpp, _hum(proj / "hum.wav")), lua.run_action("Generate"))
    settings, role = state["inputs_asked"]
    assert settings["captions"] == ["Prompt (style and instruments):", "Stems (separated by commas):",
                                    "Model:", "Seed:"]
    assert role["captions"] == ["Role (chords / drums / melody):"]
    assert len(_inbox(proj)) == 1


def _refusals(lua: Any, calls: list[str], *, setup: str = "", config: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """Run each Lua statement of ``calls`` under pcall: (one console line per call, api_errors)."""
    body = ("local function try(f) local ok, err = pcall(f) P.console[#P.console + 1] = tostring(err) .. '\\n' end\n"
            + setup + "".join(f"try(function() {call} end)\n" for call in calls))
    state = lua.run(config or {}, body, allow_api_errors=True)
    return state["console"].splitlines(), state["api_errors"]


def test_fake_reaper_refuses_what_reaper_refuses(lua: Any) -> None:
    lines, errors = _refusals(lua, [
        "reaper.UpdateArrangement()",
        "reaper.GetTrack(0)",
        "reaper.CountTracks(0, 1)",
        "reaper.SetProjExtState(0, 'S', 'k', 5)",
        "reaper.GetUserInputs('t', 2, 'A (x, y):,B:,separator=\\n', '1\\n2')",
        "reaper.Main_OnCommand(40044, 0)",
    ])
    assert len(errors) == 6
    expected = ["REAPER has no function reaper.UpdateArrangement", "missing required argument 2 (trackidx: integer)",
                "takes 1 argument(s), the script passed 2", "argument 4 (value) must be string",
                "3 labels for 2 boxes", "does not model reaper.Main_OnCommand"]
    for line, fragment in zip(lines, expected, strict=True):
        assert fragment in line


def test_fake_reaper_refuses_a_handle_of_the_wrong_kind_and_unknown_field_names(lua: Any) -> None:
    """REAPER checks pointer types (a take is no item, a track no project) and the fake must too;
    a misspelt parameter name is reported even when a script's pcall catches it."""
    setup = ("local track = reaper.GetTrack(0, 0)\n"
             "local item = reaper.GetTrackMediaItem(track, 0)\n"
             "local take = reaper.GetActiveTake(item)\n")
    lines, errors = _refusals(lua, [
        "reaper.GetMediaItemInfo_Value(track, 'D_POSITION')",
        "reaper.SetMediaItemInfo_Value(take, 'D_POSITION', 3)",
        "reaper.CountTracks(track)",
        "reaper.GetActiveTake({})",
        "reaper.GetMediaItemInfo_Value(item, 'D_POSITON')",
        "error(string.format('%g', reaper.GetMediaItemInfo_Value(item, 'D_POSITION')), 0)",  # the right handle reads
    ], setup=setup, config={"tracks": [{"name": "Keys", "items": [{"pos": 2.0, "len": 4.0, "takes": [{"name": "t"}]}]}]})
    assert len(errors) == 5
    expected = ["argument 1 (item) must be MediaItem", "argument 1 (item) must be MediaItem",
                "argument 1 (proj) must be ReaProject", "argument 1 (item) must be MediaItem",
                "does not model item field D_POSITON"]
    for line, fragment in zip(lines[:5], expected, strict=True):
        assert fragment in line
    assert lines[5] == "2"


@pytest.mark.parametrize("off_bar", ["partial", "continue"])
def test_time_signature_marker_off_a_bar_line_is_explained_not_sent(lua: Any, tmp_path: Path, off_bar: str) -> None:
    """A 3/4 marker 2 quarter notes into bar 2: REAPER's measure count there is not documented and
    the bridge refuses such a map, so the musician is told what to move, whichever reading holds."""
    proj, rpp = _project(tmp_path)
    cfg = {
        "project_file": str(rpp), "timesig_off_bar": off_bar,
        "tempo": [{"qn": 0, "bpm": 120, "num": 4, "den": 4}, {"qn": 6, "bpm": 120, "num": 3, "den": 4}],
        "regions": [{"name": "Verse", "pos": 0.0, "rgnend": 6.0}],
        "time_selection": [1.0, 2.0],
    }
    state = lua.run(cfg, lua.run_action("Generate") + "\n" + lua.run_action("Regenerate selection"))
    msgs = [b["msg"] for b in state["boxes"]]
    assert len(msgs) == 2 and all("time signature change to 3/4 sits inside bar 2" in m for m in msgs)
    assert "move the time signature marker to the start of a bar" in msgs[0]
    assert state["inputs_asked"] == [] and _inbox(proj) == []


def test_fake_follows_reaper_units(lua: Any) -> None:
    """Pins what differs between REAPER's units: in 6/8 TimeMap2_timeToBeats counts eighths
    (cml = 6) from a 0-based measure while TimeMap2_timeToQN counts quarter notes; PPQ positions
    count from the MIDI source start, which a take's start offset (seconds) moves before the item;
    track numbers are 1-based while track indices are 0-based; markers and regions are numbered
    apart, and EnumProjectMarkers3 returns the next index (0 after the last)."""
    cfg = {"tempo": [{"qn": 0, "bpm": 120, "num": 6, "den": 8}],
           "tracks": [{"name": "m", "items": [{"pos": 4.0, "len": 2.0, "takes": [
               {"startoffs": 1.0, "notes": [{"pitch": 60, "start": 0.0, "len": 1.0}]}]}]}]}
    body = (
        "local beats, measures, cml, _, denom = reaper.TimeMap2_timeToBeats(0, 4.0)\n"
        "local take = reaper.GetActiveTake(reaper.GetTrackMediaItem(reaper.GetTrack(0, 0), 0))\n"
        "local _, _, _, sppq = reaper.MIDI_GetNote(take, 0)\n"
        "P.console[1] = string.format('%g %d %d %d %g %g %g', beats, measures, cml, denom,"
        " reaper.TimeMap2_timeToQN(0, 4.0), sppq, reaper.MIDI_GetProjQNFromPPQPos(take, sppq))\n"
    )
    body += (
        "local n = reaper.GetMediaTrackInfo_Value(reaper.GetTrack(0, 0), 'IP_TRACKNUMBER')\n"
        "local r0, isrgn0, _, _, _, num0 = reaper.EnumProjectMarkers3(0, 0)\n"
        "local r1, isrgn1, _, _, _, num1 = reaper.EnumProjectMarkers3(0, 1)\n"
        "local r2 = reaper.EnumProjectMarkers3(0, 2)\n"
        "P.console[2] = string.format('|%d %d %s %d %d %s %d %d', n, r0, isrgn0, num0, r1, isrgn1, num1, r2)\n"
    )
    cfg["regions"] = [{"name": "Verse", "pos": 0.0, "rgnend": 4.0}, {"name": "m", "pos": 1.0, "isrgn": False}]
    # 4 s at 120 bpm = 8 quarter notes = 16 eighths = measure 2 (0-based, 6 eighths a bar) + 4 eighths
    assert lua.run(cfg, body)["console"] == "4 2 6 8 8 0 6|1 1 true 1 2 false 1 0"

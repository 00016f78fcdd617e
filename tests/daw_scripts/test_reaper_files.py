"""REAPER script files: Lua syntax, the JSON module, API names, ReaPack index and OSC patterns."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
REAPER_DIR = REPO / "daw_scripts" / "reaper"
LUA_FILES = sorted(REAPER_DIR.glob("*.lua")) + sorted(Path(__file__).parent.glob("*.lua"))

# Every ReaScript function the scripts call, each checked against the ReaScript API reference
# (reaper.fm/sdk/reascript/reascripthelp.html). A new call must be checked and added here; the
# fake REAPER also refuses unknown names at run time.
REASCRIPT_API = {
    "AddMediaItemToTrack", "AddTakeToMediaItem", "CountSelectedMediaItems", "CountTempoTimeSigMarkers",
    "CountTrackMediaItems", "CountTracks", "EnumProjectMarkers3", "EnumProjects", "EnumerateFiles",
    "GetActiveTake", "GetAudioDeviceInfo", "GetCursorPosition", "GetMediaItemInfo_Value",
    "GetMediaItemTakeInfo_Value", "GetMediaItemTake_Source", "GetMediaItem_Track", "GetMediaSourceFileName",
    "GetMediaSourceLength", "GetMediaTrackInfo_Value", "GetProjExtState", "GetProjectTimeSignature2",
    "GetSelectedMediaItem", "GetSetMediaItemTakeInfo_String", "GetSetMediaTrackInfo_String",
    "GetSetProjectInfo", "GetSet_LoopTimeRange2", "GetTempoTimeSigMarker", "GetTrack", "GetTrackGUID",
    "GetTrackMediaItem", "GetUserInputs", "InsertTrackAtIndex", "MIDI_CountEvts", "MIDI_GetNote",
    "MIDI_GetProjQNFromPPQPos", "PCM_Source_CreateFromFile", "PreventUIRefresh", "RecursiveCreateDirectory",
    "RefreshToolbar2", "SetActiveTake", "SetMediaItemInfo_Value", "SetMediaItemTakeInfo_Value",
    "SetMediaItemTake_Source", "SetProjExtState", "SetToggleCommandState", "ShowConsoleMsg",
    "ShowMessageBox", "TakeIsMIDI", "TimeMap_GetTimeSigAtTime", "TimeMap2_timeToBeats", "TimeMap2_timeToQN", "TimeMap2_QNToTime",
    "Undo_BeginBlock2", "Undo_EndBlock2", "UpdateArrangement", "atexit", "defer", "get_action_context",
    "set_action_options", "time_precise",
}


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_lua_files_compile(path: Path, lua: Any) -> None:
    luac = lua.luac()
    assert luac is not None, "luac5.4 is needed: apt-get install lua5.4"
    proc = subprocess.run([luac, "-p", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_scripts_call_only_real_reascript_functions() -> None:
    used: set[str] = set()
    for path in REAPER_DIR.glob("*.lua"):
        used |= set(re.findall(r"\breaper\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
    assert used, "no reaper.* calls found"
    assert used <= REASCRIPT_API, f"unchecked ReaScript names: {sorted(used - REASCRIPT_API)}"


def _lua_json(lua: Any, body: str) -> str:
    state = lua.run({}, f"local json = require('stembridge_json')\n{body}")
    return state["console"]


def test_json_round_trip_matches_python(lua: Any) -> None:
    doc = {
        "text": 'quote " backslash \\ newline \n tab \t bell \u0007 é ✓ 𝄞',
        "ints": [0, -3, 2**40], "floats": [0.1, -2.5, 1e-7, 35.5, 4.0],
        "nested": {"empty_obj": {}, "empty_list": [], "null": None, "t": True, "f": False},
    }
    out = _lua_json(lua, (
        f"local v = json.decode({json.dumps(json.dumps(doc))})\n"
        "P.console[1] = json.encode(v)"
    ))
    assert json.loads(out) == doc
    # integers stay integers, floats stay floats
    assert '"ints":[0,-3,1099511627776]' in out and '4.0' in out


def test_json_encodes_lua_tables(lua: Any) -> None:
    out = _lua_json(lua, (
        "P.console[1] = json.encode({b = 1, a = {1.5, 2, 'x'}, e = json.array({}), o = json.object({}),"
        " s = 'ä\\1'})"
    ))
    assert out == '{"a":[1.5,2,"x"],"b":1,"e":[],"o":{},"s":"ä\\u0001"}'


@pytest.mark.parametrize("bad", ['{"a": 1', '[1, 2,, 3]', '{"a" 1}', '"unterminated', "[1] x", "nul"])
def test_json_decode_errors_name_the_position(lua: Any, bad: str) -> None:
    out = _lua_json(lua, (
        f"local ok, err = pcall(json.decode, {json.dumps(bad)})\n"
        "P.console[1] = tostring(ok) .. '|' .. tostring(err)"
    ))
    ok, err = out.split("|", 1)
    assert ok == "false" and re.search(r"line 1, column \d+", err), err


def test_reapack_index_lists_every_script_file() -> None:
    root = ET.parse(REAPER_DIR / "index.xml").getroot()
    assert root.tag == "index" and root.get("version") == "1"
    sources = root.findall(".//reapack/version/source")
    files = {s.get("file") for s in sources}
    shipped = {p.name for p in REAPER_DIR.iterdir() if p.suffix in (".lua", ".ReaperOSC")}
    assert files == shipped
    for s in sources:
        assert s.text and unquote(s.text).endswith("daw_scripts/reaper/" + s.get("file", "?"))
    mains = {s.get("file") for s in sources if s.get("main") == "main"}
    assert mains == {p.name for p in REAPER_DIR.glob("StemBridge - *.lua")}


def test_reaper_osc_pattern_file() -> None:
    lines = [ln.split() for ln in (REAPER_DIR / "stembridge.ReaperOSC").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    patterns = {ln[0]: ln[1:] for ln in lines}
    assert "s/stembridge/reaper/action" in patterns["ACTION"]
    assert "i/action" in patterns["ACTION"] and "s/action/str" in patterns["ACTION"]
    for key, value in patterns.items():
        if key.startswith("DEVICE_") and key.endswith("_COUNT"):
            assert value == ["0"]
        else:
            assert all(re.fullmatch(r"[bifnst]/[a-z/@_]+", v) for v in value), value

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

# REAPER's ReaScript function list: name, parameters (type ending in "?" = optional), returns.
API_FILE = Path(__file__).parent / "reference" / "reascript_api.txt"


def reascript_api() -> dict[str, tuple[int, int]]:
    """Function name -> (required parameter count, total parameter count) from the API list."""
    out: dict[str, tuple[int, int]] = {}
    for line in API_FILE.read_text().splitlines():
        m = re.match(r"^([\w.]+)\((.*?)\)", line)
        if not m:
            continue
        params = [p.strip() for p in m.group(2).split(",") if p.strip()]
        out[m.group(1)] = (sum(not p.endswith("?") for p in params), len(params))
    return out


def _lua_code(text: str) -> str:
    """Lua source with comments removed and string contents blanked (positions kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q:
                j += 2 if text[j] == "\\" else 1
            out.append(q + " " * (j - i - 1) + q)
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _call_args(code: str, open_paren: int) -> int:
    """Number of top-level arguments of the call whose "(" is at ``open_paren``."""
    depth, args, has_token, i = 0, 0, False, open_paren
    while True:
        ch = code[i]
        if ch in "({[":
            depth += 1
            if depth > 1:
                has_token = True
        elif ch in ")}]":
            depth -= 1
            if depth == 0:
                return args + (1 if has_token else 0)
        elif ch == "," and depth == 1:
            args += 1
        elif not ch.isspace() and depth >= 1:
            has_token = True
        i += 1


def reaper_calls() -> list[tuple[str, str, int | None]]:
    """(file, function, argument count or None when only referenced) for every ``reaper.X``."""
    calls = []
    for path in sorted(REAPER_DIR.glob("*.lua")):
        code = _lua_code(path.read_text())
        for m in re.finditer(r"\breaper\.([A-Za-z_]\w*)\s*(\()?", code):
            calls.append((path.name, m.group(1), _call_args(code, m.start(2)) if m.group(2) else None))
    return calls


def test_scripts_call_only_real_reascript_functions_with_their_arguments() -> None:
    api = reascript_api()
    assert len(api) > 1000 and api["UpdateArrange"] == (0, 0) and "UpdateArrangement" not in api
    assert api["GetUserInputs"] == (4, 4) and api["TimeMap2_beatsToTime"] == (2, 3)
    calls = reaper_calls()
    assert len(calls) > 50, "no reaper.* calls found"
    problems = []
    for file, name, nargs in calls:
        if name not in api:
            problems.append(f"{file}: reaper.{name} does not exist in REAPER")
        elif nargs is not None and not api[name][0] <= nargs <= api[name][1]:
            problems.append(f"{file}: reaper.{name} called with {nargs} argument(s), REAPER takes "
                            f"{api[name][0]}-{api[name][1]}")
    assert not problems, "\n".join(problems)


def test_the_call_reader_sees_what_it_checks() -> None:
    code = _lua_code('reaper.F(a, g(b, c), {1, 2}, "x, y") -- reaper.G(1)\nreaper.H()')
    assert code.count("reaper.") == 2
    assert _call_args(code, code.index("(")) == 4
    assert _call_args(code, code.rindex("(")) == 0


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_lua_files_compile(path: Path, lua: Any) -> None:
    luac = lua.luac()
    assert luac is not None, "luac5.4 is needed: apt-get install lua5.4"
    proc = subprocess.run([luac, "-p", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


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


def _osc_patterns() -> list[tuple[str, str]]:
    """(argument type, address) for each ACTION pattern of stembridge.ReaperOSC."""
    for ln in (REAPER_DIR / "stembridge.ReaperOSC").read_text().splitlines():
        if ln.startswith("ACTION "):
            return [(p[0], p[1:]) for p in ln.split()[1:]]
    raise AssertionError("no ACTION line")


def _runs_an_action(address: str, osc_type: str) -> bool:
    for kind, pattern in _osc_patterns():
        if kind == "t":  # trigger patterns take no argument
            continue
        if kind == osc_type and re.fullmatch(re.escape(pattern).replace("@", "[^/]+"), address):
            return True
    return False


def test_documented_osc_addresses_run_actions() -> None:
    """Every "/address ,type value" example in the pattern file and the README is one REAPER acts on."""
    docs = (REAPER_DIR / "stembridge.ReaperOSC").read_text() + (REAPER_DIR.parent / "README.md").read_text()
    examples = re.findall(r"(/[a-z/]+) ,([is]) \S+", docs)
    examples += [(a, t) for a, t in re.findall(r"oscsend localhost 8000 (/[a-z/]+) ([is]) ", docs)]
    assert len(examples) >= 3
    wrong = [f"{address} ,{t}" for address, t in examples if not _runs_an_action(address, t)]
    assert not wrong, f"documented addresses REAPER does not act on: {wrong}"
    assert not _runs_an_action("/action", "s"), "a string at /action does not run a script"


def test_readme_states_the_supported_versions() -> None:
    readme = (REAPER_DIR.parent / "README.md").read_text()
    assert "| REAPER | 6.x and 7.x" in readme and "| Ableton Live | 11.x and 12.x" in readme
    claims = re.findall(r"Live 10[^.]*\.", readme)
    assert claims and all("not supported" in c for c in claims), claims

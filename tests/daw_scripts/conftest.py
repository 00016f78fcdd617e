"""Run the REAPER Lua scripts under lua5.4 against the in-memory fake REAPER (fake_reaper.lua)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REAPER_DIR = REPO / "daw_scripts" / "reaper"
TESTS_DIR = Path(__file__).resolve().parent
DUMP_MARK = "@@DUMP@@"

# The Live Remote Script package and the fake Live objects are imported by name in the tests.
for _path in (REPO / "daw_scripts" / "ableton", TESTS_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# Live's own module only exists inside Live: the fake one (LimitationError, get_application) is
# installed before the script's package is first imported.
from fake_live import install_live_module  # noqa: E402

install_live_module()


def lua_binary() -> str | None:
    """The Lua 5.4 interpreter (Debian names it lua5.4)."""
    return shutil.which("lua5.4") or shutil.which("lua")


def luac_binary() -> str | None:
    """The Lua 5.4 compiler used for syntax checks (Debian: luac5.4)."""
    return shutil.which("luac5.4") or shutil.which("luac")


def to_lua(value: Any) -> str:
    """A Lua literal for a JSON-like Python value (dict -> table with string keys)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for these inputs
    if isinstance(value, list | tuple):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(str(k))}] = {to_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot express {type(value).__name__} in Lua")


def script(name: str) -> Path:
    """Path of an action script, e.g. script("Generate")."""
    return REAPER_DIR / f"StemBridge - {name}.lua"


def run_lua(tmp_path: Path, config: dict[str, Any], body: str, *, allow_api_errors: bool = False) -> dict[str, Any]:
    """Install the fake with ``config``, run the Lua ``body``, return the fake's state dump.

    Fails when the scripts misused REAPER's API (unknown function, missing or wrong argument),
    even if a script caught the error, unless ``allow_api_errors`` (tests of the fake itself).
    """
    lua = lua_binary()
    assert lua is not None, "lua5.4 is needed: apt-get install lua5.4"
    driver = tmp_path / "driver.lua"
    driver.write_text(
        f'package.path = {json.dumps(str(TESTS_DIR) + "/?.lua;" + str(REAPER_DIR) + "/?.lua;")} .. package.path\n'
        'local fake = require("fake_reaper")\n'
        f"local P = fake.install({to_lua(config)})\n"
        "local function run(name) P.script = name; dofile(name) end\n"
        f"{body}\n"
        f'io.write("\\n{DUMP_MARK}" .. fake.dump_json() .. "\\n")\n',
        encoding="utf-8",
    )
    proc = subprocess.run([lua, str(driver)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"lua failed:\n{proc.stdout}\n{proc.stderr}"
    out = proc.stdout
    assert DUMP_MARK in out, out
    state: dict[str, Any] = json.loads(out.split(DUMP_MARK, 1)[1])
    if not allow_api_errors:
        assert not state["api_errors"], f"the scripts misused REAPER's API: {state['api_errors']}"
    return state


def run_action(name: str) -> str:
    """Lua line that runs an action script the way REAPER does (dofile of the file)."""
    return f"run({json.dumps(str(script(name)))})"


class LuaEnv:
    """What the REAPER script tests need, handed out by the ``lua`` fixture."""

    reaper_dir = REAPER_DIR
    tests_dir = TESTS_DIR
    to_lua = staticmethod(to_lua)
    script = staticmethod(script)
    run_action = staticmethod(run_action)
    luac = staticmethod(luac_binary)

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def run(self, config: dict[str, Any], body: str, *, allow_api_errors: bool = False) -> dict[str, Any]:
        """Run ``body`` against a fake project built from ``config``."""
        return run_lua(self.tmp_path, config, body, allow_api_errors=allow_api_errors)


@pytest.fixture
def lua(tmp_path: Path) -> LuaEnv:
    """Runner for Lua against the fake REAPER (fails with a hint when lua5.4 is missing)."""
    if lua_binary() is None:
        pytest.fail("lua5.4 is not installed: apt-get install lua5.4")
    return LuaEnv(tmp_path)

"""The Live control surface against a stand-in of Live's v2 ControlSurface that offers exactly
the methods and properties of Live's own class (reference/live_control_surface_api.txt)."""

from __future__ import annotations

import ast
import logging
import re
import socket
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
from fake_live import FakeApp, FakeSong
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "daw_scripts" / "ableton" / "stembridge_live"
API_FILE = Path(__file__).parent / "reference" / "live_control_surface_api.txt"
V2 = "ableton.v2.control_surface.control_surface."


def base_api(cls: str = "ControlSurface") -> dict[str, bool]:
    """Name -> is-property for Live's v2 ``ControlSurface`` and the classes it inherits from."""
    sections: dict[str, tuple[str, dict[str, bool]]] = {}
    current: dict[str, bool] = {}
    for line in API_FILE.read_text().splitlines():
        head = re.match(r"^\[([\w.]+)\(([\w, ]*)\)\]$", line)
        if head:
            current = {}
            sections[head.group(1)] = (head.group(2).split(",")[0].strip(), current)
        elif line.startswith("  ") and line.strip():
            name = re.match(r"\s+(\w+)", line)
            assert name, line
            current[name.group(1)] = "(property)" in line
    out: dict[str, bool] = {}
    name: str | None = V2 + cls
    while name in sections:
        parent, members = sections[name]
        out = {**members, **out}
        name = V2 + parent if parent else None
    return out


def make_stand_in(song: FakeSong, app: FakeApp) -> type:
    """A class with exactly the v2 ControlSurface's names; anything else is an AttributeError."""
    api = base_api()
    body: dict[str, Any] = {}
    for name, is_property in api.items():
        if is_property:
            body[name] = property(lambda self, _n=name: {"song": song, "application": app}.get(_n))
        else:
            def method(self: Any, *a: Any, _n: str = name, **k: Any) -> None:
                self.calls.append(_n)
            body[name] = method

    def __init__(self: Any, *a: Any, **k: Any) -> None:
        self.calls = []
        self.shown = []

    def show_message(self: Any, message: str) -> None:
        self.shown.append(message)

    body["__init__"] = __init__
    body["show_message"] = show_message
    return type("ControlSurface", (), body)


def test_the_reference_lists_the_v2_class() -> None:
    api = base_api()
    assert api["song"] and api["application"] and not api["show_message"]
    assert "update_display" in api and "disconnect" in api and "schedule_message" in api
    assert "log_message" not in api, "only the old _Framework class has log_message"
    assert "log_message" in base_api_framework()


def base_api_framework() -> set[str]:
    text = API_FILE.read_text().split("[_Framework.ControlSurface.ControlSurface", 1)[1]
    return set(re.findall(r"^\s+(\w+)", text, re.M))


def _base_attributes_used(path: Path, class_name: str) -> set[str]:
    """Attributes the class reads from its base: self.X / ControlSurface.X not defined by itself."""
    tree = ast.parse(path.read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    own = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                isinstance(node.value, ast.Name) and node.value.id == "self":
            own.add(node.attr)
    used = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "ControlSurface" or (node.value.id == "self" and node.attr not in own):
                used.add(node.attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", "") == "super":
            used.add(node.func.attr)
    return used


def test_surface_uses_only_what_live_s_control_surface_has() -> None:
    used = _base_attributes_used(PACKAGE / "surface.py", "StemBridgeSurface")
    assert {"__init__", "show_message", "song", "application", "update_display", "disconnect"} <= used
    missing = sorted(used - set(base_api()))
    assert not missing, f"ableton.v2 ControlSurface has no {missing}"


def test_surface_imports_only_the_v2_framework() -> None:
    imports = [ln for ln in (PACKAGE / "surface.py").read_text().splitlines() if re.match(r"\s*(from|import) ", ln)]
    assert "from ableton.v2.control_surface import ControlSurface" in imports
    assert not any("_Framework" in ln for ln in imports)
    for path in PACKAGE.glob("*.py"):
        assert "Live 10" not in path.read_text(), f"{path.name} still mentions Live 10"


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_create_instance_starts_on_the_v2_base_and_ticks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    song, app = FakeSong(file_path=str(tmp_path / "set.als")), FakeApp()
    fw = types.ModuleType("ableton.v2.control_surface")
    fw.ControlSurface = make_stand_in(song, app)  # type: ignore[attr-defined]
    for name, mod in (("ableton", types.ModuleType("ableton")), ("ableton.v2", types.ModuleType("ableton.v2")),
                      ("ableton.v2.control_surface", fw)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "stembridge_live.surface", raising=False)

    bridge = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge.bind(("127.0.0.1", 0))
    bridge.settimeout(2.0)
    settings = tmp_path / "settings.json"
    settings.write_text(f'{{"bridge_port": {bridge.getsockname()[1]}, "reply_port": {_free_udp_port()}}}')
    import stembridge_live
    import stembridge_live.settings as settings_mod

    monkeypatch.setattr(settings_mod, "SETTINGS_FILE", str(settings))
    caplog.set_level(logging.INFO, logger="stembridge_live")
    surface = stembridge_live.create_instance(object())
    try:
        assert surface._core is not None and surface._core.song is song and surface._core.app is app
        assert OscMessage(bridge.recvfrom(65536)[0]).address == "/stembridge/ping"
        SimpleUDPClient("127.0.0.1", surface._transport.local_port).send_message("/stembridge/pong", "0.1.0")
        deadline = time.monotonic() + 2.0
        while not surface._core.connected and time.monotonic() < deadline:
            surface.update_display()
            time.sleep(0.01)
        assert surface._core.connected
        assert "update_display" in surface.calls
        assert any("StemBridge listening on 127.0.0.1:" in r.getMessage() for r in caplog.records)
    finally:
        surface.disconnect()
        bridge.close()
    assert surface.calls[-1] == "disconnect"


def test_surface_reports_a_bad_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    fw = types.ModuleType("ableton.v2.control_surface")
    fw.ControlSurface = make_stand_in(FakeSong(), FakeApp())  # type: ignore[attr-defined]
    for name, mod in (("ableton", types.ModuleType("ableton")), ("ableton.v2", types.ModuleType("ableton.v2")),
                      ("ableton.v2.control_surface", fw)):
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "stembridge_live.surface", raising=False)
    bad = tmp_path / "settings.json"
    bad.write_text('{"bridge_prot": 1}')
    import stembridge_live
    import stembridge_live.settings as settings_mod

    monkeypatch.setattr(settings_mod, "SETTINGS_FILE", str(bad))
    surface = stembridge_live.create_instance(object())
    assert surface._core is None
    assert "could not start" in surface.shown[-1] and "bridge_prot" in surface.shown[-1]
    assert any(r.levelno == logging.WARNING and "could not start" in r.getMessage() for r in caplog.records)
    surface.disconnect()

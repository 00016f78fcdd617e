"""An independent OSC peer (liblo's oscsend/oscdump) drives the bridge."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.app import BridgeServer, ServerConfig
from tests.bridge.server_helpers import RUNNER, make_project, tiny_request

pytestmark = pytest.mark.skipif(not (shutil.which("oscsend") and shutil.which("oscdump")),
                                reason="liblo-tools (oscsend, oscdump) not installed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dump_port() -> int:
    return _free_port()


@pytest.fixture
def bridge(tmp_path: Path, dump_port: int) -> Iterator[BridgeServer]:
    srv = BridgeServer(ServerConfig(project_dir=make_project(tmp_path / "song"), osc_port=0,
                                    reply_port=dump_port, runner=RUNNER)).start()
    yield srv
    srv.stop()


def _lines_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not seen; oscdump printed {lines}")


def test_oscsend_ping_generate_and_error_seen_by_oscdump(bridge: BridgeServer, dump_port: int) -> None:
    # oscdump only receives (liblo cannot bind it to loopback alone; it is a listener, not a server)
    dump = subprocess.Popen(["oscdump", "-L", str(dump_port)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # let oscdump bind its port
        port = str(bridge.osc_port)
        subprocess.run(["oscsend", "127.0.0.1", port, "/stembridge/ping"], check=True, timeout=10)
        assert "/stembridge/pong i 1" in _lines_until(dump, "/stembridge/pong", 10)[-1]
        subprocess.run(["oscsend", "127.0.0.1", port, "/stembridge/cancel", "i", "5"], check=True, timeout=10)
        line = _lines_until(dump, "/stembridge/error", 10)[-1]
        assert "arguments" in line
        request = json.dumps(tiny_request(bridge.layout.project_dir))
        subprocess.run(["oscsend", "127.0.0.1", port, "/stembridge/generate", "s", request], check=True, timeout=10)
        lines = _lines_until(dump, "/stembridge/done", 60)
        accepted = next(ln for ln in lines if "/stembridge/accepted" in ln)
        job_id = accepted.split('"')[1]
        assert any("/stembridge/progress" in ln and job_id in ln for ln in lines)
        assert f"{job_id}.json" in lines[-1]
        assert (bridge.layout.outbox / f"{job_id}.json").is_file()
    finally:
        dump.terminate()
        dump.wait(timeout=5)

"""The Live script's own OSC codec and UDP transport interoperate with python-osc; it type-checks."""

from __future__ import annotations

import ast
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient
from stembridge_live.osc import OscError, decode_message, decode_packet, encode_message
from stembridge_live.transport import UdpTransport

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "daw_scripts" / "ableton" / "stembridge_live"


@pytest.mark.parametrize("args", [
    [],
    ['{"version": 1, "prompt": "lo-fi ✓"}'],
    ["job-1", 0.5, "rendering"],
    [7, -1, 2**40, True, False, None, b"\x00\x01\x02"],
    ["abc", "abcd", ""],  # string padding edge cases
])
def test_our_messages_parse_in_python_osc(args: list[Any]) -> None:
    msg = OscMessage(encode_message("/stembridge/generate", args))
    assert msg.address == "/stembridge/generate"
    expected = [pytest.approx(a) if isinstance(a, float) else a for a in args]
    assert list(msg.params) == expected


def test_python_osc_messages_and_bundles_decode() -> None:
    b = OscMessageBuilder("/stembridge/progress")
    for a in ("job-7", 0.25, "drums ✓", 3):
        b.add_arg(a)
    b.add_arg(2.5, OscMessageBuilder.ARG_TYPE_DOUBLE)
    b.add_arg(b"\x09\x08", OscMessageBuilder.ARG_TYPE_BLOB)
    data = b.build().dgram
    assert decode_message(data) == ("/stembridge/progress", ["job-7", 0.25, "drums ✓", 3, 2.5, b"\x09\x08"])
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessageBuilder("/stembridge/pong").build())
    done = OscMessageBuilder("/stembridge/done")
    done.add_arg("job-7")
    done.add_arg("stembridge/outbox/job-7.json")
    bundle.add_content(done.build())
    assert decode_packet(bundle.build().dgram) == [
        ("/stembridge/pong", []), ("/stembridge/done", ["job-7", "stembridge/outbox/job-7.json"])]


@pytest.mark.parametrize("bad", [b"", b"nope", b"/a\0\0,x\0\0", b"/a\0\0,i\0\0\0\0", b"/a\0\0,s\0\0abc"])
def test_bad_datagrams_raise(bad: bytes) -> None:
    with pytest.raises(OscError):
        decode_packet(bad)


def test_encode_refuses_what_osc_cannot_carry() -> None:
    with pytest.raises(OscError, match="must start with '/'"):
        encode_message("stembridge/ping")
    with pytest.raises(OscError, match="cannot send dict"):
        encode_message("/x", [{"a": 1}])  # type: ignore[list-item]


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_udp_transport_talks_to_a_python_osc_peer() -> None:
    bridge = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge.bind(("127.0.0.1", 0))
    bridge.settimeout(2.0)
    bad: list[str] = []
    transport = UdpTransport("127.0.0.1", bridge.getsockname()[1], 0, on_bad_packet=bad.append)
    try:
        assert transport.poll() == []  # nothing waiting: returns at once
        transport.send("/stembridge/generate", '{"version": 1}')
        data, sender = bridge.recvfrom(65536)
        msg = OscMessage(data)
        assert (msg.address, list(msg.params)) == ("/stembridge/generate", ['{"version": 1}'])
        assert sender[1] == transport.local_port  # the bridge replies to this port
        SimpleUDPClient("127.0.0.1", transport.local_port).send_message("/stembridge/accepted", "job-9")
        bridge.sendto(b"garbage", ("127.0.0.1", transport.local_port))
        deadline = time.monotonic() + 2.0
        got: list[Any] = []
        while not (got and bad) and time.monotonic() < deadline:
            got += [m for m, _ in transport.poll()]
            time.sleep(0.01)
        assert got == [("/stembridge/accepted", ["job-9"])]
        assert bad and "bad OSC datagram" in bad[0]
        with pytest.raises(ValueError, match="send the request as a file path"):
            transport.send("/stembridge/generate", "x" * 9000)
    finally:
        transport.close()
        bridge.close()


def test_package_type_checks_against_live_stubs() -> None:
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null"]
    proc = subprocess.run([*mypy, str(PACKAGE)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stubs_catch_made_up_live_api(tmp_path: Path) -> None:
    """Proves mypy really sees ableton-live-stubs (ignore_missing_imports would hide a miss)."""
    probe = tmp_path / "probe.py"
    probe.write_text("from Live.Song import Song\n\ndef f(s: Song) -> None:\n    s.create_stem_track()\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", "/dev/null", str(probe)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and '"Song" has no attribute "create_stem_track"' in proc.stdout


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_runs_on_live_11_python(path: Path) -> None:
    """Live 11 embeds Python 3.7: the script must not use newer syntax."""
    ast.parse(path.read_text(), feature_version=(3, 7))

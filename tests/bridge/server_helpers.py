"""Helpers for the bridge server tests: an OSC client, tiny projects, test job runners.

The runners wrap the real pipeline (``bridge.job.pipeline.run_request``) and are selected with the
server's ``runner`` option; the request's prompt tells them to behave badly on purpose:
``"slow N"`` waits N x 0.1 s first (checking cancellation), ``"stubborn"`` ignores cancellation
for 10 s, ``"crash"`` kills the worker process with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bridge.job.pipeline import JobResult, run_request
from bridge.job.request import Request
from bridge.transports.osc import decode_datagram, encode_message
from models.base import CancelToken
from tests.bridge.conftest import AM_F_C_G, write_midi

RUNNER = "tests.bridge.server_helpers:behaving_runner"


def behaving_runner(
    request: Request,
    *,
    job_id: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> JobResult:
    """The real pipeline, after an optional misbehaviour named by the prompt."""
    words = request.prompt.split()
    if words[:1] == ["crash"]:
        os.kill(os.getpid(), signal.SIGKILL)
    if words[:1] == ["stubborn"]:
        time.sleep(10)
    if words[:1] == ["slow"]:
        steps = int(words[1])
        for i in range(steps):
            if cancel is not None:
                cancel.check()
            if progress is not None:
                progress(0.0, f"warming up {i}/{steps}")
            time.sleep(0.1)
    return run_request(request, job_id=job_id, progress=progress, cancel=cancel, model_options=model_options)


def make_project(root: Path) -> Path:
    """A project folder with a 2-bar chords.mid."""
    root.mkdir(parents=True, exist_ok=True)
    chords = [(p, bar * 4.0, bar * 4.0 + 3.9, 80) for bar in range(2) for p in AM_F_C_G[bar % 4]]
    write_midi(root / "chords.mid", chords, name="chords")
    return root


def tiny_request(project: Path, **overrides: Any) -> dict[str, Any]:
    """A one-bar, one-stem arranger request (renders in well under a second)."""
    req: dict[str, Any] = {
        "version": 1,
        "project": {"dir": str(project), "sample_rate": 22050,
                    "tempo_map": [{"beat": 0, "bpm": 120, "time_signature": [4, 4]}]},
        "sections": [{"name": "Verse 1", "start_bar": 1, "end_bar": 2}],
        "inputs": {"chords": {"midi": "chords.mid"}},
        "stems": ["keys"],
        "model": "arranger",
        "seed": 3,
    }
    req.update(overrides)
    return req


class OscClient:
    """A UDP socket bound to 127.0.0.1 that talks to the bridge and collects replies."""

    def __init__(self, port: int) -> None:
        self.server = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def send(self, address: str, *args: Any) -> None:
        self.sock.sendto(encode_message(address, list(args)), self.server)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def recv(self, timeout: float = 10.0) -> tuple[str, list[Any]]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65535)
        return decode_datagram(data)[0]

    def expect(self, address: str, timeout: float = 20.0, *, job_id: str | None = None) -> list[Any]:
        """Skip replies until ``address`` (for ``job_id`` if given) arrives; returns its args."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {address} within {timeout} s")
            addr, args = self.recv(left)
            if addr == address and (job_id is None or (args and args[0] == job_id)):
                return args

    def until_final(self, job_id: str, timeout: float = 60.0) -> tuple[str, list[Any], list[list[Any]]]:
        """Collect progress for ``job_id`` until done/error; returns (address, args, progress list)."""
        deadline = time.monotonic() + timeout
        progress: list[list[Any]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            addr, args = self.recv(left)
            if not args or args[0] != job_id:
                continue
            if addr == "/stembridge/progress":
                progress.append([time.monotonic(), *args[1:]])
            elif addr in ("/stembridge/done", "/stembridge/error"):
                return addr, args, progress

    def generate(self, request: dict[str, Any]) -> str:
        self.send("/stembridge/generate", json.dumps(request))
        for _ in range(100):  # skip progress of jobs queued earlier
            addr, args = self.recv(10.0)
            if addr == "/stembridge/accepted":
                return str(args[0])
            if addr == "/stembridge/error" and args[0] == "":
                raise AssertionError(f"expected accepted, got {addr} {args}")
        raise AssertionError("no /stembridge/accepted")


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()

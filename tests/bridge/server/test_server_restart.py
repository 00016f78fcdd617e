"""SIGKILL the server during a job, restart it: the job runs again, earlier takes stay intact."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.server.status import read_status
from tests.bridge.server_helpers import RUNNER, OscClient, make_project, tiny_request, wait_for

REPO = Path(__file__).resolve().parents[3]


def _start(project: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.cli.server", "serve", "--project-dir", str(project),
         "--osc-port", str(port), "--runner", RUNNER],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigkill_during_a_job_then_restart_runs_it_again(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    port = _free_port()
    server = _start(project, port)
    try:
        assert server.stdout is not None
        assert "serving" in server.stdout.readline()
        client = OscClient(port)
        first = client.generate(tiny_request(project))
        assert client.until_final(first)[0] == "/stembridge/done"
        renders = project / "stembridge" / "renders"
        before = _hashes(renders / first)
        second = client.generate(tiny_request(project, prompt="slow 40", seed=11))
        client.expect("/stembridge/progress", job_id=second)
        assert wait_for(lambda: any(r["job_id"] == second for r in
                                    (read_status(project) or {}).get("running", [])), 10)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        time.sleep(0.3)
        assert not (renders / second).exists()
        server = _start(project, port)
        assert server.stdout is not None and "serving" in server.stdout.readline()
        assert wait_for(lambda: any(f["job_id"] == second and f["status"] == "done"
                                    for f in (read_status(project) or {}).get("finished", [])), 60)
        manifest = json.loads((project / "stembridge" / "outbox" / f"{second}.json").read_text())
        assert manifest["seed"] == 11 and manifest["placements"][0]["take"] == 2
        assert _hashes(renders / first) == before
        assert not list(renders.glob("*.partial"))
        log = (project / "stembridge" / "stembridge.log").read_text()
        assert f"job {second} was running when the server stopped" in log
        client.close()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0


@pytest.mark.slow
def test_ctrl_c_during_a_job_tells_the_client_and_the_console_shows_job_events(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    port = _free_port()
    server = _start(project, port)  # no -v: the console still shows one line per job event
    client = OscClient(port)
    try:
        assert server.stdout is not None and "serving" in server.stdout.readline()
        first = client.generate(tiny_request(project))
        assert client.until_final(first)[0] == "/stembridge/done"
        job = client.generate(tiny_request(project, prompt="slow 100", seed=11))
        client.expect("/stembridge/progress", job_id=job)
        server.send_signal(signal.SIGINT)
        args = client.expect("/stembridge/error", job_id=job, timeout=10)
        assert args == [job, "interrupted",
                        "the bridge was stopped during this job: re-queued, runs again when the bridge restarts"]
        _, stderr = server.communicate(timeout=15)
    finally:
        client.close()
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0
    assert f"job {first} accepted from osc (model arranger)" in stderr
    assert f"job {first} done: " in stderr
    assert f"job {job} started" in stderr
    assert f"job {job} interrupted: re-queued, runs again when the bridge restarts" in stderr
    assert "worker process" not in stderr  # other INFO lines stay off the console without -v
    log = (project / "stembridge" / "stembridge.log").read_text()
    assert f"job {job} interrupted" in log

"""``stembridge worker --ray CONFIG``: refuses unusable configs and options at once, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bridge.cli.main import main

REPO = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path, port: int = 9100, *, token: bool = True, extra: str = "") -> Path:
    if token:
        (tmp_path / "token").write_text("s3cret-token\n")
    path = tmp_path / "ray.toml"
    path.write_text(f'[worker]\nname = "ray-cli"\nport = {port}\ntoken_file = "token"\nstate_dir = "state"\n'
                    f'[ray]\nnum_cpus = 2\n[models]\npreload = ["arranger"]\n[replicas]\nnum_cpus = 0.5\n{extra}')
    return path


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_bad_config_is_refused_before_ray_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot read the Ray Serve configuration" in _refused(["worker", "--ray", str(tmp_path / "no.toml")], capsys)
    bad = _config(tmp_path, extra="min = 2\nmax = 1\n")
    assert "[replicas] min (2) must not exceed max (1)" in _refused(["worker", "--ray", str(bad)], capsys)
    (tmp_path / "b").mkdir()
    no_token = _config(tmp_path / "b", token=False)
    err = _refused(["worker", "--ray", str(no_token)], capsys)
    assert "token_file" in err and "cannot be read" in err and "secrets.token_urlsafe(32)" in err
    assert not (tmp_path / "b" / "state").exists()


@pytest.mark.parametrize(("flags", "needle"), [
    (["--listen", "127.0.0.1:9200"], "--listen does not apply with --ray; set [worker] host and port"),
    (["--state-dir", "x"], "--state-dir does not apply with --ray"),
    (["--device", "cuda"], "set [models.options] device"),
    (["--max-queue", "3"], "[worker] max_queue"),
    (["--ssl-keyfile", "k", "--ssl-certfile", "c"], "put TLS in front"),
])
def test_the_standalone_options_are_refused_with_where_to_set_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], needle: str) -> None:
    assert needle in _refused(["worker", "--ray", str(_config(tmp_path)), *flags], capsys)


def test_a_busy_port_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _refused(["worker", "--ray", str(_config(tmp_path, port))], capsys)
    assert f"cannot listen on 127.0.0.1:{port}" in err and "[worker] port" in err


def test_the_standalone_worker_still_needs_its_state_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--state-dir is required" in _refused(["worker"], capsys)


@pytest.mark.slow  # a local Ray cluster starts and stops: about 15-25 s on two cores
def test_the_ray_worker_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli.main", "worker", "--ray", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1/health" in line, line + (proc.stderr.read() if proc.stderr else "")
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer s3cret-token"}
        health = httpx.get(f"{url}/v1/health", headers=auth, timeout=30).json()
        assert health["ok"] and health["worker"] == "ray-cli"
        deadline = time.monotonic() + 20
        while "arranger" not in health["models_loaded"]:  # a replica is asked in the background
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
            health = httpx.get(f"{url}/v1/health", headers=auth, timeout=30).json()
        assert httpx.get(f"{url}/v1/health", timeout=30).status_code == 401
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stembridge worker stopped" in out
    assert (tmp_path / "state" / "jobs").is_dir()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/health", timeout=5)

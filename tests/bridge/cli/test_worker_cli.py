"""``stembridge worker``: refuses to serve without a token or with unusable options, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bridge.cli.main import main
from bridge.cli.worker import is_loopback, parse_listen


@pytest.fixture(autouse=True)
def _no_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEMBRIDGE_WORKER_TOKEN", raising=False)


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "127.0.0.1:0"])
def test_no_token_is_refused_with_how_to_make_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  listen: str) -> None:
    err = _refused(["worker", "--listen", listen, "--state-dir", str(tmp_path / "state")], capsys)
    assert "token" in err and "secrets.token_urlsafe(32)" in err and "--token-file" in err
    assert not (tmp_path / "state").exists()


def test_a_token_file_that_is_missing_or_empty_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    assert "cannot read --token-file" in _refused(["worker", "--token-file", str(tmp_path / "nope"),
                                                   "--state-dir", state], capsys)
    (tmp_path / "empty").write_text("\n")
    assert "is empty" in _refused(["worker", "--token-file", str(tmp_path / "empty"), "--state-dir", state], capsys)


@pytest.mark.parametrize(("extra", "needle"), [
    (["--listen", "nowhere"], "HOST:PORT"),
    (["--listen", "127.0.0.1:70000"], "HOST:PORT"),
    (["--max-queue", "0"], "--max-queue must be positive"),
    (["--ssl-keyfile", "key.pem"], "go together"),
    (["--ssl-keyfile", "key.pem", "--ssl-certfile", "cert.pem"], "is not a file"),
])
def test_unusable_options_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, extra: list[str], needle: str) -> None:
    monkeypatch.setenv("STEMBRIDGE_WORKER_TOKEN", "from-the-environment")
    assert needle in _refused(["worker", "--state-dir", str(tmp_path / "state"), *extra], capsys)


def test_a_busy_port_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMBRIDGE_WORKER_TOKEN", "from-the-environment")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _refused(["worker", "--listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "s")], capsys)
    assert "choose another with --listen" in err


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse_listen("[::1]:9100") == ("::1", 9100)
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("gpu.example.org")


def _self_signed(folder: Path) -> list[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed here")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return ["--ssl-keyfile", str(folder / "key.pem"), "--ssl-certfile", str(folder / "cert.pem")]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_worker_serves_with_its_token_and_stops_cleanly_on_ctrl_c(tmp_path: Path, tls: bool) -> None:
    (tmp_path / "token").write_text("s3cret-token\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli.main", "worker", "--listen", "127.0.0.1:0", "--token-file",
         str(tmp_path / "token"), "--state-dir", str(tmp_path / "state"), "--name", "cli-test",
         *(_self_signed(tmp_path) if tls else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serving on (https?://127\.0\.0\.1:\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        url = match.group(1)
        assert url.startswith("https://" if tls else "http://")
        with httpx.Client(base_url=url, verify=False) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    health = http.get("/v1/health", headers={"Authorization": "Bearer s3cret-token"})
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the worker never answered"
                    time.sleep(0.1)
            assert health.json()["worker"] == "cli-test"
            assert http.get("/v1/health").status_code == 401
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stembridge worker stopped" in out
    assert (tmp_path / "state" / "jobs").is_dir()


def test_the_console_shows_the_worker_s_job_events() -> None:
    from bridge.cli.console import WORKER_JOB_LOG_NAME
    from bridge.gpuworker.app import JOB_LOG_NAME

    assert WORKER_JOB_LOG_NAME == JOB_LOG_NAME


def test_a_missing_web_stack_is_refused_with_what_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    err = _refused(["worker", "--state-dir", str(tmp_path / "state")], capsys)
    assert "uvicorn" in err and "stembridge[worker]" in err

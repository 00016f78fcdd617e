"""`stembridge serve/status/cancel/midi` subcommands (through bridge.cli.server)."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest

from bridge.app import BridgeServer, ServerConfig
from bridge.cli.server import add_server_commands, main
from tests.bridge.server_helpers import RUNNER, OscClient, make_project, tiny_request, wait_for


def test_commands_register_with_handlers() -> None:
    parser = argparse.ArgumentParser()
    add_server_commands(parser.add_subparsers(dest="command", required=True))
    for argv in (["serve", "--project-dir", "x"], ["status"], ["cancel", "j1"], ["midi", "ports"],
                 ["midi", "learn", "generate"]):
        assert callable(parser.parse_args(argv).func)
    with pytest.raises(SystemExit):
        parser.parse_args(["midi", "learn", "explode"])


@pytest.mark.parametrize("argv", [["-v", "serve", "--project-dir", "x"], ["serve", "-v", "--project-dir", "x"]])
def test_verbose_works_before_and_after_serve(argv: list[str]) -> None:
    from bridge.cli.main import build_parser

    assert build_parser().parse_args(argv).verbose is True
    assert build_parser().parse_args(["serve", "--project-dir", "x"]).verbose is False


def test_status_and_cancel_against_a_running_bridge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "song")
    assert main(["status", "--project-dir", str(project)]) == 1
    assert "no bridge has run" in capsys.readouterr().err
    cfg = ServerConfig(project_dir=project, osc_port=0, runner=RUNNER, poll_interval_s=0.05)
    with BridgeServer(cfg) as srv:
        client = OscClient(srv.osc_port)
        job = client.generate(tiny_request(project, prompt="slow 100"))
        client.expect("/stembridge/progress", job_id=job)
        wait_for(lambda: '"running": [\n    {' in (srv.layout.outbox / "status.json").read_text(), 5)
        assert main(["status", "--project-dir", str(project)]) == 0
        assert f"running   {job}" in capsys.readouterr().out
        assert main(["cancel", job, "--project-dir", str(project)]) == 0
        assert capsys.readouterr().out.strip() == f"{job}: cancelled"
        assert main(["cancel", job, "--project-dir", str(project), "--wait", "3"]) == 1
        assert "already finished" in capsys.readouterr().err
        assert main(["status", "--project-dir", str(project), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["finished"][0]["status"] == "cancelled"
        client.close()


def test_serve_refuses_a_busy_port_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "song")
    other = make_project(tmp_path / "other")
    with BridgeServer(ServerConfig(project_dir=project, osc_port=0)) as srv:
        assert main(["serve", "--project-dir", str(other), "--osc-port", str(srv.osc_port)]) == 2
        assert "already in use" in capsys.readouterr().err
        assert main(["serve", "--project-dir", str(project), "--osc-port", "0"]) == 2
        assert "already serving" in capsys.readouterr().err


def test_serve_stops_cleanly_on_request(tmp_path: Path) -> None:
    from bridge.app import serve

    project = make_project(tmp_path / "song")
    stop = threading.Event()
    ports: list[int] = []
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(
        serve(ServerConfig(project_dir=project, osc_port=0), stop=stop, ready=lambda s: ports.append(s.osc_port))))
    t.start()
    assert wait_for(lambda: bool(ports), 10)
    c = OscClient(ports[0])
    c.send("/stembridge/ping")
    assert c.recv(5.0)[0] == "/stembridge/pong"
    stop.set()
    t.join(10)
    assert result == [0]
    assert "bridge stopped" in (project / "stembridge" / "stembridge.log").read_text()
    c.close()

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


def _queued_job(project: Path, job_id: str = "20261201-120000-abc123") -> str:
    """A job left queued by a bridge that has stopped (its queue file stays in the project)."""
    from bridge.job.layout import ProjectLayout
    from bridge.server.queue import JobQueue

    queue = JobQueue(ProjectLayout(project).queue_db)
    queue.enqueue(job_id, tiny_request(project), source="osc")
    queue.close()
    return job_id


def test_cancel_without_a_bridge_says_so_and_leaves_no_control_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(tmp_path / "song")
    before = sorted(project.rglob("*"))
    assert main(["cancel", "20261201-120000-abc123", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "there is no job 20261201-120000-abc123 in" in err and "stembridge status" in err
    assert sorted(project.rglob("*")) == before  # not even an inbox folder
    job = _queued_job(project)
    (project / "stembridge" / "server.lock").write_text("pid 999999999\n")  # left by a bridge that stopped
    before = sorted(project.rglob("*"))
    assert main(["cancel", job, "--project-dir", str(project), "--wait", "0.2"]) == 1
    err = capsys.readouterr().err
    assert f"no bridge is running for {project}, so nothing was cancelled; job {job} is queued" in err
    assert "cancel requested" not in err
    assert sorted(project.rglob("*")) == before


def test_cancel_of_a_finished_job_reads_the_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bridge.job.layout import ProjectLayout, write_json_atomic
    from bridge.job.manifest import Manifest

    project = make_project(tmp_path / "song")
    job = "20261201-120000-def456"
    record = Manifest(job_id=job, status="done", model="arranger", seed=3, sample_rate=22050,
                      tempo_map=({"beat": 0.0, "bpm": 120.0, "time_signature": [4, 4]},))
    write_json_atomic(ProjectLayout(project).manifest_path(job), record.to_json())
    assert main(["cancel", job, "--project-dir", str(project)]) == 1
    assert f"job {job} already finished (done); there is nothing to cancel" in capsys.readouterr().err


def test_a_refused_cancel_prints_the_bridges_message_not_its_raw_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in bridge (holding the lock, answering from the inbox) refuses the cancel."""
    import fcntl
    import os

    project = make_project(tmp_path / "song")
    job = _queued_job(project)
    inbox = project / "stembridge" / "inbox"
    (inbox / "failed").mkdir(parents=True)
    stop = threading.Event()

    def refuse() -> None:
        while not stop.is_set():
            for control in inbox.glob("cancel-*.json"):
                control.rename(inbox / "failed" / control.name)
                (inbox / "failed" / control.name.replace(".json", ".error.txt")).write_text(
                    f"code: finished\njob_id: {job}\nmessage: job {job} finished a moment ago\n")
            stop.wait(0.02)

    with open(project / "stembridge" / "server.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        answering = threading.Thread(target=refuse)
        answering.start()
        try:
            assert main(["cancel", job, "--project-dir", str(project), "--wait", "5"]) == 1
        finally:
            stop.set()
            answering.join()
    err = capsys.readouterr().err
    assert err.strip() == f"stembridge: could not cancel {job}: job {job} finished a moment ago"


def test_cancel_of_an_unknown_job_with_a_bridge_running_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path / "song")
    with BridgeServer(ServerConfig(project_dir=project, osc_port=0, poll_interval_s=0.05)):
        assert main(["cancel", "no-such-job", "--project-dir", str(project)]) == 2
        assert "there is no job no-such-job" in capsys.readouterr().err
        assert not list((project / "stembridge" / "inbox").glob("*.json"))
        assert main(["status", "--project-dir", str(project)]) == 0
        assert "no bridge is running" not in capsys.readouterr().out
    assert main(["status", "--project-dir", str(project)]) == 0  # the bridge has stopped
    assert capsys.readouterr().out.startswith("(no bridge is running for this project; this is what the last one wrote")


def test_midi_ports_without_a_midi_system_prints_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import os

    import mido

    def no_alsa() -> list[str]:
        # what rtmidi does without /dev/snd/seq: ALSA writes to fd 2 itself, then rtmidi raises
        os.write(2, b"ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed: No such file or directory\n")
        raise OSError("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_input_names", no_alsa)
    assert main(["midi", "ports"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stembridge: MIDI is not available here: ")
    assert "(open /dev/snd/seq failed: No such file or directory)" in err and "ALSA lib" not in err


def test_midi_ports_lists_what_the_system_reports(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    import os

    import mido

    def ports() -> list[str]:
        os.write(2, b"ALSA lib: a warning\n")
        return ["Launchpad X:0", "Midi Through:0"]

    monkeypatch.setattr(mido, "get_input_names", ports)
    assert main(["midi", "ports"]) == 0
    captured = capfd.readouterr()
    assert captured.out.splitlines() == ["Launchpad X:0", "Midi Through:0"] and captured.err == ""


@pytest.mark.parametrize(("extra", "needle"), [
    (["--worker", "gpu-box:9100"], "must look like http://HOST:PORT"),
    (["--worker", "http://gpu-box:9100", "--worker-token-file", "/nonexistent/token"], "cannot read the worker token"),
    (["--worker", "http://gpu-box:9100"], "needs a token"),
    (["--worker", "http://user:pw@gpu-box:9100", "--worker-token-file", "TOKEN"], "not in the URL"),
    (["--worker-token-file", "TOKEN"], "needs --worker URL"),
    (["--worker", "http://127.0.0.1:9", "--worker-token-file", "TOKEN", "--decoder", "fast"],
     "belong to the worker"),
])
def test_serve_refuses_a_bad_worker_setting_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extra: list[str], needle: str,
) -> None:
    monkeypatch.delenv("STEMBRIDGE_WORKER_TOKEN", raising=False)
    project = make_project(tmp_path / "song")
    (tmp_path / "TOKEN").write_text("secret\n")
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--project-dir", str(project), "--osc-port", "0", *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not (project / "stembridge" / "queue.db").exists()


def test_status_says_which_worker_a_job_runs_on() -> None:
    from bridge.cli.server import _format_status

    status = {
        "updated": __import__("time").time(),
        "running": [{"job_id": "j2", "progress": 0.5, "message": "Chorus 1: step 40/80",
                     "worker": "http://gpu-box:9100"}],
        "queued": [],
        "finished": [{"job_id": "j1", "status": "done", "manifest": "stembridge/outbox/j1.json", "error": None,
                      "worker": "http://gpu-box:9100"},
                     {"job_id": "j0", "status": "done", "manifest": "stembridge/outbox/j0.json", "error": None,
                      "worker": "local"}],
    }
    lines = _format_status(status, bridge_running=True)
    assert lines[0].endswith("on http://gpu-box:9100") and "j2" in lines[0]
    assert lines[1].endswith("(on http://gpu-box:9100)")
    assert "on " not in lines[2].split("j0", 1)[1]


@pytest.mark.parametrize(("content", "fragment"), [
    (b'[[binding]]\nport = "x"\ntype = "note"\nnumber = 300\naction = "generate"\n',
     "binding 1.number must be 0-127, got 300"),
    (b"\xff\xfe not text", "is not UTF-8 text"),
    (b"[[binding]\n", "is not valid TOML"),
])
def test_serve_with_a_broken_midi_mapping_names_the_file_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, fragment: str) -> None:
    project = make_project(tmp_path / "song")
    mapping = project / "stembridge" / "midi.toml"
    mapping.parent.mkdir(parents=True, exist_ok=True)
    mapping.write_bytes(content)
    assert main(["serve", "--project-dir", str(project), "--osc-port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"MIDI mapping {mapping}" in err and fragment in err and "stembridge midi learn" in err
    assert "Traceback" not in err and "closed database" not in err
    assert mapping.read_bytes() == content  # the musician's file is left as it was


def test_midi_learn_reports_a_broken_mapping_before_asking_for_a_button(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.transports.midi as midi

    def no_press(*args: object, **kwargs: object) -> None:
        raise AssertionError("learn() must not wait for a button when the mapping is broken")

    monkeypatch.setattr(midi, "learn", no_press)
    mapping = tmp_path / "midi.toml"
    mapping.write_text('[[binding]]\nport = "x"\ntype = "pad"\nnumber = 1\naction = "generate"\n')
    assert main(["midi", "learn", "generate", "--mapping", str(mapping)]) == 2
    assert 'binding 1.type must be "note" or "cc"' in capsys.readouterr().err


def test_stopping_a_server_twice_is_harmless(tmp_path: Path) -> None:
    server = BridgeServer(ServerConfig(project_dir=make_project(tmp_path / "song"), osc_port=0, runner=RUNNER))
    server.start()
    server.stop()
    server.stop()  # used to fail on the closed queue database

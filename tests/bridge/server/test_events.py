"""Job events: failure manifests written once the disk has room, one log line per event, interrupted jobs."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bridge.app import BridgeServer, ServerConfig
from bridge.job.layout import ProjectLayout, write_json_atomic
from bridge.server import events as events_module
from bridge.server.events import JobEvents
from bridge.server.queue import Job, JobQueue
from bridge.server.status import StatusBoard
from tests.bridge.server_helpers import make_project, tiny_request


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[Any]]] = []

    def send(self, target: str, address: str, args: Any) -> None:
        self.sent.append((target, address, list(args)))


def _failed_job(queue: JobQueue, project: Path, job_id: str) -> Job:
    queue.enqueue(job_id, tiny_request(project), reply="osc:127.0.0.1:9")
    queue.finish(job_id, "failed", error_code="internal", error_message="No space left on device")
    job = queue.get(job_id)
    assert job is not None
    return job


def test_a_manifest_that_cannot_be_written_is_written_once_there_is_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    full = {"disk": True}

    def write(path: Path, data: Any, **kw: Any) -> Path:
        if full["disk"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_json_atomic(path, data, **kw)

    monkeypatch.setattr(events_module, "write_json_atomic", write)
    finished: list[Job] = []
    events = JobEvents(layout, _Sink(), StatusBoard(layout, queue, lambda: None), finished=finished.append)
    job = _failed_job(queue, project, "20260101-000000-aaaaaa")
    events.job_finished(job)
    assert finished == [job] and not layout.manifest_path(job.job_id).exists()
    assert events.write_missing_manifests() == 1  # still full
    full["disk"] = False
    assert events.write_missing_manifests() == 0
    doc = json.loads(layout.manifest_path(job.job_id).read_text())
    assert (doc["status"], doc["error"]["code"]) == ("failed", "internal")
    queue.close()


def test_at_start_up_a_failed_job_without_a_manifest_gets_one(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    job = _failed_job(queue, project, "20260101-000000-bbbbbb")
    queue.close()
    with BridgeServer(ServerConfig(project_dir=project, osc_port=0, log_to_file=False)):
        doc = json.loads(layout.manifest_path(job.job_id).read_text())
    assert (doc["job_id"], doc["status"], doc["error"]["message"]) == (job.job_id, "failed", "No space left on device")


def test_at_start_up_what_a_killed_run_left_half_done_is_removed_and_nothing_else(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    leftovers = [layout.outbox / ".20260101-000000-cccccc.json.12626.dbbd98.tmp",
                 layout.outbox / ".status.json.22346.2664d4.tmp",
                 layout.renders / "20260101-000000-cccccc.partial" / "verse-1_keys_take1.wav"]
    kept = [layout.outbox / "20260101-000000-dddddd.json", layout.outbox / ".my-notes.tmp",
            layout.renders / "20260101-000000-dddddd" / "verse-1_keys_take1.wav",
            layout.renders / "20260101-000000-eeeeee.unannounced" / "verse-1_keys_take1.wav"]
    for path in leftovers + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    with BridgeServer(ServerConfig(project_dir=project, osc_port=0, log_to_file=False)):
        assert not any(p.exists() for p in leftovers)
        assert not (layout.renders / "20260101-000000-cccccc.partial").exists()
        assert all(p.read_bytes() == b"x" for p in kept)


def test_each_job_event_is_one_log_line_and_progress_is_logged_per_quarter(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    sink = _Sink()
    events = JobEvents(layout, sink, StatusBoard(layout, queue, lambda: None), finished=lambda job: None)
    job = queue.enqueue("20260101-000000-aaaaaa", tiny_request(project), reply="osc:127.0.0.1:9", source="osc")
    caplog.set_level(logging.INFO, logger=events_module.JOB_LOG_NAME)
    events.job_accepted(job)
    events.job_started(job)
    for fraction in (0.1, 0.24, 0.25, 0.3, 0.3, 0.49, 0.8, 0.8, 0.99, 1.0):  # the heartbeat repeats values
        events.job_progress(job, fraction, f"rendering {fraction}")
    queue.finish(job.job_id, "done", manifest="/p/stembridge/outbox/x.json")
    done = queue.get(job.job_id)
    assert done is not None
    events.job_finished(done)
    lines = [r.getMessage() for r in caplog.records if r.name == events_module.JOB_LOG_NAME]
    assert lines == [
        "job 20260101-000000-aaaaaa accepted from osc (model arranger)",
        "job 20260101-000000-aaaaaa started",
        "job 20260101-000000-aaaaaa 25 % (rendering 0.25)",
        "job 20260101-000000-aaaaaa 75 % (rendering 0.8)",  # 50 % was passed within one report
        "job 20260101-000000-aaaaaa done: /p/stembridge/outbox/x.json",
    ]
    queue.close()


def test_a_failed_job_is_one_warning_line_with_its_code_and_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    events = JobEvents(layout, _Sink(), StatusBoard(layout, queue, lambda: None), finished=lambda job: None)
    caplog.set_level(logging.INFO, logger=events_module.JOB_LOG_NAME)
    events.job_finished(_failed_job(queue, project, "20260101-000000-aaaaaa"))
    records = [r for r in caplog.records if r.name == events_module.JOB_LOG_NAME]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.WARNING, "job 20260101-000000-aaaaaa failed: internal: No space left on device")]
    queue.close()


def test_an_interrupted_job_tells_its_sender_it_runs_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    sink = _Sink()
    events = JobEvents(layout, sink, StatusBoard(layout, queue, lambda: None), finished=lambda job: None)
    job = queue.enqueue("20260101-000000-aaaaaa", tiny_request(project), reply="osc:127.0.0.1:9")
    caplog.set_level(logging.INFO, logger=events_module.JOB_LOG_NAME)
    events.job_interrupted(job)
    assert sink.sent == [("osc:127.0.0.1:9", "/stembridge/error",
                          ["20260101-000000-aaaaaa", "interrupted", events_module.INTERRUPTED_MESSAGE])]
    assert "re-queued, runs again when the bridge restarts" in events_module.INTERRUPTED_MESSAGE
    assert [r.getMessage() for r in caplog.records if r.name == events_module.JOB_LOG_NAME] == [
        "job 20260101-000000-aaaaaa interrupted: re-queued, runs again when the bridge restarts"]
    queue.close()

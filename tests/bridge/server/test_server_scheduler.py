"""The scheduler thread survives a worker that cannot start and a full disk: jobs still end, the next one runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.job.layout import ProjectLayout
from bridge.server import scheduler as scheduler_module
from bridge.server.queue import Job, JobQueue, QueueStorageError
from bridge.server.scheduler import Scheduler
from bridge.server.worker import WorkerProcess
from tests.bridge.server_helpers import RUNNER, make_project, tiny_request


class _Recorder:
    def __init__(self) -> None:
        self.finished: list[Job] = []
        self.done = threading.Event()

    def job_started(self, job: Job) -> None:
        pass

    def job_progress(self, job: Job, fraction: float, message: str) -> None:
        pass

    def job_interrupted(self, job: Job) -> None:
        pass

    def job_finished(self, job: Job) -> None:
        self.finished.append(job)
        if len(self.finished) == 2:
            self.done.set()


FIRST, SECOND = "20260101-000000-aaaaaa", "20260101-000001-bbbbbb"


def _run_two_jobs(
    project: Path, layout: ProjectLayout, queue: JobQueue, listener: _Recorder,
    factory: Callable[[], WorkerProcess] = lambda: WorkerProcess(RUNNER),
) -> list[Job]:
    """Queue two tiny jobs, run the scheduler until both have ended, and return them in order."""
    scheduler = Scheduler(queue, layout, listener, worker_factory=factory)
    queue.enqueue(FIRST, tiny_request(project))
    queue.enqueue(SECOND, tiny_request(project))
    scheduler.start()
    try:
        assert listener.done.wait(60), "the scheduler stopped handling jobs"
    finally:
        scheduler.stop()
    return listener.finished


def test_a_worker_that_cannot_start_fails_only_its_job(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    attempts = {"n": 0}

    def factory() -> WorkerProcess:
        attempts["n"] += 1
        if attempts["n"] <= 2:  # both tries for the first job fail
            raise OSError("cannot fork: resource temporarily unavailable")
        return WorkerProcess(RUNNER)

    first, second = _run_two_jobs(project, layout, queue, _Recorder(), factory)
    assert (first.job_id, first.state, first.error_code) == (FIRST, "failed", "worker_crashed")
    assert "could not be started" in (first.error_message or "")
    assert (second.job_id, second.state) == (SECOND, "done")


class _FullDiskQueue(JobQueue):
    """A queue whose first ``fails`` attempts to record an outcome hit a full disk."""

    def __init__(self, path: Path, fails: int) -> None:
        super().__init__(path)
        self.fails = fails

    def finish(self, job_id: str, state: str, **kwargs: Any) -> bool:
        if self.fails > 0:
            self.fails -= 1
            raise QueueStorageError(f"job {job_id} could not be recorded as {state} (database or disk is full)")
        return super().finish(job_id, state, **kwargs)


def test_a_full_disk_when_a_job_ends_delays_its_outcome_and_the_next_job_still_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "STORAGE_RETRY_S", 0.05)
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = _FullDiskQueue(layout.queue_db, fails=3)
    finished = _run_two_jobs(project, layout, queue, _Recorder())
    assert [(j.job_id, j.state) for j in finished] == [(FIRST, "done"), (SECOND, "done")]
    assert queue.fails == 0
    queue.close()


class _ListenerWithABug(_Recorder):
    """Its first progress report raises, as a bug in an event sink would."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = 0

    def job_progress(self, job: Job, fraction: float, message: str) -> None:
        if not self.raised:
            self.raised += 1
            raise RuntimeError("a bug in an event sink")


def test_an_unexpected_error_on_the_scheduler_thread_does_not_stop_the_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "STORAGE_RETRY_S", 0.05)
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db)
    listener = _ListenerWithABug()
    finished = _run_two_jobs(project, layout, queue, listener)
    assert listener.raised == 1
    assert [(j.job_id, j.state) for j in finished] == [(FIRST, "done"), (SECOND, "done")]
    queue.close()

"""A cancel that reaches the worker before its job has started there is kept for that job, not dropped."""

from __future__ import annotations

import time
from pathlib import Path

from bridge.server.worker import WorkerEvent, WorkerProcess
from tests.bridge.server_helpers import RUNNER, make_project, tiny_request


def test_a_cancel_sent_right_after_run_stops_the_job_at_its_first_step(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    worker = WorkerProcess(RUNNER)  # still starting (spawn, imports) when run and cancel arrive
    try:
        worker.run("20260101-000000-aaaaaa", tiny_request(project, prompt="slow 100"))  # 10 s unless cancelled
        worker.cancel("20260101-000000-aaaaaa")
        worker.cancel("20260101-000000-ffffff")  # not a job of this worker: ignored, not kept
        final: WorkerEvent | None = None
        deadline = time.monotonic() + 8.0
        while final is None and time.monotonic() < deadline:
            event = worker.poll()
            if event is None:
                time.sleep(0.02)
            elif event.kind in ("done", "error", "exited"):
                final = event
        assert final is not None, "the job neither stopped nor finished"
        assert (final.kind, final.job_id, final.code) == ("error", "20260101-000000-aaaaaa", "cancelled")
    finally:
        worker.kill()

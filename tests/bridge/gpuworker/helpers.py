"""Helpers for the worker service tests: a real uvicorn on 127.0.0.1, tasks from the test project,
and a generator-process handler that misbehaves on purpose.

The handler wraps the real one (:func:`bridge.gpuworker.local_executor.task_handler`); the
request's prompt tells it what to do first: ``"slow N"`` waits N x 0.1 s (checking cancellation,
reporting progress only once), ``"stubborn"`` ignores cancellation for 10 s, ``"crash"`` kills
the generator process with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from bridge.gpuworker.app import WorkerConfig, WorkerService, build_app
from bridge.gpuworker.executor import TaskProgress
from bridge.gpuworker.local_executor import LocalExecutor, TaskReply, task_handler
from bridge.gpuworker.task import GenerationTask, TaskResult
from bridge.job.request import parse_request
from bridge.remote.wire import task_upload
from models.base import CancelToken
from tests.bridge.conftest import base_request

#: The test handler for :class:`bridge.gpuworker.local_executor.LocalExecutor`.
HANDLER = "tests.bridge.gpuworker.helpers:behaving_task_handler"
TOKEN = "test-token-0123456789"


def behaving_task_handler(
    model_options: Mapping[str, Any] | None = None, max_models: int = 2
) -> Callable[[str, GenerationTask, Callable[[float, str], None], CancelToken], TaskReply]:
    """The real task handler, after an optional misbehaviour named by the task's prompt."""
    real = task_handler(model_options, max_models)

    def handle(job_id: str, task: GenerationTask, progress: Callable[[float, str], None],
               cancel: CancelToken) -> TaskReply:
        words = str(task.request.get("prompt", "")).split()
        if words[:1] == ["crash"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if words[:1] == ["stubborn"]:
            progress(0.0, "not listening")
            time.sleep(10)
        if words[:1] == ["slow"]:
            progress(0.0, "warming up")
            for _ in range(int(words[1])):
                cancel.check()
                time.sleep(0.1)
        return real(job_id, task, progress, cancel)

    return handle


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20.0)


def client(url: str, token: str | None = TOKEN) -> httpx.Client:
    """An HTTP client for the worker at ``url`` carrying ``token``."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=url, headers=headers, timeout=30.0)


def task_doc(project: Path, job_id: str, *, seed: int = 7, **overrides: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A task document for the test project's request, and its blobs (id -> bytes) to upload."""
    upload = task_upload(parse_request(base_request(project, **overrides)), seed=seed)
    return {**upload.document, "job_id": job_id}, upload.blobs


def upload(http: httpx.Client, blobs: Mapping[str, bytes]) -> None:
    """PUT every blob (asserting it was stored or already there)."""
    for ref, data in blobs.items():
        reply = http.put(f"/v1/blobs/{ref}", content=data)
        assert reply.status_code in (200, 201), reply.text


def submit(http: httpx.Client, project: Path, job_id: str, **overrides: Any) -> httpx.Response:
    """Upload the task's blobs and submit it."""
    doc, blobs = task_doc(project, job_id, **overrides)
    upload(http, blobs)
    return http.post("/v1/jobs", json=doc)


def wait_final(http: httpx.Client, job_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll the job until it is done, failed or cancelled; its document."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        if doc["state"] in ("done", "failed", "cancelled"):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s} s")


def read_events(http: httpx.Client, job_id: str) -> list[tuple[float, str, str]]:
    """Follow the job's event stream to its end: (arrival time.monotonic(), event, data) each."""
    out: list[tuple[float, str, str]] = []
    event = ""
    with http.stream("GET", f"/v1/jobs/{job_id}/events") as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((time.monotonic(), event, line[len("data: "):]))
    return out


@dataclass
class Worker:
    """A worker app served on 127.0.0.1 with a local executor, for one test."""

    url: str
    http: httpx.Client
    executor: LocalExecutor
    service: WorkerService
    state_dir: Path

    def job_folders(self) -> list[str]:
        """Names of the job folders in the state dir."""
        return sorted(p.name for p in (self.state_dir / "jobs").iterdir())

    def blob_files(self) -> list[Path]:
        """Every file under blobs/ and tmp/ (stored and partial blobs)."""
        return sorted(p for d in ("blobs", "tmp") for p in (self.state_dir / d).rglob("*") if p.is_file())


class Lent:
    """An executor lent to one app: the app's shutdown leaves it running (its owner closes it).

    So one generator process serves the apps of many tests, as it serves many jobs of one app.
    """

    def __init__(self, inner: LocalExecutor) -> None:
        self.inner = inner

    async def run(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> TaskResult:
        """The inner executor's run."""
        return await self.inner.run(task, progress, cancel)

    def models_loaded(self) -> list[str]:
        """The inner executor's models."""
        return self.inner.models_loaded()

    async def close(self) -> None:
        """Nothing: the owner closes the inner executor."""


def new_executor() -> LocalExecutor:
    """A local executor whose generator process runs :func:`behaving_task_handler`."""
    return LocalExecutor(handler=HANDLER, handler_options={})


@contextmanager
def running_worker(state_dir: Path, executor: LocalExecutor | None = None, **config: Any) -> Iterator[Worker]:
    """Serve a fresh app over ``state_dir`` (config overrides as keywords).

    Args:
        state_dir: the worker's state folder.
        executor: lent to the app (and left running), or None for a new one the app closes.
    """
    own = executor is None
    inner = new_executor() if executor is None else executor
    app = build_app(WorkerConfig(state_dir=state_dir, token=TOKEN, name="test-worker", **config),
                    inner if own else Lent(inner))
    with serve(app) as url, client(url) as http:
        yield Worker(url=url, http=http, executor=inner, service=app.state.service, state_dir=state_dir)

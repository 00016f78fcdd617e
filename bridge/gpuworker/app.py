"""The worker's web app: the HTTP API of docs/worker-api.md over a store and an executor.

Built on Starlette and served by uvicorn because an ASGI app is exactly what Ray Serve's ingress
hosts: the same :func:`build_app` serves a single ``stembridge worker`` and, with another
:class:`~bridge.gpuworker.executor.Executor`, the scaled-out Ray Serve deployment. No Ray here.

The app owns jobs, blobs, progress and the on-disk state (:mod:`bridge.gpuworker.store`); the
executor only runs tasks. Scheduler coroutines (one per run slot) take queued jobs in the order
they were accepted; a job's result stems are stored as blobs before it is marked done, and its
state is on disk at every step, so a restarted worker queues again whatever was queued or running.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.gpuworker.executor import Executor, TaskFailed
from bridge.gpuworker.store import FINAL_STATES, JobRecord, UploadRefused, WorkerStore
from bridge.gpuworker.submit import (
    Refused,
    Submission,
    build_task,
    check_request,
    is_worker_job_id,
    read_submission,
)
from bridge.remote.wire import is_blob_id
from models.base import CancelToken

log = logging.getLogger(__name__)
#: Name of the logger with one line per job event (accepted, started, done, failed, cancelled).
JOB_LOG_NAME = "bridge.gpuworker.jobs"
job_log = logging.getLogger(JOB_LOG_NAME)

#: The API version in ``GET /v1/health``.
API_VERSION = 1
MiB = 1024 * 1024
#: Shortest interval between two writes of a running job's progress to job.json, in s.
_PROGRESS_SAVE_S = 1.0


@dataclass
class WorkerConfig:
    """How a worker serves.

    Attributes:
        state_dir: the folder for blobs and jobs (created when missing).
        token: the bearer token every call must carry (required, non-empty).
        name: the worker's name in answers (default: the host name).
        max_upload_bytes: largest blob accepted, in bytes.
        max_body_bytes: largest task body (``POST /v1/jobs``) accepted, in bytes.
        max_queue: most jobs queued or running at once.
        keep_hours: how long finished jobs and unused blobs are kept, in hours.
        heartbeat_s: longest gap between two progress events of a queued or running job, in s.
        run_slots: how many jobs run at once (the executor's capacity; 1 for a local process).
        cleanup_interval_s: how often old jobs and blobs are removed, in s.
    """

    state_dir: Path
    token: str
    name: str = field(default_factory=socket.gethostname)
    max_upload_bytes: int = 512 * MiB
    max_body_bytes: int = 4 * MiB
    max_queue: int = 16
    keep_hours: float = 24.0
    heartbeat_s: float = 1.0
    run_slots: int = 1
    cleanup_interval_s: float = 3600.0


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


class _BearerAuth:
    """ASGI middleware: every HTTP call must carry ``Authorization: Bearer <token>`` (constant-time check)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = b""
            for key, value in scope.get("headers", []):
                if key == b"authorization":
                    given = value
                    break
            if not hmac.compare_digest(given, self._expected):
                response = _error(401, "auth", "missing or wrong token; send 'Authorization: Bearer <token>' "
                                               "with the worker's token (its --token-file)")
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Answer refusals with their error body and any unexpected exception with a 500 (and keep serving)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as exc:
            return _error(exc.status, exc.code, exc.message, **exc.extra)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(500, "internal", f"the worker failed on this call ({type(exc).__name__}: {exc}); "
                                           "see the worker's log")

    return endpoint


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class WorkerService:
    """Jobs in memory and on disk, the scheduler coroutines, and the API's handlers.

    Args:
        config: how to serve.
        executor: runs the tasks.
    """

    def __init__(self, config: WorkerConfig, executor: Executor) -> None:
        self.config = config
        self.executor = executor
        self.store = WorkerStore(Path(config.state_dir))
        self._jobs: dict[str, JobRecord] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._signals: dict[str, asyncio.Event] = {}
        self._cancels: dict[str, CancelToken] = {}
        self._saved_at: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Recover the state on disk, queue again what was accepted, start the schedulers."""
        todo = await asyncio.to_thread(self.store.recover)
        await asyncio.to_thread(self.store.cleanup, self.config.keep_hours)
        self._jobs = {r.job_id: r for r in await asyncio.to_thread(self.store.jobs)}
        for record in todo:
            job_log.info("job %s queued again (accepted before the worker restarted)", record.job_id)
            self._queue.put_nowait(record.job_id)
        self._tasks = [asyncio.create_task(self._run_slot(i)) for i in range(max(1, self.config.run_slots))]
        self._tasks.append(asyncio.create_task(self._cleanup_loop()))

    async def stop(self) -> None:
        """Stop the schedulers, then the executor; running jobs stay on disk and run at the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.executor.close()

    # -- job state --------------------------------------------------------------------------------
    def _notify(self, job_id: str) -> None:
        signal = self._signals.pop(job_id, None)
        if signal is not None:
            signal.set()

    def _signal(self, job_id: str) -> asyncio.Event:
        return self._signals.setdefault(job_id, asyncio.Event())

    def _save(self, record: JobRecord) -> None:
        self.store.save_job(record)
        self._saved_at[record.job_id] = time.monotonic()

    def _document(self, record: JobRecord, *, with_result: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "job_id": record.job_id, "state": record.state, "fraction": record.fraction,
            "message": record.message, "worker": self.config.name, "error": record.error,
        }
        if with_result:
            doc["result"] = record.result
        return doc

    def _active(self) -> tuple[int, int]:
        queued = sum(1 for r in self._jobs.values() if r.state == "queued")
        running = sum(1 for r in self._jobs.values() if r.state == "running")
        return queued, running

    def _finish(self, record: JobRecord, state: str, error: dict[str, str] | None = None) -> None:
        record.state, record.error, record.finished = state, error, time.time()
        if state == "done":
            record.fraction, record.message = 1.0, "done"
        elif error is not None:
            record.message = error["message"]
        self._save(record)
        self._saved_at.pop(record.job_id, None)
        took = f" after {record.finished - record.started:.1f} s" if record.started else ""
        detail = f": {error['code']}: {error['message']}" if error and state == "failed" else ""
        job_log.info("job %s %s%s%s", record.job_id, state, took, detail)
        self._notify(record.job_id)

    def _on_progress(self, job_id: str, fraction: float, message: str) -> None:
        record = self._jobs.get(job_id)
        if record is None or record.state != "running":
            return
        record.fraction, record.message = float(max(0.0, min(1.0, fraction))), str(message)
        if time.monotonic() - self._saved_at.get(job_id, 0.0) >= _PROGRESS_SAVE_S:
            self._save(record)
        self._notify(job_id)

    # -- scheduling -------------------------------------------------------------------------------
    async def _run_slot(self, slot: int) -> None:
        while True:
            job_id = await self._queue.get()
            record = self._jobs.get(job_id)
            if record is None or record.state != "queued":
                continue  # cancelled while it waited
            try:
                await self._run_job(record)
            except asyncio.CancelledError:
                raise
            # The scheduler's boundary: a bug in running one job must not stop the next.
            except Exception as exc:
                log.exception("job %s: unexpected failure in run slot %d", job_id, slot)
                if record.state not in FINAL_STATES:
                    self._finish(record, "failed", {"code": "internal", "message": f"{type(exc).__name__}: {exc}"})

    async def _run_job(self, record: JobRecord) -> None:
        job_id = record.job_id
        loop = asyncio.get_running_loop()
        record.state, record.started, record.runs = "running", time.time(), record.runs + 1
        record.fraction, record.message = 0.0, "starting"
        token = self._cancels.setdefault(job_id, CancelToken())
        await asyncio.to_thread(self._save, record)
        job_log.info("job %s started (run %d)", job_id, record.runs)
        self._notify(job_id)

        def progress(fraction: float, message: str) -> None:  # any thread
            loop.call_soon_threadsafe(self._on_progress, job_id, fraction, message)

        try:
            try:
                task = await asyncio.to_thread(build_task, self.store, job_id)
            except FileNotFoundError as exc:
                raise TaskFailed("input", f"a file of this job is gone from the worker ({exc}); submit it again") from None
            result = await self.executor.run(task, progress, token)
            stored = await asyncio.to_thread(self._store_result_blobs, result.blobs)
        except TaskFailed as exc:
            state = "cancelled" if exc.code == "cancelled" else "failed"
            self._finish(record, state, {"code": exc.code, "message": exc.message})
            return
        finally:
            self._cancels.pop(job_id, None)
        record.result = dict(result.result)
        record.blobs = list(dict.fromkeys([*record.blobs, *stored]))
        self._finish(record, "done")

    def _store_result_blobs(self, blobs: dict[str, bytes] | Any) -> list[str]:
        stored = []
        for ref, data in dict(blobs).items():
            got = self.store.put_bytes(data)
            if got != ref:
                raise TaskFailed("internal", f"a result stem named {ref[:12]}… has SHA-256 {got[:12]}…")
            stored.append(got)
        return stored

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.cleanup_interval_s)
            await self.cleanup()

    async def cleanup(self) -> None:
        """Remove old finished jobs and unused old blobs now (also done every ``cleanup_interval_s``)."""
        await asyncio.to_thread(self.store.cleanup, self.config.keep_hours)
        kept = {r.job_id for r in await asyncio.to_thread(self.store.jobs)}
        for job_id in [j for j in self._jobs if j not in kept]:
            del self._jobs[job_id]

    # -- handlers ---------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        """``GET /v1/health``."""
        queued, running = self._active()
        return JSONResponse({"ok": True, "api": API_VERSION, "worker": self.config.name,
                             "models_loaded": self.executor.models_loaded(), "queued": queued, "running": running})

    def _blob_param(self, request: Request) -> str:
        blob = request.path_params["blob"]
        if not is_blob_id(blob):
            raise Refused(400, "schema", f"{blob[:80]!r} is not a blob id; use the SHA-256 of the bytes, 64 lowercase hex digits")
        return str(blob)

    async def blob_head(self, request: Request) -> Response:
        """``HEAD /v1/blobs/<id>`` (a blob asked for counts as just used: the cleanup keeps it)."""
        return Response(status_code=200 if self.store.touch_blob(self._blob_param(request)) else 404)

    async def blob_get(self, request: Request) -> Response:
        """``GET /v1/blobs/<id>``."""
        blob = self._blob_param(request)
        if request.method == "HEAD":
            return await self.blob_head(request)
        if not self.store.has_blob(blob):
            raise Refused(404, "unknown_blob", f"this worker has no blob {blob}; upload it with PUT first")
        return FileResponse(self.store.blob_path(blob), media_type="application/octet-stream")

    async def blob_put(self, request: Request) -> Response:
        """``PUT /v1/blobs/<id>``: the bytes streamed to disk, verified, then moved into place."""
        blob = self._blob_param(request)
        limit = self.config.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Refused(413, "too_large", f"the blob has {declared} bytes, over this worker's bound of {limit}; "
                                            "start the worker with a larger --max-upload-mb")
        upload = self.store.begin_upload(blob, limit)
        try:
            async for chunk in request.stream():
                if chunk:
                    upload.write(chunk)
            created = await asyncio.to_thread(upload.commit)  # fsync and rename off the event loop
        except UploadRefused as exc:
            status = 413 if exc.code == "too_large" else 400
            raise Refused(status, exc.code, exc.message) from None
        finally:
            upload.abort()  # no-op once committed
        return JSONResponse({"blob": blob, "size": upload.size}, status_code=201 if created else 200)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        too_large = Refused(413, "too_large", f"the task is larger than this worker's bound of {limit} bytes; "
                                              "send big inputs as blobs (files) instead of inline")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return bytes(body)

    async def submit(self, request: Request) -> Response:
        """``POST /v1/jobs``."""
        submission = read_submission(await self._read_body(request))
        job_id = submission.job_id
        if job_id in self._jobs:
            return self._resubmitted(self._jobs[job_id], submission)
        missing = self.store.missing_blobs(submission.blobs)
        if missing:
            raise Refused(409, "missing_blobs", f"{len(missing)} blob(s) the task names are not uploaded; "
                                                "PUT them to /v1/blobs/<id> and submit again", missing=missing)
        if sum(self._active()) >= self.config.max_queue:
            raise Refused(503, "busy", f"this worker already has {self.config.max_queue} jobs queued or running; "
                                       "try again later or start it with a larger --max-queue")
        await asyncio.to_thread(check_request, submission, self.store)
        if job_id in self._jobs:  # submitted again while this one was being checked
            return self._resubmitted(self._jobs[job_id], submission)
        record = JobRecord(job_id=job_id, body_hash=submission.body_hash, blobs=list(submission.blobs))
        # no await from the check above to the insert below: a job id is created once
        if not self.store.create_job(record, submission.doc):
            raise Refused(409, "duplicate", f"job {job_id} already exists in this worker's state folder")
        self._jobs[job_id] = record
        self._queue.put_nowait(job_id)
        job_log.info("job %s accepted (model %s)", job_id, submission.doc["request"].get("model", "arranger"))
        return JSONResponse({"job_id": job_id, "state": "queued"}, status_code=202)

    def _resubmitted(self, existing: JobRecord, submission: Submission) -> Response:
        """The answer to a task whose job id was accepted before: its state, or 409 for another body."""
        if existing.body_hash != submission.body_hash:
            raise Refused(409, "duplicate", f"job {existing.job_id} was already accepted with another task; "
                                            "send the next attempt under a new job_id")
        return JSONResponse(self._document(existing, with_result=False), status_code=200)

    def _job_param(self, request: Request) -> JobRecord:
        job_id = request.path_params["job_id"]
        record = self._jobs.get(job_id) if is_worker_job_id(job_id) else None
        if record is None:
            raise Refused(404, "unknown_job", f"this worker has no job {job_id[:100]!r} (finished jobs are kept "
                                              f"{self.config.keep_hours:g} h); submit it again")
        return record

    async def job(self, request: Request) -> Response:
        """``GET /v1/jobs/<job_id>``."""
        return JSONResponse(self._document(self._job_param(request)))

    async def cancel(self, request: Request) -> Response:
        """``POST /v1/jobs/<job_id>/cancel``."""
        record = self._job_param(request)
        if record.state in FINAL_STATES:
            return JSONResponse({"state": record.state}, status_code=200)
        if record.state == "queued":
            self._finish(record, "cancelled", {"code": "cancelled", "message": "cancelled before it started"})
            return JSONResponse({"state": "cancelled"}, status_code=200)
        self._cancels.setdefault(record.job_id, CancelToken()).cancel()
        job_log.info("job %s cancelling", record.job_id)
        return JSONResponse({"state": "cancelling"}, status_code=202)

    async def events(self, request: Request) -> Response:
        """``GET /v1/jobs/<job_id>/events``: server-sent events until the job's final state."""
        record = self._job_param(request)
        return StreamingResponse(self._event_stream(record.job_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _event_stream(self, job_id: str) -> AsyncIterator[bytes]:
        record = self._jobs.get(job_id)
        if record is not None:
            yield _sse("state", self._document(record, with_result=False))
        last: tuple[float, str] | None = None
        sent_at = 0.0
        heartbeat = self.config.heartbeat_s
        while True:
            signal = self._signal(job_id)  # taken before reading, so no change is missed
            current = self._jobs.get(job_id)
            if current is None:  # removed by the cleanup
                yield _sse("failed", {"code": "unknown_job", "message": "the job was removed from the worker"})
                return
            if current.state == "done":
                yield _sse("done", self._document(current))
                return
            if current.state == "failed":
                yield _sse("failed", current.error or {"code": "internal", "message": "failed"})
                return
            if current.state == "cancelled":
                yield _sse("cancelled", self._document(current, with_result=False))
                return
            now = time.monotonic()
            progress = (current.fraction, current.message)
            if progress != last or now - sent_at >= heartbeat:
                yield _sse("progress", {"fraction": current.fraction, "message": current.message})
                last, sent_at = progress, now
            timeout = max(0.01, heartbeat - (time.monotonic() - sent_at))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), timeout)


def build_app(config: WorkerConfig, executor: Executor) -> Starlette:
    """The worker's ASGI app (``uvicorn.run(build_app(...))``, or a Ray Serve ingress).

    The app starts its schedulers when served (ASGI lifespan) and closes ``executor`` when it stops.

    Raises:
        ValueError: the config has no token, or a bound that is not positive.
    """
    if not config.token:
        raise ValueError("the worker needs a token (every call carries one); make one with "
                         "`python -c \"import secrets; print(secrets.token_urlsafe(32))\" > token`")
    for name in ("max_upload_bytes", "max_body_bytes", "max_queue", "keep_hours", "heartbeat_s", "run_slots"):
        if getattr(config, name) <= 0:
            raise ValueError(f"WorkerConfig.{name} must be positive, not {getattr(config, name)!r}")
    service = WorkerService(config, executor)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    routes = [
        Route("/v1/health", _guarded(service.health), methods=["GET"]),
        Route("/v1/blobs/{blob}", _guarded(service.blob_get), methods=["GET", "HEAD"]),
        Route("/v1/blobs/{blob}", _guarded(service.blob_put), methods=["PUT"]),
        Route("/v1/jobs", _guarded(service.submit), methods=["POST"]),
        Route("/v1/jobs/{job_id}", _guarded(service.job), methods=["GET"]),
        Route("/v1/jobs/{job_id}/events", _guarded(service.events), methods=["GET"]),
        Route("/v1/jobs/{job_id}/cancel", _guarded(service.cancel), methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    app.add_middleware(_BearerAuth, token=config.token)
    return app


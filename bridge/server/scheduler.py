"""Runs queued jobs one at a time in the worker process and reports what happens.

One scheduler thread owns the worker: it claims the oldest queued job, hands it to the worker,
forwards progress (and repeats the last progress every ``heartbeat_s`` so a client hears from a
running job at least that often), and records the outcome in the queue. Cancelling a running job
asks the worker to stop between steps; if it has not stopped within ``cancel_grace_s`` the worker
is killed, so a cancel always takes effect within about a second.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Protocol

from bridge.job.layout import ProjectLayout
from bridge.server.queue import Job, JobQueue, QueueStorageError
from bridge.server.threads import join_thread
from bridge.server.worker import WorkerEvent, WorkerProcess

log = logging.getLogger(__name__)

#: Seconds to wait before trying again when the queue cannot be written (a full disk).
STORAGE_RETRY_S = 1.0


class JobListener(Protocol):
    """Told about progress and outcomes; called on the scheduler thread, must return quickly."""

    def job_started(self, job: Job) -> None:
        """``job`` was handed to the worker."""

    def job_progress(self, job: Job, fraction: float, message: str) -> None:
        """``job`` reported progress (fraction 0-1) or the heartbeat repeated it."""

    def job_finished(self, job: Job) -> None:
        """``job`` reached a final state (its fields say which)."""

    def job_interrupted(self, job: Job) -> None:
        """The scheduler stopped while ``job`` ran; it is queued again (or recovered at the next start)."""


@dataclass(frozen=True)
class CancelOutcome:
    """What :meth:`Scheduler.cancel` did: ``state`` is "cancelled", "cancelling", "finished" or "unknown"."""

    state: str
    message: str


class Scheduler:
    """Feeds queued jobs to the worker process.

    Args:
        queue: the persistent queue.
        layout: the project's folders (to notice a manifest an earlier server already wrote).
        listener: told about starts, progress and outcomes.
        worker_factory: builds a fresh worker process (called lazily, and after a crash).
        cancel_grace_s: seconds a running job gets to stop after a cancel before it is killed.
        heartbeat_s: seconds between repeated progress reports of a running job.
        worker_label: where jobs run, recorded with each job (``"local"`` or a worker's URL).
    """

    def __init__(
        self,
        queue: JobQueue,
        layout: ProjectLayout,
        listener: JobListener,
        *,
        worker_factory: Callable[[], WorkerProcess],
        cancel_grace_s: float = 1.0,
        heartbeat_s: float = 1.0,
        worker_label: str = "local",
    ) -> None:
        self._queue = queue
        self._layout = layout
        self._listener = listener
        self._factory = worker_factory
        self._grace = cancel_grace_s
        self._heartbeat = heartbeat_s
        self._worker_label = worker_label
        self._lock = threading.Lock()
        #: Held while a job is queued and acknowledged, so it cannot start before it is accepted.
        self.intake_lock = threading.Lock()
        self._worker: WorkerProcess | None = None
        self._current: Job | None = None
        self._progress: tuple[float, str] = (0.0, "")
        self._cancel_requested: str | None = None
        self._cancel_deadline: float | None = None
        #: An outcome the queue could not record yet: (job, state, manifest, code, message).
        self._pending_finish: tuple[Job, str, str | None, str | None, str | None] | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._thread = threading.Thread(target=self._loop, name="stembridge-scheduler", daemon=True)

    # -- called from other threads ---------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler thread."""
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue again now (call after enqueueing)."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending

    def running(self) -> tuple[str, float, str] | None:
        """(job_id, fraction, message) of the running job, or None."""
        with self._lock:
            if self._current is None:
                return None
            return (self._current.job_id, *self._progress)

    def cancel(self, job_id: str) -> CancelOutcome:
        """Cancel a queued job at once, or ask a running one to stop (within ~1 s)."""
        if self._queue.finish(job_id, "cancelled", error_code="cancelled",
                              error_message="the job was cancelled before it started", only_queued=True):
            job = self._queue.get(job_id)
            if job is not None:
                self._listener.job_finished(job)
            return CancelOutcome("cancelled", "cancelled before it started")
        with self._lock:
            if self._current is not None and self._current.job_id == job_id:
                self._cancel_requested = job_id
                self.wake()
                return CancelOutcome("cancelling", "stopping the running job")
        job = self._queue.get(job_id)
        if job is None:
            return CancelOutcome("unknown", f"there is no job {job_id!r} in this project")
        return CancelOutcome("finished", f"job {job_id} has already finished ({job.state})")

    def stop(self) -> None:
        """Stop the thread and the worker; a job still running goes back to the queue.

        Returns once the scheduler thread has ended (it ends within its current turn).
        """
        self._stopping.set()
        self.wake()
        join_thread(self._thread, "scheduler")
        with self._lock:
            worker, self._worker = self._worker, None
            current, self._current = self._current, None
        if worker is not None:
            worker.kill() if current is not None else worker.stop()
        if current is not None:
            try:
                self._queue.requeue(current.job_id)
                log.info("job %s was running at shutdown; it is queued again", current.job_id)
            except QueueStorageError as exc:  # still "running" in the queue: the next start runs it again
                log.warning("%s; it runs again when the bridge next starts", exc)
            self._listener.job_interrupted(current)
        self._wake_r.close()
        self._wake_w.close()

    # -- the scheduler thread --------------------------------------------------------------
    def _loop(self) -> None:
        last_beat = [time.monotonic()]
        while not self._stopping.is_set():
            try:
                self._turn(last_beat)
            except QueueStorageError as exc:  # a full disk: keep the job and try again, never die
                log.error("%s; trying again in %.0f s", exc, STORAGE_RETRY_S)
                self._stopping.wait(STORAGE_RETRY_S)
            except Exception:  # a bug must not end the one thread that runs jobs: log it, go on
                log.exception("the scheduler hit an unexpected error; it carries on in %.0f s", STORAGE_RETRY_S)
                self._stopping.wait(STORAGE_RETRY_S)

    def _turn(self, last_beat: list[float]) -> None:
        """One round: record an outcome still pending, start a job if idle, wait for and handle events."""
        self._record_pending_finish()
        if self._current is None:
            self._start_next()
            last_beat[0] = time.monotonic()
        handles: list[object] = [self._wake_r]
        if self._worker is not None:
            handles += self._worker.handles()
        timeout = self._heartbeat
        if self._cancel_deadline is not None:
            timeout = max(0.0, min(timeout, self._cancel_deadline - time.monotonic()))
        wait(handles, timeout)  # type: ignore[arg-type]
        self._drain_wake()
        self._handle_cancel_request()
        self._drain_events()
        self._enforce_cancel_deadline()
        now = time.monotonic()
        if self._current is not None and self._pending_finish is None and now - last_beat[0] >= self._heartbeat:
            last_beat[0] = now
            self._listener.job_progress(self._current, *self._progress)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _start_next(self) -> None:
        with self.intake_lock:
            job = self._queue.claim_next(worker=self._worker_label)
        if job is None:
            return
        manifest = self._layout.manifest_path(job.job_id)
        if manifest.exists():  # an earlier server finished it but died before recording that
            log.info("job %s already has a manifest; recording it as done", job.job_id)
            self._finish(job, "done", manifest=str(manifest))
            self.wake()
            return
        with self._lock:
            self._current = job
            self._progress = (0.0, "starting")
        log.debug("job %s started (model %s)", job.job_id, job.request.get("model", "arranger"))
        self._listener.job_started(job)
        for attempt in (1, 2):  # a worker that died while idle is replaced once
            try:
                if self._worker is None:
                    self._worker = self._factory()
                self._worker.run(job.job_id, job.request)
                return
            except (OSError, EOFError) as exc:  # BrokenPipeError included
                log.warning("worker could not take job %s (attempt %d): %s", job.job_id, attempt, exc)
                if self._worker is not None:
                    self._worker.kill()
                    self._worker = None
                error = exc
        self._finish(job, "failed", code="worker_crashed",
                     message=f"the generation worker could not be started ({error}); see the log and try again")

    def _handle_cancel_request(self) -> None:
        with self._lock:
            job_id, self._cancel_requested = self._cancel_requested, None
        if job_id is None or self._current is None or self._current.job_id != job_id:
            return
        if self._worker is not None:
            self._worker.cancel(job_id)
        self._cancel_deadline = time.monotonic() + self._grace

    def _drain_events(self) -> None:
        for _ in range(1000):  # bounded: a burst of progress events
            if self._worker is None:
                return
            event = self._worker.poll()
            if event is None:
                return
            self._handle_event(event)

    def _handle_event(self, event: WorkerEvent) -> None:
        current = self._current
        if event.kind == "exited":
            self._worker = None
            if current is not None:
                log.error("worker died during job %s: %s", current.job_id, event.message)
                self._finish(current, "failed", code=event.code, message=event.message)
            return
        if current is None or event.job_id != current.job_id:
            log.debug("ignoring a late %s event for %s", event.kind, event.job_id)
            return
        if event.kind == "progress":
            with self._lock:
                self._progress = (event.fraction, event.message)
            self._listener.job_progress(current, event.fraction, event.message)
        elif event.kind == "done":
            self._finish(current, "done", manifest=event.manifest_path)
        else:
            state = "cancelled" if event.code == "cancelled" else "failed"
            self._finish(current, state, code=event.code, message=event.message)

    def _enforce_cancel_deadline(self) -> None:
        if self._cancel_deadline is None or time.monotonic() < self._cancel_deadline:
            return
        current = self._current
        if current is not None and self._worker is not None:
            log.warning("job %s did not stop within %.1f s of its cancel; stopping the worker",
                        current.job_id, self._grace)
            self._worker.kill()
            self._worker = None
            self._finish(current, "cancelled", code="cancelled", message="the job was cancelled")
        self._cancel_deadline = None

    def _finish(
        self, job: Job, state: str, *, manifest: str | None = None, code: str | None = None, message: str | None = None
    ) -> None:
        """Record ``job``'s outcome; if the queue cannot be written it is kept and retried every turn."""
        self._pending_finish = (job, state, manifest, code, message)
        self._record_pending_finish()

    def _record_pending_finish(self) -> None:
        if self._pending_finish is None:
            return
        job, state, manifest, code, message = self._pending_finish
        self._queue.finish(job.job_id, state, manifest=manifest, error_code=code, error_message=message)
        self._pending_finish = None
        with self._lock:
            if self._current is not None and self._current.job_id == job.job_id:
                self._current = None
                self._cancel_deadline = None
        log.debug("job %s %s%s", job.job_id, state, f" ({code}: {message})" if code else "")
        final = self._queue.get(job.job_id)
        if final is not None:
            self._listener.job_finished(final)

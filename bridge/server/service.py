"""The job service: the one place requests enter, whatever transport carried them.

:class:`JobService` validates and queues requests and answers questions about jobs with typed
results (:class:`Outcome`, :class:`JobStatus`); it knows nothing about sockets, files or ports.
The OSC router (:mod:`bridge.transports.osc_router`), the file mailbox
(:mod:`bridge.transports.mailbox`) and the MIDI controller actions
(:mod:`bridge.server.controller`) all call it. Validating a generate request can read files, so
transports call :meth:`JobService.generate` from the intake thread (:mod:`bridge.server.intake`).

Job events reach the sender as OSC-shaped replies (DESIGN.md): ``/stembridge/accepted <job_id>``
is sent here, when the job is queued and before it can start; progress, done and error come from
:mod:`bridge.server.events`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bridge.job.layout import JOB_ID, new_job_id
from bridge.job.request import (
    RequestError,
    decode_request,
    parse_request,
)
from bridge.server.auth import TokenAuth
from bridge.server.queue import DuplicateJobError, Job, JobQueue, QueueFullError, QueueStorageError
from bridge.server.replies import PREFIX, Origin, OscArg, Replier
from bridge.server.scheduler import Scheduler

__all__ = ["JOB_ID", "PREFIX", "JobService", "JobStatus", "Origin", "OscArg", "Outcome"]

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Outcome:
    """The answer to one request: ``ok`` with a ``job_id``, or an error ``code`` and ``message``."""

    ok: bool
    job_id: str = ""
    code: str = ""
    message: str = ""


@dataclass(frozen=True)
class JobStatus:
    """Where one job stands.

    Attributes:
        job_id: the job.
        state: queued, running, done, failed or cancelled.
        fraction: progress 0-1 (1 when done).
        message: the latest progress message, the manifest path when done, or the error.
    """

    job_id: str
    state: str
    fraction: float
    message: str


def _error(code: str, message: str, job_id: str = "") -> Outcome:
    return Outcome(False, job_id, code, message)


class JobService:
    """Validates requests, queues jobs and answers questions about them.

    Args:
        project_dir: the project this bridge serves (absolute, resolved).
        queue: the persistent job queue.
        scheduler: runs the jobs (woken after enqueueing, asked to cancel).
        replier: sends ``/stembridge/accepted`` to the sender when a job is queued.
        status: returns the current status.json content.
        auth: the token an untrusted sender's request must carry as its ``"token"`` key.
        accepted: told about each job once it is queued and acknowledged (the job events' log line).
    """

    def __init__(
        self,
        project_dir: Path,
        queue: JobQueue,
        scheduler: Scheduler,
        replier: Replier,
        status: Callable[[], dict[str, Any]],
        *,
        auth: TokenAuth | None = None,
        accepted: Callable[[Job], None] | None = None,
    ) -> None:
        self.project_dir = project_dir.resolve()
        self._queue = queue
        self._scheduler = scheduler
        self._replier = replier
        self._status = status
        self._auth = auth or TokenAuth(None)
        self._accepted = accepted

    def generate(self, payload: str | bytes | Mapping[str, Any], origin: Origin, *, job_id: str | None = None,
                 parent: str | None = None) -> Outcome:
        """Validate a request (JSON text, a path to a JSON file, or an object) and queue it.

        Args:
            payload: the request; text not starting with ``{`` is a path inside the project.
            origin: who sent it.
            job_id: the id to use (mailbox files named like a job id), or None for a new one.
            parent: the job this is a variation of.
        """
        if not origin.trusted and self._auth.required and _is_path(payload):
            # reading first would tell a stranger which files exist (and cost a read each datagram)
            return _error("auth", "this bridge reads a request file only for a sender that presents the token: "
                                  "add it as the last argument, or send the request JSON with its \"token\"")
        try:
            obj = self._load(payload)
            if not origin.trusted and not self._auth.accepts(obj.get("token")):
                return _error("auth", "this bridge needs a token: add \"token\" to the request")
            clean = {k: v for k, v in obj.items() if k != "token"}
            request = parse_request(clean)
            if request.project_dir != self.project_dir:
                raise RequestError(
                    "path",
                    f"project.dir {str(request.project_dir)!r} is not the project this bridge serves "
                    f"({str(self.project_dir)!r}); start a bridge for that project",
                )
            self._check_model(request.model)
        except RequestError as exc:
            return _error(exc.code, str(exc))
        except (ValueError, OverflowError) as exc:  # a NUL byte in a path, a number too large for a float
            log.info("request rejected by a plain %s: %s", type(exc).__name__, exc)
            return _error("input", f"the request is not usable: {exc}")
        return self._enqueue(clean, origin, job_id=job_id, parent=parent)

    def variation(self, job_id: str, origin: Origin, *, new_job_id: str | None = None) -> Outcome:
        """Queue the request of ``job_id`` again with a new seed (a new take)."""
        job = self._queue.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            return _error("unknown_job", f"there is no job {job_id!r} in this project", job_id)
        raw = dict(job.request)
        old_seed = raw.get("seed", 0)
        seed = old_seed
        for _ in range(10):  # bounded: a different seed is found at once in practice
            seed = secrets.randbelow(2**31 - 1)
            if seed != old_seed:
                break
        raw["seed"] = seed
        return self.generate(raw, replace(origin, trusted=True), job_id=new_job_id, parent=job_id)

    def rerun(self, job: Job, origin: Origin) -> Outcome:
        """Queue ``job``'s request again as it is (its files are read afresh), as a child of it."""
        return self.generate(dict(job.request), replace(origin, trusted=True), parent=job.job_id)

    def cancel(self, job_id: str, origin: Origin) -> Outcome:
        """Cancel a queued or running job."""
        if not JOB_ID.match(job_id):
            return _error("unknown_job", f"{job_id!r} is not a job id", job_id)
        try:
            result = self._scheduler.cancel(job_id)
        except QueueStorageError as exc:
            return _error("storage", str(exc), job_id)
        if result.state in ("cancelled", "cancelling"):
            return Outcome(True, job_id, result.state, result.message)
        code = "unknown_job" if result.state == "unknown" else "finished"
        return _error(code, result.message, job_id)

    def job_status(self, job_id: str) -> JobStatus | None:
        """Where ``job_id`` stands, or None if this project has no such job."""
        job = self._queue.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            return None
        fraction, message = 0.0, job.error_message or ""
        running = self._scheduler.running()
        if running is not None and running[0] == job.job_id:
            fraction, message = running[1], running[2]
        elif job.state == "done":
            fraction, message = 1.0, job.manifest or ""
        return JobStatus(job.job_id, job.state, float(fraction), message)

    def queue_status(self) -> dict[str, Any]:
        """The whole queue as status.json shows it (``queued``, ``running``, ``finished`` lists)."""
        return self._status()

    def latest_job(self, *, with_range: bool | None = None) -> Job | None:
        """The most recent job (optionally only those with/without a bar range), or None."""
        return self._queue.latest(with_range=with_range)

    def current_job_id(self) -> str | None:
        """The running job, or else the newest queued one, or None when nothing is waiting."""
        running = self._scheduler.running()
        if running is not None:
            return running[0]
        queued = self._queue.jobs("queued")
        return queued[-1].job_id if queued else None

    def _load(self, payload: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
        return decode_request(payload, project_dir=self.project_dir)

    def _check_model(self, name: str) -> None:
        from models.base import ModelUnavailableError
        from models.registry import build_generator, missing_requirements, spec_for

        try:
            spec_for(name)
        except ValueError as exc:
            raise RequestError("unknown_model", str(exc)) from None
        missing = missing_requirements(name)
        if missing:
            try:  # build_generator raises the registry's message without importing the backend
                build_generator(name)
            except ModelUnavailableError as exc:
                raise RequestError("model_unavailable", str(exc)) from None

    def _enqueue(self, raw: dict[str, Any], origin: Origin, *, job_id: str | None, parent: str | None) -> Outcome:
        if job_id is not None and not JOB_ID.match(job_id):
            return _error("schema", f"job id {job_id!r} may only use letters, digits, - and _")
        job_id = job_id or new_job_id()
        with self._scheduler.intake_lock:  # the job cannot start before it is acknowledged
            try:
                job = self._queue.enqueue(job_id, raw, reply=origin.reply, source=origin.source, parent=parent)
            except QueueFullError as exc:
                return _error("busy", str(exc))
            except DuplicateJobError as exc:
                return _error("duplicate_job", str(exc), job_id)
            except QueueStorageError as exc:
                log.warning("job %s not queued: %s", job_id, exc)
                return _error("storage", str(exc))
            self._replier.reply(origin, "accepted", [job_id])
            if self._accepted is not None:
                self._accepted(job)
        log.debug("job %s queued from %s", job_id, origin.source)
        self._scheduler.wake()
        return Outcome(True, job_id)


def _is_path(payload: str | bytes | Mapping[str, Any]) -> bool:
    """Whether a request payload names a file rather than holding JSON (see ``decode_request``)."""
    if isinstance(payload, Mapping):
        return False
    return payload.lstrip()[:1] not in ("{", b"{")

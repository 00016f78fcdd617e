"""Request handling shared by every transport (OSC, file mailbox, MIDI triggers).

The dispatcher knows nothing about sockets, files or ports. Transports call the typed methods
(:meth:`Dispatcher.generate`, :meth:`Dispatcher.cancel`, ...) and get an :class:`Outcome`, or
hand over an OSC-shaped message (address + arguments) to :meth:`Dispatcher.handle_message`,
which answers through a :class:`ReplySink`. Validating a generate request can read files, so
OSC generate/variation messages are handled on one intake thread, in arrival order; pings,
status and cancel are answered at once.

OSC replies (DESIGN.md): ``/stembridge/pong 1``; ``/stembridge/accepted <job_id>``;
``/stembridge/progress <job_id> <fraction> <message>``; ``/stembridge/done <job_id>
<manifest path>``; ``/stembridge/error <job_id or ""> <code> <message>``;
``/stembridge/status <job_id> <state> <fraction> <message>`` for one job, or
``/stembridge/status <queued> <running> <status.json text>`` for the whole queue.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from bridge.job.layout import JOB_ID, new_job_id
from bridge.job.request import REQUEST_VERSION, RequestError, decode_request, parse_request
from bridge.server.queue import DuplicateJobError, JobQueue, QueueFullError
from bridge.server.scheduler import Scheduler

log = logging.getLogger(__name__)

PREFIX = "/stembridge/"
#: Longest error message sent over OSC, in characters.
MAX_REPLY_TEXT = 2000

OscArg = str | int | float | bytes | bool | None


class ReplySink(Protocol):
    """Delivers a reply to a transport address such as ``"osc:127.0.0.1:9001"``."""

    def send(self, target: str, address: str, args: Sequence[OscArg]) -> None:
        """Send ``address`` with ``args`` to ``target``; must not block for long."""


@dataclass(frozen=True)
class Origin:
    """Who sent a message.

    Attributes:
        source: "osc", "inbox/<file>", "midi" or "cli" (shown in status.json).
        reply: where replies and job events go, or None.
        trusted: True for local transports (mailbox, MIDI); OSC is trusted unless a token is set.
    """

    source: str
    reply: str | None = None
    trusted: bool = False


@dataclass(frozen=True)
class Outcome:
    """The answer to one request: ``ok`` with a ``job_id``, or an error ``code`` and ``message``."""

    ok: bool
    job_id: str = ""
    code: str = ""
    message: str = ""


def _error(code: str, message: str, job_id: str = "") -> Outcome:
    return Outcome(False, job_id, code, message)


class Dispatcher:
    """Validates requests, queues jobs and answers questions about them.

    Args:
        project_dir: the project this bridge serves (absolute, resolved).
        queue: the persistent job queue.
        scheduler: runs the jobs (woken after enqueueing, asked to cancel).
        sink: delivers OSC-shaped replies.
        status: returns the current status.json content.
        token: when set, every OSC message must carry it (see :meth:`handle_message`).
    """

    def __init__(
        self,
        project_dir: Path,
        queue: JobQueue,
        scheduler: Scheduler,
        sink: ReplySink,
        status: Callable[[], dict[str, Any]],
        *,
        token: str | None = None,
    ) -> None:
        self.project_dir = project_dir.resolve()
        self._queue = queue
        self._scheduler = scheduler
        self._sink = sink
        self._status = status
        self._token = token
        self._intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stembridge-intake")

    def close(self) -> None:
        """Finish queued intake work and stop the intake thread."""
        self._intake.shutdown(wait=True)

    # -- typed API -------------------------------------------------------------------------
    def generate(self, payload: str | bytes | Mapping[str, Any], origin: Origin, *, job_id: str | None = None,
                 parent: str | None = None) -> Outcome:
        """Validate a request (JSON text, a path to a JSON file, or an object) and queue it.

        Args:
            payload: the request; text not starting with ``{`` is a path inside the project.
            origin: who sent it.
            job_id: the id to use (mailbox files named like a job id), or None for a new one.
            parent: the job this is a variation of.
        """
        try:
            obj = self._load(payload)
            if not origin.trusted and self._token is not None:
                given = obj.get("token")
                if not isinstance(given, str) or not hmac.compare_digest(given, self._token):
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

    def cancel(self, job_id: str, origin: Origin) -> Outcome:
        """Cancel a queued or running job."""
        if not JOB_ID.match(job_id):
            return _error("unknown_job", f"{job_id!r} is not a job id", job_id)
        result = self._scheduler.cancel(job_id)
        if result.state in ("cancelled", "cancelling"):
            return Outcome(True, job_id, result.state, result.message)
        code = "unknown_job" if result.state == "unknown" else "finished"
        return _error(code, result.message, job_id)

    def last_job(self, *, with_range: bool | None = None) -> str | None:
        """The id of the most recent job (optionally only those with/without a range)."""
        job = self._queue.latest(with_range=with_range)
        return None if job is None else job.job_id

    def rerun_last(self, origin: Origin) -> Outcome:
        """Queue the most recent request again as it is (its files are read afresh)."""
        job = self._queue.latest()
        if job is None:
            return _error("no_request", "no request has been sent to this project yet; generate once from the DAW")
        return self.generate(dict(job.request), replace(origin, trusted=True), parent=job.job_id)

    def regenerate_last_range(self, origin: Origin) -> Outcome:
        """Queue the most recent range regeneration again with a new seed (another take)."""
        job_id = self.last_job(with_range=True)
        if job_id is None:
            return _error("no_request", "no bar range has been regenerated yet; select a range in the DAW first")
        return self.variation(job_id, origin)

    def variation_last(self, origin: Origin) -> Outcome:
        """Queue the most recent request again with a new seed (another take)."""
        job_id = self.last_job()
        if job_id is None:
            return _error("no_request", "no request has been sent to this project yet; generate once from the DAW")
        return self.variation(job_id, origin)

    def trigger(self, action: str, origin: Origin) -> None:
        """Run a controller action on the intake thread; the outcome is logged (and replied if possible).

        Raises:
            ValueError: ``action`` is not generate, regenerate, variation or cancel.
        """
        handlers: dict[str, Callable[[Origin], Outcome]] = {
            "generate": self.rerun_last, "regenerate": self.regenerate_last_range,
            "variation": self.variation_last, "cancel": self.cancel_current,
        }
        handler = handlers.get(action)
        if handler is None:
            raise ValueError(f"unknown action {action!r}; use one of {', '.join(handlers)}")

        def run() -> None:
            outcome = handler(origin)
            if outcome.ok:
                log.info("%s action from %s: job %s %s", action, origin.source, outcome.job_id, outcome.code or "queued")
            else:
                self._reply_error(origin, outcome.job_id, outcome.code, outcome.message)

        self._submit(run, origin)

    def cancel_current(self, origin: Origin) -> Outcome:
        """Cancel the running job, or else the newest queued one."""
        running = self._scheduler.running()
        if running is not None:
            return self.cancel(running[0], origin)
        queued = self._queue.jobs("queued")
        if not queued:
            return _error("no_job", "nothing is queued or running")
        return self.cancel(queued[-1].job_id, origin)

    # -- OSC-shaped messages ---------------------------------------------------------------
    def handle_message(self, address: str, args: Sequence[Any], origin: Origin) -> None:
        """Handle one message and answer through the sink (never raises for bad input).

        With a token configured, an untrusted message carries it as its last string argument
        (a generate request may carry it as the ``"token"`` key instead).
        """
        args = list(args)
        if not origin.trusted and self._token is not None:
            if args and isinstance(args[-1], str) and hmac.compare_digest(args[-1], self._token):
                args.pop()
                origin = replace(origin, trusted=True)
            elif address != PREFIX + "generate":
                self._reply_error(origin, "", "auth", "this bridge needs a token as the last argument")
                return
        name = address[len(PREFIX):] if address.startswith(PREFIX) else ""
        handler = {
            "ping": self._on_ping, "generate": self._on_generate, "variation": self._on_variation,
            "cancel": self._on_cancel, "status": self._on_status, "client_error": self._on_client_error,
        }.get(name)
        if handler is None:
            log.warning("unknown OSC address %r from %s", address, origin.reply)
            self._reply_error(origin, "", "unknown_address",
                              f"unknown address {address!r}; use {PREFIX}ping, generate, variation, cancel or status")
            return
        handler(args, origin)

    def _on_client_error(self, args: list[Any], origin: Origin) -> None:
        """A DAW script reports an error on its side: ``<source> <message>``; logged, not answered."""
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            self._reply_error(origin, "", "arguments",
                              f"{PREFIX}client_error takes two strings, source and message; got {_describe(args)}")
            return
        log.warning("DAW script error from %s (%s): %s", args[0][:100], origin.reply, args[1][:2000])

    def _on_ping(self, args: list[Any], origin: Origin) -> None:
        self._reply(origin, "pong", [REQUEST_VERSION])

    def _on_generate(self, args: list[Any], origin: Origin) -> None:
        if len(args) != 1 or not isinstance(args[0], str | bytes):
            self._reply_error(origin, "", "arguments",
                              f"{PREFIX}generate takes one string: the request JSON or a path to it; got {_describe(args)}")
            return
        payload = args[0]
        self._submit(lambda: self._intake_generate(payload, origin), origin)

    def _intake_generate(self, payload: str | bytes, origin: Origin) -> None:
        self._answer(self.generate(payload, origin), origin)

    def _on_variation(self, args: list[Any], origin: Origin) -> None:
        if len(args) != 1 or not isinstance(args[0], str):
            self._reply_error(origin, "", "arguments", f"{PREFIX}variation takes one string, the job id; got {_describe(args)}")
            return
        job_id = args[0]
        self._submit(lambda: self._answer(self.variation(job_id, origin), origin), origin)

    def _on_cancel(self, args: list[Any], origin: Origin) -> None:
        if len(args) != 1 or not isinstance(args[0], str):
            self._reply_error(origin, "", "arguments", f"{PREFIX}cancel takes one string, the job id; got {_describe(args)}")
            return
        outcome = self.cancel(args[0], origin)
        if not outcome.ok:
            self._reply_error(origin, outcome.job_id, outcome.code, outcome.message)
        # a successful cancel is announced by the job's own /stembridge/error <id> cancelled

    def _on_status(self, args: list[Any], origin: Origin) -> None:
        if len(args) > 1 or (args and not isinstance(args[0], str)):
            self._reply_error(origin, "", "arguments", f"{PREFIX}status takes no argument or a job id; got {_describe(args)}")
            return
        if not args:
            snap = self._status()
            self._reply(origin, "status", [len(snap["queued"]), len(snap["running"]), json.dumps(snap)])
            return
        job = self._queue.get(args[0]) if JOB_ID.match(args[0]) else None
        if job is None:
            self._reply_error(origin, args[0], "unknown_job", f"there is no job {args[0]!r} in this project")
            return
        fraction, message = 0.0, job.error_message or ""
        running = self._scheduler.running()
        if running is not None and running[0] == job.job_id:
            fraction, message = running[1], running[2]
        elif job.state == "done":
            fraction, message = 1.0, job.manifest or ""
        self._reply(origin, "status", [job.job_id, job.state, float(fraction), message])

    # -- helpers ---------------------------------------------------------------------------
    def _submit(self, work: Callable[[], None], origin: Origin) -> None:
        """Run ``work`` on the intake thread; a failure is logged with its traceback and answered."""

        def guarded() -> None:
            # The intake thread's boundary: an executor would keep the exception in a future nobody
            # reads, so the sender would hear nothing. Log the traceback and answer instead.
            try:
                work()
            except Exception as exc:
                log.exception("internal error while handling a request from %s", origin.source)
                self._reply_error(origin, "", "internal", f"the bridge failed on this request: {type(exc).__name__}: {exc}")

        self._intake.submit(guarded)

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
                self._queue.enqueue(job_id, raw, reply=origin.reply, source=origin.source, parent=parent)
            except QueueFullError as exc:
                return _error("busy", str(exc))
            except DuplicateJobError as exc:
                return _error("duplicate_job", str(exc), job_id)
            self._reply(origin, "accepted", [job_id])
        log.info("job %s queued from %s", job_id, origin.source)
        self._scheduler.wake()
        return Outcome(True, job_id)

    def _answer(self, outcome: Outcome, origin: Origin) -> None:
        if not outcome.ok:  # success was answered with /stembridge/accepted when queued
            self._reply_error(origin, outcome.job_id, outcome.code, outcome.message)

    def _reply(self, origin: Origin, name: str, args: list[OscArg]) -> None:
        if origin.reply is not None:
            self._sink.send(origin.reply, PREFIX + name, args)

    def _reply_error(self, origin: Origin, job_id: str, code: str, message: str) -> None:
        log.info("error for %s (%s): %s: %s", origin.source, job_id or "-", code, message)
        self._reply(origin, "error", [job_id, code, message[:MAX_REPLY_TEXT]])


def _describe(args: Sequence[Any]) -> str:
    if not args:
        return "no arguments"
    return ", ".join(type(a).__name__ for a in args)

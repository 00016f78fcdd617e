"""The generation worker: a separate process (multiprocessing "spawn") that runs jobs.

The server never imports torch or a model backend; the worker does, when a job needs it. A crash
or an out-of-memory kill in a model ends only the worker: the server sees the process exit, fails
that job with a clear error and starts a fresh worker for the next one.

:class:`GeneratorProcess` is the process handling itself, for any job handler: the child builds
its handler once from a ``"module:function"`` factory and keyword options (so whatever the handler
keeps, such as loaded models, stays warm between jobs) and runs one job at a time.
:class:`WorkerProcess` is the bridge's worker: its handler parses a request v1 and runs the job
runner (``bridge.job.pipeline.run_request``); ``stembridge worker`` uses another handler
(:mod:`bridge.gpuworker.local_executor`).

Protocol (parent -> child on the command pipe): ``("run", job_id, payload)``,
``("cancel", job_id)``, ``("stop",)``. Child -> parent on the event pipe: ``("progress", job_id,
fraction, message)``, ``("done", job_id, result)``, ``("error", job_id, code, message)``.
The child exits by itself when the parent goes away (closed pipe, or the parent-death signal).
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The job runner used unless another ``"module:function"`` is configured.
DEFAULT_RUNNER = "bridge.job.pipeline:run_request"
#: The handler factory of the bridge's worker (:func:`pipeline_handler`).
PIPELINE_HANDLER = "bridge.server.worker:pipeline_handler"

#: A job handler: (job_id, payload, progress, cancel token) -> a picklable result.
JobHandler = Callable[[str, Any, Callable[[float, str], None], Any], Any]
#: Shortest interval between two progress events sent by the worker, in seconds.
PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class WorkerEvent:
    """Something the worker reported (or the worker's death).

    Attributes:
        kind: "progress", "done", "error" or "exited".
        job_id: the job it is about ("" for "exited" when idle).
        fraction: progress 0-1 ("progress").
        message: human message ("progress", "error", "exited").
        manifest_path: absolute manifest path ("done", bridge worker).
        code: stable error code ("error", "exited").
        result: what the handler returned ("done").
    """

    kind: str
    job_id: str = ""
    fraction: float = 0.0
    message: str = ""
    manifest_path: str = ""
    code: str = ""
    result: Any = None


def _resolve_runner(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"runner {target!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def pipeline_handler(runner: str = DEFAULT_RUNNER, model_options: Mapping[str, Any] | None = None) -> JobHandler:
    """The bridge worker's handler: parse the request v1 payload, run ``runner``, give the manifest path.

    Args:
        runner: ``"module:function"`` with the signature of ``bridge.job.pipeline.run_request``.
        model_options: passed to the runner as ``model_options``.
    """
    from bridge.job.request import parse_request

    run = _resolve_runner(runner)
    options = dict(model_options or {})

    def handle(job_id: str, payload: Any, progress: Callable[[float, str], None], cancel: Any) -> str:
        request = parse_request(payload)
        result = run(request, job_id=job_id, progress=progress, cancel=cancel, model_options=dict(options))
        return str(result.manifest_path)

    return handle


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        log.debug("parent-death signal not available here")


def error_code(exc: BaseException) -> str:
    """The stable error code for what a job raised (its own ``code`` when it carries one)."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    from models.base import GenerationCancelled, ModelUnavailableError

    if isinstance(exc, GenerationCancelled):
        return "cancelled"
    if isinstance(exc, ModelUnavailableError):
        return "model_unavailable"
    if isinstance(exc, MemoryError):
        return "out_of_memory"
    if isinstance(exc, ValueError | TypeError):
        return "input"
    if isinstance(exc, OSError):
        return "io"
    return "internal"


def _child_main(
    cmd: Connection,
    events: Connection,
    handler_target: str,
    handler_options: Mapping[str, Any],
    log_file: str | None,
) -> None:
    """Entry point of the worker process."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    if log_file:
        logging.basicConfig(
            filename=log_file,
            level=logging.INFO,
            format="%(asctime)s worker[%(process)d] %(levelname)s %(name)s: %(message)s",
        )
    from models.base import CancelToken

    send_lock = threading.Lock()
    jobs: queue.Queue[tuple[str, Any] | None] = queue.Queue()
    current: dict[str, Any] = {"job_id": None, "token": None}
    # A cancel can arrive before its job starts here (the worker is still importing, or finishing
    # the job before): it is kept for that job, never dropped. Guarded by state_lock.
    state_lock = threading.Lock()
    waiting: set[str] = set()  # jobs received, not started yet
    cancelled_early: set[str] = set()

    def send(*msg: Any) -> None:
        with send_lock:
            events.send(msg)

    def reader() -> None:
        while True:
            try:
                msg = cmd.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone; nothing left to do
            if msg[0] == "run":
                with state_lock:
                    waiting.add(msg[1])
                jobs.put((msg[1], msg[2]))
            elif msg[0] == "cancel":
                with state_lock:
                    if current["job_id"] == msg[1] and current["token"] is not None:
                        current["token"].cancel()
                    elif msg[1] in waiting:
                        cancelled_early.add(msg[1])
            elif msg[0] == "stop":
                jobs.put(None)
                return

    threading.Thread(target=reader, name="worker-commands", daemon=True).start()
    handler: JobHandler | None = None
    while True:
        item = jobs.get()
        if item is None:
            return
        job_id, payload = item
        token = CancelToken()
        with state_lock:
            current.update(job_id=job_id, token=token)
            waiting.discard(job_id)
            if job_id in cancelled_early:
                cancelled_early.discard(job_id)
                token.cancel()
        last = [0.0]

        def progress(fraction: float, message: str, _job: str = job_id, _last: list[float] = last) -> None:
            now = time.monotonic()
            if fraction >= 1.0 or now - _last[0] >= PROGRESS_INTERVAL_S:
                _last[0] = now
                send("progress", _job, float(min(max(fraction, 0.0), 1.0)), str(message))

        try:
            if handler is None:  # built once: whatever it loads stays loaded for the next job
                handler = _resolve_runner(handler_target)(**dict(handler_options))
            result = handler(job_id, payload, progress, token)
            send("done", job_id, result)
        # The worker boundary: every failure becomes an error event with its type and message
        # (and the traceback in the log), so nothing is hidden and the worker keeps serving.
        except Exception as exc:
            code = error_code(exc)
            if code not in ("cancelled", "model_unavailable") and getattr(exc, "code", None) is None:
                log.exception("job %s failed", job_id)
            message = str(exc) or type(exc).__name__
            if code == "internal":
                message = f"{type(exc).__name__}: {message}"
            send("error", job_id, code, message)
        finally:
            with state_lock:
                current.update(job_id=None, token=None)


class GeneratorProcess:
    """A handle on one generator process that runs jobs one at a time with a job handler.

    Args:
        handler: ``"module:function"`` of a factory that takes ``handler_options`` as keywords
            and returns a :data:`JobHandler`; called once, in the child, before its first job.
        handler_options: keyword options for the factory (picklable).
        log_file: where the process logs, or None.
        name: the process name (``ps``).
    """

    def __init__(
        self,
        handler: str,
        handler_options: Mapping[str, Any] | None = None,
        *,
        log_file: Path | None = None,
        name: str = "stembridge-worker",
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        cmd_recv, self._cmd = ctx.Pipe(duplex=False)
        self._events, ev_send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child_main,
            args=(cmd_recv, ev_send, handler, dict(handler_options or {}), str(log_file) if log_file else None),
            name=name,
            daemon=True,
        )
        self._process.start()
        cmd_recv.close()
        ev_send.close()
        self._exited = False
        log.info("%s process %s started (handler %s)", name, self._process.pid, handler)

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self._process.is_alive()

    def handles(self) -> list[Any]:
        """Objects for ``multiprocessing.connection.wait``: the event pipe and the process sentinel."""
        return [self._events, self._process.sentinel]

    def run(self, job_id: str, payload: Any) -> None:
        """Start ``job_id`` with the handler's ``payload`` (one job at a time, in order)."""
        self._cmd.send(("run", job_id, payload))

    def cancel(self, job_id: str) -> None:
        """Ask the worker to stop ``job_id`` at its next step."""
        try:
            self._cmd.send(("cancel", job_id))
        except (BrokenPipeError, OSError):
            log.warning("could not ask worker to cancel %s: it is gone", job_id)

    def poll(self) -> WorkerEvent | None:
        """The next event if one is ready; an "exited" event once the process has died."""
        try:
            if self._events.poll():
                msg = self._events.recv()
                return _event_from_message(msg)
        except (EOFError, OSError):
            pass
        if not self._process.is_alive() and not self._exited:
            self._exited = True
            self._process.join(timeout=1.0)
            code = self._process.exitcode
            return WorkerEvent(kind="exited", code="worker_crashed", message=_exit_text(code))
        return None

    def kill(self) -> None:
        """Stop the process at once (used for a cancel the job does not honour, and shutdown)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5.0)
        self._exited = True
        self._close()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the worker to exit after its current job; kill it after ``timeout_s`` seconds."""
        try:
            self._cmd.send(("stop",))
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=timeout_s)
        self.kill()

    def _close(self) -> None:
        for conn in (self._cmd, self._events):
            try:
                conn.close()
            except OSError:
                pass


class WorkerProcess(GeneratorProcess):
    """The bridge's worker process: runs request v1 jobs through a job runner.

    Args:
        runner: ``"module:function"`` with the signature of ``bridge.job.pipeline.run_request``.
        model_options: passed to the runner as ``model_options``.
        log_file: where the worker logs (the project's log), or None.
    """

    def __init__(
        self,
        runner: str = DEFAULT_RUNNER,
        *,
        model_options: Mapping[str, Any] | None = None,
        log_file: Path | None = None,
    ) -> None:
        super().__init__(PIPELINE_HANDLER, {"runner": runner, "model_options": dict(model_options or {})},
                         log_file=log_file)

    def run(self, job_id: str, payload: Any) -> None:
        """Start ``job_id`` with its request v1 document (one job at a time, in order)."""
        super().run(job_id, dict(payload))

    def poll(self) -> WorkerEvent | None:
        """The next event (a "done" event carries the manifest path); "exited" once the process died."""
        event = super().poll()
        if event is not None and event.kind == "done":
            return replace(event, manifest_path=str(event.result))
        return event


def _event_from_message(msg: tuple[Any, ...]) -> WorkerEvent:
    kind = msg[0]
    if kind == "progress":
        return WorkerEvent(kind="progress", job_id=msg[1], fraction=float(msg[2]), message=str(msg[3]))
    if kind == "done":
        return WorkerEvent(kind="done", job_id=msg[1], result=msg[2])
    return WorkerEvent(kind="error", job_id=msg[1], code=str(msg[2]), message=str(msg[3]))


def _exit_text(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        hint = " (SIGKILL usually means the system ran out of memory)" if sig == signal.SIGKILL else ""
        return f"the generator process was killed by {name}{hint}; try a smaller model or a shorter range"
    return f"the generator process stopped unexpectedly (exit code {exitcode}); see stembridge.log"

"""The local executor: a long-lived generator process on this machine, models kept warm.

The process (multiprocessing "spawn", :class:`bridge.server.worker.GeneratorProcess`) builds a
:class:`~bridge.gpuworker.task.ModelCache` once and runs :func:`~bridge.gpuworker.task.execute_task`
for one task at a time, so torch and the models are imported and loaded there only, and a second
job with the same model loads nothing. A cancel sets the task's token in the process; a task
that has not stopped within ``cancel_grace_s`` (about a second) is ended by killing the process.
A process that dies fails its task with ``worker_crashed``; a fresh one serves the next task.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from bridge.gpuworker.executor import TaskFailed, TaskProgress
from bridge.gpuworker.task import GenerationTask, ModelCache, TaskResult, execute_task
from bridge.server.worker import GeneratorProcess
from models.base import CancelToken

log = logging.getLogger(__name__)

#: The handler factory the generator process runs tasks with (:func:`task_handler`).
TASK_HANDLER = "bridge.gpuworker.local_executor:task_handler"
#: How long the executor waits for process events before checking cancel/close again, in s.
_POLL_S = 0.05


@dataclass(frozen=True)
class TaskReply:
    """What the generator process sends back for a finished task.

    Attributes:
        result: the task's result.
        models_loaded: the models loaded in the process now.
        loads: how many generators the process has built since it started.
    """

    result: TaskResult
    models_loaded: list[str]
    loads: int


def task_handler(
    model_options: Mapping[str, Any] | None = None, max_models: int = 2
) -> Callable[[str, GenerationTask, Callable[[float, str], None], CancelToken], TaskReply]:
    """The generator process's handler: runs tasks with one :class:`ModelCache` for its lifetime.

    Args:
        model_options: keyword options for every generator (``model_path``, ``adapter``, ``device``…).
        max_models: most generators kept loaded at once.
    """
    cache = ModelCache(model_options, max_models=max_models)

    def handle(job_id: str, task: GenerationTask, progress: Callable[[float, str], None],
               cancel: CancelToken) -> TaskReply:
        result = execute_task(task, models=cache, progress=progress, cancel=cancel)
        return TaskReply(result=result, models_loaded=cache.loaded, loads=cache.loads)

    return handle


class LocalExecutor:
    """Runs tasks in a generator process on this machine, one at a time.

    Args:
        model_options: keyword options for every generator.
        cancel_grace_s: how long a cancelled task may take to stop before the process is killed, s.
        max_models: most generators the process keeps loaded.
        handler: ``"module:function"`` of the handler factory (tests wrap :func:`task_handler`).
        handler_options: keyword options for ``handler`` (default: ``model_options`` and ``max_models``).
    """

    def __init__(
        self,
        model_options: Mapping[str, Any] | None = None,
        *,
        cancel_grace_s: float = 1.0,
        max_models: int = 2,
        handler: str = TASK_HANDLER,
        handler_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._handler = handler
        self._handler_options = dict(
            handler_options if handler_options is not None
            else {"model_options": dict(model_options or {}), "max_models": max_models}
        )
        self._grace = cancel_grace_s
        self._process: GeneratorProcess | None = None
        self._lock = threading.Lock()  # not asyncio's: the executor may serve more than one event loop
        self._models: list[str] = []
        self._closed = False
        #: Generators built by the current process (a warm model adds none).
        self.loads = 0

    @property
    def pid(self) -> int | None:
        """The generator process's id, or None when none is running."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the generator process now (it imports in the background), not at the first task."""
        if self._process is None and not self._closed:
            self._process = GeneratorProcess(self._handler, self._handler_options, name="stembridge-generator")
            self._models, self.loads = [], 0

    def models_loaded(self) -> list[str]:
        """The models the process has loaded now."""
        return list(self._models)

    async def run(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> TaskResult:
        """Run ``task`` in the generator process (tasks wait for each other).

        Raises:
            TaskFailed: every failure; "cancelled" after a cancel, "worker_crashed" when the
                process died.
        """
        return await asyncio.to_thread(self._run_locked, task, progress, cancel)

    async def close(self) -> None:
        """Stop the generator process; one running a task is killed at once (the task is not recorded)."""
        self._closed = True
        process, self._process = self._process, None
        if process is None:
            return
        if self._lock.locked():
            await asyncio.to_thread(process.kill)
        else:
            await asyncio.to_thread(process.stop, 2.0)

    # -- internals (the executor's thread) ------------------------------------------------------
    def _drop_process(self, *, restart: bool) -> None:
        if self._process is not None:
            self._process.kill()
        self._process = None
        self._models, self.loads = [], 0
        if restart:
            self.start()

    def _hand_over(self, task: GenerationTask) -> GeneratorProcess:
        for attempt in (1, 2):  # a process that died while idle is replaced once
            self.start()
            process = self._process
            if process is None:
                raise TaskFailed("cancelled", "the worker is shutting down; the job runs again when it starts")
            try:
                process.run(task.job_id, task)
                return process
            except (OSError, EOFError) as exc:  # BrokenPipeError included
                log.warning("generator process could not take %s (attempt %d): %s", task.job_id, attempt, exc)
                self._drop_process(restart=False)
        raise TaskFailed("worker_crashed", "the generator process could not be started; see the worker's log")

    def _run_locked(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> TaskResult:
        with self._lock:
            return self._run_blocking(task, progress, cancel)

    def _run_blocking(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> TaskResult:
        try:
            return self._follow(self._hand_over(task), task.job_id, progress, cancel)
        except TaskFailed:
            raise
        # The executor's boundary: whatever else goes wrong here is a failed task, never a crash.
        except Exception as exc:
            log.exception("task %s failed in the executor", task.job_id)
            raise TaskFailed("internal", f"{type(exc).__name__}: {exc}") from None

    def _follow(self, process: GeneratorProcess, job_id: str, progress: TaskProgress,
                cancel: CancelToken) -> TaskResult:
        cancel_sent: float | None = None
        while True:
            if self._closed:
                raise TaskFailed("cancelled", "the worker stopped; the job runs again when it starts")
            if cancel.cancelled and cancel_sent is None:
                process.cancel(job_id)
                cancel_sent = time.monotonic()
            if cancel_sent is not None and time.monotonic() - cancel_sent > self._grace:
                log.warning("task %s did not stop within %.1f s of its cancel; restarting the generator process",
                            job_id, self._grace)
                self._drop_process(restart=True)
                raise TaskFailed("cancelled", "the job was cancelled")
            wait(process.handles(), timeout=_POLL_S)
            while (event := process.poll()) is not None:
                if event.kind == "exited":
                    self._drop_process(restart=True)
                    raise TaskFailed("worker_crashed", event.message)
                if event.job_id != job_id:
                    log.debug("ignoring a late %s event for %s", event.kind, event.job_id)
                elif event.kind == "progress":
                    progress(event.fraction, event.message)
                elif event.kind == "done":
                    reply = event.result
                    if not isinstance(reply, TaskReply):
                        raise TaskFailed("internal", f"the generator process answered {type(reply).__name__}")
                    self._models, self.loads = list(reply.models_loaded), reply.loads
                    return reply.result
                else:
                    raise TaskFailed(event.code or "internal", event.message)

"""Where a worker's tasks run: the interface between the web app and the generators.

The web app (:mod:`bridge.gpuworker.app`) owns jobs, blobs, progress streams and the on-disk
state; an :class:`Executor` only runs :class:`~bridge.gpuworker.task.GenerationTask` s. Two
implementations share this interface: the local executor (a generator process on this
machine, models kept loaded) and the Ray Serve executor (replicas, one per GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bridge.gpuworker.task import GenerationTask, TaskResult
from models.base import CancelToken

#: Called with (fraction 0-1 of the generation stage, message); safe to call from any thread.
TaskProgress = Callable[[float, str], None]


class TaskFailed(Exception):
    """A task ended without a result; ``code`` is the bridge's error code.

    Codes: the request's own ("input", "path", "schema", …), "model_unavailable",
    "out_of_memory", "cancelled", "internal", and "worker_crashed" when the process or replica
    running the task died (the only one worth running again).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Executor(Protocol):
    """Runs generation tasks; the app calls it from its event loop."""

    async def run(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> TaskResult:
        """Run ``task`` to its end.

        Progress is reported through ``progress``; once ``cancel`` is set the task stops within
        about a second. Raises :class:`TaskFailed` for every failure (``code`` "cancelled" after
        a cancel); never anything else.
        """

    def models_loaded(self) -> list[str]:
        """The models loaded and warm now (for ``GET /v1/health``)."""

    async def close(self) -> None:
        """Stop whatever runs tasks (called once, at shutdown)."""

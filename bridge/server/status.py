"""``outbox/status.json``: what is queued, running (with progress) and recently finished.

Shape (version 1)::

    {"version": 1, "updated": <unix seconds>,
     "queued":   [{"job_id", "source", "model", "created", "interrupted"}],
     "running":  [{"job_id", "progress", "message", "source", "started", "worker"}],
     "finished": [{"job_id", "status", "manifest", "error", "worker"}]}

``finished`` holds the last :data:`FINISHED_LIMIT` jobs, newest first; ``status`` is "done",
"failed" or "cancelled"; ``manifest`` is the manifest path relative to the project folder (or
null); ``error`` is ``{"code", "message"}`` or null; ``worker`` is where the job ran: "local"
(this machine's generator process) or a remote worker's URL (``stembridge serve --worker``). The file is replaced atomically, so a
reader never sees half of it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.job.layout import ProjectLayout, write_json_atomic
from bridge.job.manifest import Failure
from bridge.server.queue import Job, JobQueue

STATUS_VERSION = 1
FINISHED_LIMIT = 20
STATUS_FILE = "status.json"


def _relative(layout: ProjectLayout, path: str | None) -> str | None:
    if not path:
        return None
    try:
        return layout.relative(Path(path))
    except ValueError:
        return path


def _finished_entry(layout: ProjectLayout, job: Job) -> dict[str, Any]:
    error = None if job.error_code is None else Failure(job.error_code, job.error_message or "").to_json()
    return {"job_id": job.job_id, "status": job.state, "manifest": _relative(layout, job.manifest), "error": error,
            "worker": job.worker}


class StatusBoard:
    """Builds the status snapshot and rewrites status.json when something changed.

    Args:
        layout: the project's folders.
        queue: the job queue.
        running: returns (job_id, fraction, message) of the running job, or None.
        min_interval_s: shortest time between two writes caused by progress, in seconds.
        refresh_s: rewrite at least this often (so ``updated`` shows the bridge is alive).
    """

    def __init__(
        self,
        layout: ProjectLayout,
        queue: JobQueue,
        running: Callable[[], tuple[str, float, str] | None],
        *,
        min_interval_s: float = 0.25,
        refresh_s: float = 2.0,
    ) -> None:
        self._layout = layout
        self._queue = queue
        self._running = running
        self._min = min_interval_s
        self._refresh = refresh_s
        self._dirty = threading.Event()
        self._last_write = 0.0
        self._write_lock = threading.Lock()

    @property
    def path(self) -> Path:
        """``outbox/status.json``."""
        return self._layout.outbox / STATUS_FILE

    def mark_dirty(self) -> None:
        """Something changed; the next :meth:`write_if_due` writes."""
        self._dirty.set()

    def snapshot(self) -> dict[str, Any]:
        """The current status document."""
        running = self._running()
        running_entries = []
        for job in self._queue.jobs("running"):
            fraction, message = 0.0, "starting"
            if running is not None and running[0] == job.job_id:
                fraction, message = running[1], running[2]
            running_entries.append({
                "job_id": job.job_id, "progress": round(float(fraction), 4), "message": message,
                "source": job.source, "started": job.started, "worker": job.worker,
            })
        return {
            "version": STATUS_VERSION,
            "updated": round(time.time(), 3),
            "queued": [
                {"job_id": j.job_id, "source": j.source, "model": j.request.get("model", "arranger"),
                 "created": j.created, "interrupted": j.interruptions > 0}
                for j in self._queue.jobs("queued")
            ],
            "running": running_entries,
            "finished": [_finished_entry(self._layout, j) for j in self._queue.recent_finished(FINISHED_LIMIT)],
        }

    def write(self) -> Path:
        """Write status.json now."""
        with self._write_lock:
            self._dirty.clear()
            self._last_write = time.monotonic()
            return write_json_atomic(self.path, self.snapshot(), overwrite=True)

    def write_if_due(self) -> bool:
        """Write if something changed (at most every ``min_interval_s``) or ``refresh_s`` passed."""
        since = time.monotonic() - self._last_write
        if (self._dirty.is_set() and since >= self._min) or since >= self._refresh:
            self.write()
            return True
        return False


def read_status(project_dir: Path) -> dict[str, Any] | None:
    """The status.json of a project, or None if no bridge has written one.

    Raises:
        ValueError: the file exists but is not valid JSON.
    """
    path = ProjectLayout(project_dir.resolve()).outbox / STATUS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a status object")
    return data

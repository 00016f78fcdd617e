"""The persistent job queue: one SQLite file inside the project (``layout.queue_db``).

A job moves ``queued -> running -> done | failed | cancelled``. The queue survives a restart:
queued jobs stay queued, and a job that was running when the server stopped is put back in the
queue (marked interrupted) so it runs again. A job id is a primary key and a job is claimed by
one atomic ``UPDATE``, so no job id is ever run twice; a finished job is never claimed again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.job.text import escape_surrogates

#: States a job can be in. ``queued`` and ``running`` are active; the others are final.
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("done", "failed", "cancelled")
#: A job interrupted this many times (the server died while it ran) is not retried again.
MAX_INTERRUPTIONS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    request TEXT NOT NULL,
    reply TEXT,
    source TEXT NOT NULL DEFAULT '',
    parent TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    interruptions INTEGER NOT NULL DEFAULT 0,
    manifest TEXT,
    error_code TEXT,
    error_message TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
"""


class QueueFullError(RuntimeError):
    """The queue already holds its maximum number of active jobs."""


class QueueStorageError(RuntimeError):
    """The queue database could not record a change (the disk is full, or the file is unwritable)."""


@contextlib.contextmanager
def _storage(what: str) -> Iterator[None]:
    """Turn SQLite's write failures (a full disk, a read-only file) into :class:`QueueStorageError`."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise QueueStorageError(f"{what} ({exc}); free some disk space in the project folder") from exc


class DuplicateJobError(ValueError):
    """A job with this id exists already (job ids are never reused)."""


@dataclass(frozen=True)
class Job:
    """One row of the queue.

    Attributes:
        job_id: the job's id.
        seq: insertion order (jobs run in this order).
        state: queued, running, done, failed or cancelled.
        request: the request JSON object (without any token).
        reply: where OSC replies go (``"osc:host:port"``), or None (mailbox, MIDI).
        source: what submitted it, e.g. ``"osc"``, ``"inbox/verse.json"``, ``"midi"``.
        parent: the job this is a variation of, or None.
        created: unix time (seconds) it was queued.
        started: unix time it last started, or None.
        finished: unix time it finished, or None.
        interruptions: how often the server stopped while it ran.
        manifest: absolute manifest path once done, or None.
        error_code: stable error code when failed/cancelled, or None.
        error_message: the error for the musician, or None.
        worker: where it last ran (``"local"`` or a remote worker's URL), or None if it never started.
    """

    job_id: str
    seq: int
    state: str
    request: Mapping[str, Any]
    reply: str | None
    source: str
    parent: str | None
    created: float
    started: float | None
    finished: float | None
    interruptions: int
    manifest: str | None
    error_code: str | None
    error_message: str | None
    worker: str | None = None


_COLUMNS = (
    "job_id, seq, state, request, reply, source, parent, created, started, finished, "
    "interruptions, manifest, error_code, error_message, worker"
)


def _row_to_job(row: tuple[Any, ...]) -> Job:
    return Job(
        job_id=row[0], seq=row[1], state=row[2], request=json.loads(row[3]), reply=row[4],
        source=row[5], parent=row[6], created=row[7], started=row[8], finished=row[9],
        interruptions=row[10], manifest=row[11], error_code=row[12], error_message=row[13], worker=row[14],
    )


class JobQueue:
    """A bounded, persistent FIFO of jobs, safe to use from several threads.

    Args:
        path: the SQLite file (created if missing).
        max_active: most jobs queued or running at once; beyond it :meth:`enqueue` refuses.
    """

    def __init__(self, path: Path, *, max_active: int = 100) -> None:
        if max_active < 1:
            raise ValueError(f"max_active must be at least 1, got {max_active}")
        self.path = path
        self.max_active = max_active
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "worker" not in columns:  # a queue made before jobs could run on a remote worker
            self._db.execute("ALTER TABLE jobs ADD COLUMN worker TEXT")

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------------
    def enqueue(
        self,
        job_id: str,
        request: Mapping[str, Any],
        *,
        reply: str | None = None,
        source: str = "",
        parent: str | None = None,
    ) -> Job:
        """Add a job at the end of the queue.

        Raises:
            QueueFullError: ``max_active`` jobs are queued or running already.
            DuplicateJobError: ``job_id`` was used before.
            QueueStorageError: the database could not be written (e.g. the disk is full).
        """
        text = json.dumps(request, separators=(",", ":"))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (active,) = self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')"
                ).fetchone()
                if active >= self.max_active:
                    raise QueueFullError(
                        f"the queue is full ({active} jobs waiting or running); wait for some to "
                        "finish or cancel some"
                    )
                try:
                    self._db.execute(
                        "INSERT INTO jobs (job_id, state, request, reply, source, parent, created) "
                        "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                        (job_id, text, reply, source, parent, time.time()),
                    )
                except sqlite3.IntegrityError:
                    raise DuplicateJobError(
                        f"job id {job_id!r} was used before; job ids are never reused, so name the "
                        "request file differently or leave the id to the bridge"
                    ) from None
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # SQLite has rolled back already on a full disk
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise QueueStorageError(
                    f"the job could not be recorded in the queue ({exc}); free some disk space in the "
                    "project folder and send it again"
                ) from exc
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        job = self.get(job_id)
        if job is None:  # pragma: no cover - the row was just inserted
            raise RuntimeError(f"job {job_id} vanished right after it was queued")
        return job

    def claim_next(self, *, worker: str = "local") -> Job | None:
        """Atomically move the oldest queued job to ``running`` on ``worker`` and return it (None if none)."""
        with self._lock, _storage("the next job could not be started"):
            row = self._db.execute(
                "UPDATE jobs SET state = 'running', started = ?, worker = ? WHERE seq = ("
                "SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1) "
                "AND state = 'queued' RETURNING " + _COLUMNS,
                (time.time(), worker),
            ).fetchone()
        return None if row is None else _row_to_job(row)

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        manifest: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        only_queued: bool = False,
    ) -> bool:
        """Move an active job to a final state. Returns False if it was not active.

        With ``only_queued`` a running job is left alone (used to cancel jobs not yet started).

        Raises:
            ValueError: ``state`` is not a final state.
            QueueStorageError: the database could not be written (e.g. the disk is full).
        """
        if state not in FINAL_STATES:
            raise ValueError(f"state must be one of {FINAL_STATES}, got {state!r}")
        states = "('queued')" if only_queued else "('queued', 'running')"
        with self._lock, _storage(f"job {job_id} could not be recorded as {state}"):
            cur = self._db.execute(
                "UPDATE jobs SET state = ?, finished = ?, manifest = ?, error_code = ?, "
                f"error_message = ? WHERE job_id = ? AND state IN {states}",
                (state, time.time(), manifest, error_code,
                 None if error_message is None else escape_surrogates(error_message), job_id),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: str) -> bool:
        """Put a running job back at its place in the queue (clean shutdown). False if not running.

        Raises:
            QueueStorageError: the database could not be written (e.g. the disk is full).
        """
        with self._lock, _storage(f"job {job_id} could not be put back in the queue"):
            cur = self._db.execute(
                "UPDATE jobs SET state = 'queued', started = NULL WHERE job_id = ? AND state = 'running'",
                (job_id,),
            )
            return cur.rowcount == 1

    def recover(self) -> list[Job]:
        """After a restart: put jobs that were running back in the queue (marked interrupted).

        A job interrupted :data:`MAX_INTERRUPTIONS` times fails instead (it may be what kills
        the server). Returns the jobs that were running.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT " + _COLUMNS + " FROM jobs WHERE state = 'running' ORDER BY seq"
            ).fetchall()
            self._db.execute(
                "UPDATE jobs SET state = 'queued', interruptions = interruptions + 1, "
                "started = NULL WHERE state = 'running'"
            )
            self._db.execute(
                "UPDATE jobs SET state = 'failed', finished = ?, error_code = 'interrupted', "
                "error_message = 'the server stopped ' || interruptions || ' times while this "
                "job ran; it is not retried again' WHERE state = 'queued' AND interruptions >= ?",
                (time.time(), MAX_INTERRUPTIONS),
            )
        return [_row_to_job(r) for r in rows]

    # -- reading ---------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        with self._lock:
            row = self._db.execute("SELECT " + _COLUMNS + " FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _row_to_job(row)

    def jobs(self, state: str) -> list[Job]:
        """Jobs in ``state``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT " + _COLUMNS + " FROM jobs WHERE state = ? ORDER BY seq", (state,)
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def recent_finished(self, limit: int = 20) -> list[Job]:
        """The ``limit`` most recently finished jobs, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT " + _COLUMNS + " FROM jobs WHERE state IN ('done', 'failed', 'cancelled') "
                "ORDER BY finished DESC, seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_row_to_job(r) for r in rows]

    def latest(self, *, with_range: bool | None = None) -> Job | None:
        """The most recently queued job (any state); with ``with_range`` only those with/without a range."""
        with self._lock:
            rows = self._db.execute("SELECT " + _COLUMNS + " FROM jobs ORDER BY seq DESC LIMIT 500").fetchall()
        for row in rows:
            job = _row_to_job(row)
            if with_range is None or (job.request.get("range") is not None) == with_range:
                return job
        return None


def read_job_state(path: Path, job_id: str) -> str | None:
    """The state of ``job_id`` in the queue file at ``path``, read without writing to it.

    For another process (``stembridge cancel``) that must not create or change the queue of
    a bridge that may or may not be running.

    Returns:
        "queued", "running", "done", "failed" or "cancelled"; None when the file does not
        exist, is not a queue, or has no such job.
    """
    if not path.is_file():
        return None
    # A bridge with the queue open keeps its -wal file; without one, "immutable" reads the file
    # as it is and creates no -wal/-shm files beside it (a read-only open in WAL mode would).
    in_use = path.with_name(path.name + "-wal").exists()
    query = "mode=ro" if in_use else "immutable=1"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    except sqlite3.Error:  # not a queue file, or locked past the timeout
        return None
    finally:
        db.close()
    return None if row is None else str(row[0])

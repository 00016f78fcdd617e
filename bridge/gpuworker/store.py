"""The worker's state on disk (``--state-dir``): content-addressed blobs and jobs.

Layout::

    <state>/blobs/<aa>/<id>        a blob: its bytes, named by their SHA-256 (``aa`` = first 2 digits)
    <state>/jobs/<job_id>/task.json  the task as submitted (``POST /v1/jobs`` body)
    <state>/jobs/<job_id>/job.json   the job's state, progress, error, result
    <state>/tmp/                   uploads in progress and folders being created or removed

Nothing half-written is ever visible: a blob is streamed into ``tmp/`` (its SHA-256 computed on
the way) and renamed into place only when complete and verified; a job folder is assembled in
``tmp/`` and renamed into ``jobs/``; ``job.json`` is replaced by rename. So a worker killed at
any moment leaves either the old or the new state, and :meth:`WorkerStore.recover` can queue
again every job that was queued or running.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bridge.job.layout import write_json_atomic
from bridge.remote.wire import is_blob_id
from conditioning.io.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

#: The states of a job; the last three are final.
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = frozenset({"done", "failed", "cancelled"})


class UploadRefused(Exception):
    """An upload that was not stored; ``code`` is "too_large" or "blob_mismatch"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class JobRecord:
    """One job as ``job.json`` holds it.

    Attributes:
        job_id: the bridge's id for it (job id + attempt).
        body_hash: SHA-256 of the canonical task document (same body = same job).
        state: one of :data:`JOB_STATES`.
        accepted: when it was accepted (Unix time, s); jobs run in this order.
        started: when it last started running (Unix time, s), or None.
        finished: when it reached a final state (Unix time, s), or None.
        fraction: progress of the generation stage, 0-1.
        message: the last progress message.
        error: ``{"code", "message"}`` when failed or cancelled, else None.
        result: the result document when done, else None.
        blobs: every blob id the job names (inputs, bases, result stems); kept while the job is.
        runs: how many times it was started (more than 1 after a restart).
    """

    job_id: str
    body_hash: str
    state: str = "queued"
    accepted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    fraction: float = 0.0
    message: str = "queued"
    error: dict[str, str] | None = None
    result: dict[str, Any] | None = None
    blobs: list[str] = field(default_factory=list)
    runs: int = 0

    def to_json(self) -> dict[str, Any]:
        """``job.json``'s content."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobRecord:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: the document is not a job record.
        """
        try:
            record = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise ValueError(f"not a job record ({exc})") from None
        if record.state not in JOB_STATES or not isinstance(record.job_id, str):
            raise ValueError(f"job record with unknown state {record.state!r}")
        return record


class BlobUpload:
    """One blob being streamed in: bytes go to a temporary file while their SHA-256 is computed.

    Use :meth:`write` for each chunk, then :meth:`commit`; :meth:`abort` (also called by a
    failed write or commit) removes the temporary file, so a refused upload leaves nothing.
    """

    def __init__(self, store: WorkerStore, blob: str, max_bytes: int) -> None:
        self._store = store
        self._blob = blob
        self._max = max_bytes
        self._hash = hashlib.sha256()
        self._size = 0
        self._tmp = store.tmp_dir / f"upload-{blob[:16]}-{secrets.token_hex(6)}"
        self._fh: Any = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._size

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``.

        Raises:
            UploadRefused: "too_large" once the blob passes the upload bound (the file is removed).
        """
        self._size += len(chunk)
        if self._size > self._max:
            self.abort()
            raise UploadRefused(
                "too_large",
                f"the blob is larger than this worker's upload bound of {self._max} bytes; "
                "start the worker with a larger --max-upload-mb",
            )
        self._hash.update(chunk)
        self._fh.write(chunk)

    def commit(self) -> bool:
        """Verify the bytes and move them into place; True when stored, False when already there.

        Raises:
            UploadRefused: "blob_mismatch" when the bytes' SHA-256 is not the blob id (removed).
        """
        digest = self._hash.hexdigest()
        if digest != self._blob:
            self.abort()
            raise UploadRefused(
                "blob_mismatch",
                f"the uploaded bytes have SHA-256 {digest}, not {self._blob}; upload the file under its own hash",
            )
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        target = self._store.blob_path(self._blob)
        if target.exists():
            self._tmp.unlink(missing_ok=True)
            os.utime(target)  # a fresh use: kept another keep_hours
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, target)
        return True

    def abort(self) -> None:
        """Drop what was received."""
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


class WorkerStore:
    """Blobs and jobs under one state folder (created when missing).

    Args:
        root: the state folder (``--state-dir``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = root / "blobs"
        self.jobs_dir = root / "jobs"
        self.tmp_dir = root / "tmp"
        for folder in (self.blobs_dir, self.jobs_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # -- blobs ------------------------------------------------------------------------------------
    def blob_path(self, blob: str) -> Path:
        """Where blob ``blob`` lives (it may not exist).

        Raises:
            ValueError: ``blob`` is not 64 lowercase hex digits.
        """
        if not is_blob_id(blob):
            raise ValueError(f"{blob!r} is not a blob id (64 lowercase hex digits)")
        return self.blobs_dir / blob[:2] / blob

    def has_blob(self, blob: str) -> bool:
        """True when blob ``blob`` is stored."""
        return self.blob_path(blob).is_file()

    def touch_blob(self, blob: str) -> bool:
        """Mark blob ``blob`` as just used (kept another ``keep_hours``); False when it is not stored."""
        try:
            os.utime(self.blob_path(blob))
        except FileNotFoundError:
            return False
        return True

    def missing_blobs(self, blobs: Iterable[str]) -> list[str]:
        """The ids of ``blobs`` not stored here, in order, each once (the others count as just used)."""
        return [b for b in dict.fromkeys(blobs) if not self.touch_blob(b)]

    def begin_upload(self, blob: str, max_bytes: int) -> BlobUpload:
        """Start streaming blob ``blob`` in (at most ``max_bytes`` bytes)."""
        self.blob_path(blob)  # validates the id
        return BlobUpload(self, blob, max_bytes)

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (a result stem) and return its blob id."""
        blob = hashlib.sha256(data).hexdigest()
        target = self.blob_path(blob)
        if target.exists():
            os.utime(target)
            return blob
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, data, overwrite=True)  # same bytes as any rival writer's
        return blob

    def read_blob(self, blob: str) -> bytes:
        """The bytes of blob ``blob``.

        Raises:
            FileNotFoundError: it is not stored.
        """
        return self.blob_path(blob).read_bytes()

    # -- jobs -------------------------------------------------------------------------------------
    def _job_dir(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or "\\" in job_id or set(job_id) == {"."}:
            raise ValueError(f"{job_id!r} is not a job id")
        return self.jobs_dir / job_id

    def create_job(self, record: JobRecord, task: Mapping[str, Any]) -> bool:
        """Store a new job (its task and record) at once; False when ``record.job_id`` exists already."""
        final = self._job_dir(record.job_id)
        if final.exists():
            return False
        staging = self.tmp_dir / f"job-{secrets.token_hex(8)}"
        staging.mkdir()
        try:
            write_json_atomic(staging / "task.json", task)
            write_json_atomic(staging / "job.json", record.to_json())
            try:
                os.rename(staging, final)
            except OSError:  # another submit of the same id won the race
                return False
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True

    def save_job(self, record: JobRecord) -> None:
        """Replace ``job.json`` of an existing job."""
        folder = self._job_dir(record.job_id)
        if not folder.is_dir():  # removed by the clean-up: never make a job folder that holds only a record
            raise FileNotFoundError(f"job {record.job_id} is no longer stored")
        write_json_atomic(folder / "job.json", record.to_json(), overwrite=True)

    def load_job(self, job_id: str) -> JobRecord | None:
        """The record of ``job_id``, or None when there is no such job (or it is unreadable)."""
        try:
            path = self._job_dir(job_id) / "job.json"
        except ValueError:
            return None
        try:
            return JobRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("job %s has an unreadable job.json (%s); ignoring it", job_id, exc)
            return None

    def load_task(self, job_id: str) -> dict[str, Any]:
        """The task document of ``job_id`` as submitted.

        Raises:
            FileNotFoundError: no such job.
        """
        data = json.loads((self._job_dir(job_id) / "task.json").read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"task.json of {job_id} is not a JSON object")
        return data

    def jobs(self) -> list[JobRecord]:
        """Every readable job, oldest accepted first."""
        records = []
        for folder in self.jobs_dir.iterdir():
            if folder.is_dir():
                record = self.load_job(folder.name)
                if record is not None:
                    records.append(record)
        return sorted(records, key=lambda r: (r.accepted, r.job_id))

    def recover(self) -> list[JobRecord]:
        """Prepare for a start: clear ``tmp/`` and queue again every job that was queued or running.

        Returns:
            the jobs to run, oldest accepted first.
        """
        for entry in self.tmp_dir.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        todo = []
        for record in self.jobs():
            if record.state == "running":
                log.info("job %s was running when the worker stopped; it runs again", record.job_id)
                record.state, record.fraction, record.message = "queued", 0.0, "queued again after a worker restart"
                self.save_job(record)
            if record.state == "queued":
                todo.append(record)
        return todo

    def remove_job(self, job_id: str) -> None:
        """Remove a job's folder (renamed away first, so no half-removed job is ever seen)."""
        gone = self.tmp_dir / f"gone-{secrets.token_hex(8)}"
        try:
            os.rename(self._job_dir(job_id), gone)
        except FileNotFoundError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def cleanup(self, keep_hours: float, *, now: float | None = None) -> tuple[int, int]:
        """Remove finished jobs older than ``keep_hours`` and old blobs no kept job names.

        A job's age counts from when it finished; a blob's from when it was last stored or
        uploaded (its modification time), so a blob uploaded for a job still to be submitted
        stays. Queued and running jobs are always kept.

        Returns:
            (jobs removed, blobs removed).
        """
        now = time.time() if now is None else now
        limit = now - keep_hours * 3600.0
        kept: set[str] = set()
        removed_jobs = 0
        for record in self.jobs():
            if record.state in FINAL_STATES and (record.finished or record.accepted) < limit:
                self.remove_job(record.job_id)
                removed_jobs += 1
            else:
                kept.update(record.blobs)
        removed_blobs = 0
        for shard in self.blobs_dir.iterdir():
            if not shard.is_dir():
                continue
            for path in shard.iterdir():
                try:
                    if path.name not in kept and path.stat().st_mtime < limit:
                        path.unlink()
                        removed_blobs += 1
                except FileNotFoundError:
                    continue
        if removed_jobs or removed_blobs:
            log.info("removed %d jobs and %d blobs older than %g h", removed_jobs, removed_blobs, keep_hours)
        return removed_jobs, removed_blobs

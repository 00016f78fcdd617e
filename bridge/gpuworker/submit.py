"""Checking a submitted task (``POST /v1/jobs``) and turning an accepted one into a GenerationTask.

:func:`read_submission` checks the task document's own shape (version, job id, file names,
blob ids, seed); :func:`check_request` rebuilds the project folder from the blobs in a scratch
folder and parses the request there, so a malformed request or an unknown model is answered
at submit time with the bridge's own error code, not after the job waited in the queue.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from bridge.gpuworker.store import WorkerStore
from bridge.gpuworker.task import GenerationTask
from bridge.job.request import MAX_SEED, RequestError, parse_request
from bridge.remote.wire import WIRE_VERSION, WireError, is_blob_id, safe_relative_path

#: A job id chosen by the bridge: its own job id and the attempt.
JOB_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class Refused(Exception):
    """A call answered with an error.

    Attributes:
        status: the HTTP status.
        code: the error code (the bridge's, or the worker's own).
        message: what is wrong and how to fix it.
        extra: more fields of the error body (``missing`` for "missing_blobs").
    """

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class Submission:
    """A task document whose own shape is valid.

    Attributes:
        job_id: the bridge's id for the job.
        doc: the task document as decoded.
        body_hash: SHA-256 of its canonical JSON (the same task sent twice has the same hash).
        files: relative path -> blob id of every input file.
        blobs: every blob the task names (inputs, then the bases' audio), each once.
    """

    job_id: str
    doc: dict[str, Any]
    body_hash: str
    files: dict[str, str]
    blobs: list[str]


def is_worker_job_id(text: object) -> TypeGuard[str]:
    """True for 1-100 characters of ``A-Z a-z 0-9 . _ -`` that are not only dots."""
    return isinstance(text, str) and JOB_ID.match(text) is not None and set(text) != {"."}


def _bases_blobs(bases: Any) -> list[str]:
    """The audio blob ids a bases document names (see ``bridge.remote.wire.bases_to_json``)."""
    if bases is None:
        return []
    if not isinstance(bases, Mapping) or not isinstance(bases.get("takes", {}), Mapping):
        raise Refused(400, "schema", "bases must be null or a JSON object with a 'takes' object")
    found: list[str] = []
    for name, entry in dict(bases.get("takes") or {}).items():
        take = entry.get("take") if isinstance(entry, Mapping) else None
        stems = take.get("stems") if isinstance(take, Mapping) else None
        if not isinstance(stems, Mapping):
            raise Refused(400, "schema", f"bases.takes[{name!r}] must be {{'job_id', 'take': {{'stems': ...}}}}")
        for stem, ref in stems.items():
            if not is_blob_id(ref):
                raise Refused(400, "schema", f"bases.takes[{name!r}] stem {stem!r} must name a blob id")
            found.append(ref)
    prev = bases.get("previous_mix")
    if prev is not None:
        if not is_blob_id(prev):
            raise Refused(400, "schema", "bases.previous_mix must be a blob id or null")
        found.append(prev)
    return found


def read_submission(body: bytes) -> Submission:
    """Check a ``POST /v1/jobs`` body's own shape.

    Raises:
        Refused: 400 with code "schema" (not JSON, wrong types), "version", or "path" (a file
            name that is absolute, has ``..`` or a backslash).
    """
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, "schema", f"the task is not valid JSON ({exc}); send a JSON object") from None
    except RecursionError:
        raise Refused(400, "schema", "the task's JSON is nested too deeply to be a task") from None
    except ValueError:  # Python refuses integers of over 4300 digits
        raise Refused(400, "schema", "the task holds a number with thousands of digits; no field takes one") from None
    if not isinstance(doc, dict):
        raise Refused(400, "schema", "the task must be a JSON object (see docs/worker-api.md)")
    version = doc.get("version")
    if isinstance(version, bool) or version != WIRE_VERSION:
        raise Refused(400, "version", f"task version {json.dumps(version)[:40]} is not supported; "
                                      f'send "version": {WIRE_VERSION}')
    job_id = doc.get("job_id")
    if not is_worker_job_id(job_id):
        raise Refused(400, "schema", f"job_id {json.dumps(job_id)[:60]} must be 1-100 characters of "
                                     "A-Z a-z 0-9 . _ - (e.g. 20261122-101500-ab12cd.1)")
    if not isinstance(doc.get("request"), dict):
        raise Refused(400, "schema", "the task needs a 'request' object (a portable request v1)")
    seed = doc.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise Refused(400, "schema", f"seed must be an integer 0-{MAX_SEED} (the bridge draws one when the request has none)")
    files = doc.get("files", {})
    if not isinstance(files, dict):
        raise Refused(400, "schema", "files must map each input path to its blob id")
    for rel, ref in files.items():
        try:
            safe_relative_path(rel)
        except WireError as exc:
            raise Refused(400, exc.code, str(exc)) from None
        if not is_blob_id(ref):
            raise Refused(400, "schema", f"files[{rel!r}] must be a blob id (the SHA-256 of the file, 64 hex digits)")
    blobs = list(dict.fromkeys([*files.values(), *_bases_blobs(doc.get("bases"))]))
    try:
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(400, "schema", "the task's text holds half of a UTF-16 surrogate pair (a \\ud800-style "
                                     "escape on its own), which is not a character; send UTF-8 text") from None
    return Submission(job_id=job_id, doc=doc, body_hash=hashlib.sha256(canonical).hexdigest(),
                      files=dict(files), blobs=blobs)


def _place_inputs(root: Path, files: Mapping[str, str], store: WorkerStore) -> None:
    """Put every input blob at its file name under ``root`` (hard links where the disk allows)."""
    for rel, ref in files.items():
        dest = root / safe_relative_path(rel)
        if not dest.resolve().is_relative_to(root.resolve()):
            raise Refused(400, "path", f"file name {rel!r} would leave the job folder")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(store.blob_path(ref), dest)
            except OSError:
                shutil.copyfile(store.blob_path(ref), dest)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise Refused(400, "path", f"file name {rel!r} clashes with another file of the task") from None


def check_request(submission: Submission, store: WorkerStore) -> None:
    """Parse the task's request in a scratch project folder built from its blobs (then removed).

    Call it once every blob of ``submission.files`` is stored.

    Raises:
        Refused: 400 with the request's own code ("schema", "path", "unknown_model", …).
    """
    scratch = store.tmp_dir / f"check-{secrets.token_hex(8)}"
    root = scratch / "project"
    root.mkdir(parents=True)
    try:
        _place_inputs(root, submission.files, store)
        request = submission.doc["request"]
        raw = {**request, "project": {**dict(request.get("project") or {}), "dir": str(root)}}
        try:
            parse_request(raw)
        except (RequestError, WireError) as exc:
            raise Refused(400, exc.code, str(exc)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def build_task(store: WorkerStore, job_id: str) -> GenerationTask:
    """The :class:`GenerationTask` of an accepted job, its input and base bytes read from the blobs.

    Raises:
        FileNotFoundError: the job or one of its blobs is gone.
    """
    doc = store.load_task(job_id)
    files = {rel: store.read_blob(ref) for rel, ref in dict(doc.get("files") or {}).items()}
    bases = doc.get("bases")
    blobs = {ref: store.read_blob(ref) for ref in _bases_blobs(bases)}
    return GenerationTask(job_id=job_id, request=doc["request"], files=files, seed=int(doc["seed"]),
                          bases=bases, blobs=blobs)

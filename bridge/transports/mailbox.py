"""The file mailbox: requests and control files dropped in ``<project>/stembridge/inbox/``.

A writer writes ``name.json.tmp`` and renames it to ``name.json``; only ``*.json`` files whose
names do not start with a dot are read, so a partial file is never seen. Each file is handled
once and then moved, never deleted:

- a request that is accepted goes to ``inbox/done/``; if its job later fails or is cancelled it
  moves on to ``inbox/failed/`` with ``<name>.error.txt`` beside it;
- the ``.error.txt`` is written in full (temp file + rename) before the request moves, so a
  script that sees either file can read the whole error at once;
- a file that is rejected goes to ``inbox/failed/`` with ``<name>.error.txt`` at once; a symbolic
  link is always rejected (the link moves, never what it points to), so nothing outside the
  project is read through the inbox.

A request file named like a job id (``20261122-101500-ab12cd.json``, as ``new_job_id`` makes)
gets that job id, so a script knows which outbox manifest to wait for; any other name gets a
fresh id (see status.json's ``source``). Control files (REAPER's Lua scripts have no sockets)::

    {"version": 1, "action": "cancel", "job_id": "..."}
    {"version": 1, "action": "variation", "job_id": "..."}   # new job id as for requests
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from bridge.job.layout import NEW_JOB_ID, ProjectLayout
from bridge.job.request import MAX_REQUEST_BYTES, RequestError, decode_request
from bridge.job.text import escape_surrogates
from bridge.server.queue import Job
from bridge.server.replies import Origin
from bridge.server.service import JobService, Outcome
from conditioning.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

#: Most files handled in one poll (the rest wait for the next one).
MAX_FILES_PER_POLL = 50
_CONTROL_KEYS = {"version", "action", "job_id"}


def _error_path(dest: Path) -> Path:
    """The ``<name>.error.txt`` beside the request file ``dest`` (``<name>.json``)."""
    return dest.with_name(dest.name[: -len(".json")] + ".error.txt")


def _unique(folder: Path, name: str, *, with_error: bool = False) -> Path:
    """``folder/name``, or ``folder/<stem>-N<suffix>`` if that exists.

    With ``with_error`` the name's ``.error.txt`` must be free too (a note is never overwritten).
    """
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(2, 10_000):
        if not target.exists() and not (with_error and _error_path(target).exists()):
            return target
        target = folder / f"{stem}-{n}{suffix}"
    raise FileExistsError(f"too many files named like {name} in {folder}")


class Mailbox:
    """Picks up inbox files and hands them to the job service.

    Args:
        layout: the project's folders (``ensure()``-d).
        service: validates and queues (the same service OSC and MIDI use).
    """

    def __init__(self, layout: ProjectLayout, service: JobService) -> None:
        self._layout = layout
        self._service = service
        self.done = layout.inbox / "done"
        self.failed = layout.inbox / "failed"

    def pending(self) -> list[Path]:
        """Ready request files, oldest first (by modification time, then name)."""
        files = []
        try:
            entries = list(os.scandir(self._layout.inbox))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue
            # a link is picked up (and rejected in _handle), never followed: it may point out of the project
            if not (entry.is_symlink() or entry.is_file(follow_symlinks=False)):
                continue
            try:
                files.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name, Path(entry.path)))
            except FileNotFoundError:
                continue
        return [p for _, _, p in sorted(files)][:MAX_FILES_PER_POLL]

    def poll_once(self) -> int:
        """Handle every ready file; returns how many were handled."""
        handled = 0
        for path in self.pending():
            try:
                self._handle(path)
            except OSError as exc:  # the file vanished or cannot be moved: log, retry next poll
                log.warning("could not handle inbox file %s: %s", path.name, exc)
                continue
            # The housekeeping thread's boundary: a file that trips an unexpected error must not stop
            # the mailbox. The traceback is logged and the file moves to failed/ with the error.
            except Exception as exc:
                log.exception("internal error while handling inbox file %s", path.name)
                self._reject(path, "internal", f"the bridge failed on this file: {type(exc).__name__}: {exc}")
            handled += 1
        return handled

    def _handle(self, path: Path) -> None:
        name = path.name
        stem = name[: -len(".json")]
        given_id = stem if NEW_JOB_ID.match(stem) else None
        done_dest = _unique(self.done, name)  # only this thread moves files into done/
        outcome = self._read_and_dispatch(path, given_id, f"inbox/done/{done_dest.name}")
        if outcome.ok:
            os.replace(path, done_dest)
            log.info("inbox %s -> done/%s (job %s)", name, done_dest.name, outcome.job_id)
        else:
            self._reject(path, outcome.code, outcome.message, outcome.job_id)

    def _reject(self, path: Path, code: str, message: str, job_id: str = "") -> None:
        """Move ``path`` to ``failed/`` with ``<name>.error.txt`` beside it."""
        try:
            self._move_to_failed(path, code, message, job_id)
        except OSError as exc:  # stays in the inbox; tried again at the next poll
            log.warning("could not move %s to inbox/failed: %s", path.name, exc)
            return
        log.warning("inbox %s rejected: %s: %s", path.name, code, message)

    def _move_to_failed(self, path: Path, code: str, message: str, job_id: str) -> Path:
        """Write ``<name>.error.txt`` in ``failed/`` in full, then move ``path`` beside it.

        A DAW script that sees the request in ``failed/`` (or its ``.error.txt``) can read the whole
        error at once. If the move fails, the note is removed again and the request stays put.

        Raises:
            OSError: the note could not be written or the request not moved.
        """
        dest = _unique(self.failed, path.name, with_error=True)  # only this thread writes into failed/
        err = _error_path(dest)
        err.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(err, escape_surrogates(f"code: {code}\njob_id: {job_id}\nmessage: {message}\n"))
        try:
            os.replace(path, dest)
        except OSError:
            err.unlink(missing_ok=True)
            raise
        return dest

    def _read_and_dispatch(self, path: Path, given_id: str | None, source: str) -> Outcome:
        origin = Origin(source=source, reply=None, trusted=True)
        if path.is_symlink():
            return Outcome(False, "", "path", "inbox files must be regular files, not links; copy the request into the inbox")
        size = path.stat().st_size
        if size > MAX_REQUEST_BYTES:
            return Outcome(False, "", "limit", f"the file is larger than {MAX_REQUEST_BYTES // 1024 // 1024} MB")
        raw = path.read_bytes()
        try:
            obj = decode_request(raw, what="the file")
        except RequestError as exc:
            return Outcome(False, "", exc.code, str(exc))
        if "action" in obj:
            return self._control(obj, origin, given_id)
        return self._service.generate(obj, origin, job_id=given_id)

    def _control(self, obj: dict[str, Any], origin: Origin, given_id: str | None) -> Outcome:
        unknown = sorted(set(obj) - _CONTROL_KEYS)
        if unknown:
            return Outcome(False, "", "schema", f"control file has unknown key(s) {unknown}; allowed: version, action, job_id")
        if obj.get("version") != 1:
            return Outcome(False, "", "version", 'control file needs "version": 1')
        job_id = obj.get("job_id")
        if not isinstance(job_id, str):
            return Outcome(False, "", "schema", 'control file needs "job_id": "<the job id>"')
        action = obj.get("action")
        if action == "cancel":
            return self._service.cancel(job_id, origin)
        if action == "variation":
            return self._service.variation(job_id, origin, new_job_id=given_id)
        return Outcome(False, job_id, "schema", f'unknown action {action!r}; use "cancel" or "variation"')

    def job_finished(self, job: Job) -> None:
        """Move a failed/cancelled mailbox job's file from ``done/`` to ``failed/`` with its error."""
        prefix = "inbox/done/"
        if job.state == "done" or not job.source.startswith(prefix):
            return
        path = self.done / job.source[len(prefix):]
        if not path.is_file():
            return
        try:
            self._move_to_failed(path, job.error_code or job.state, job.error_message or "", job.job_id)
        except OSError as exc:
            log.warning("could not move %s to inbox/failed: %s", path.name, exc)

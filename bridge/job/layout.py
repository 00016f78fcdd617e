"""Where stembridge keeps its files inside a DAW project, and how they are written safely.

```
<project>/stembridge/
    inbox/            requests dropped by DAW scripts (name.json.tmp, then renamed to name.json)
    inbox/done/       processed requests (never deleted)
    inbox/failed/     rejected requests, each with <name>.error.txt beside it
    outbox/           manifests <job_id>.json and status.json
    renders/<job_id>/ stem WAVs, arrangement MIDI and REAPER project of one job
    stembridge.log    the server's log
    queue.sqlite3     the persistent job queue
```
Nothing is ever overwritten: every job writes a new folder, every take a new file name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TAKE_FILE = re.compile(r"^(?P<slug>.+)_(?P<stem>[a-z][a-z0-9_-]*)_take(?P<take>\d+)\.wav$")


@dataclass(frozen=True)
class ProjectLayout:
    """The stembridge folders of one DAW project (``project_dir`` is absolute)."""

    project_dir: Path

    @property
    def root(self) -> Path:
        """``<project>/stembridge``."""
        return self.project_dir / "stembridge"

    @property
    def inbox(self) -> Path:
        """Requests waiting to be picked up."""
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        """Manifests and status.json."""
        return self.root / "outbox"

    @property
    def renders(self) -> Path:
        """One sub-folder of results per job."""
        return self.root / "renders"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.root / "stembridge.log"

    @property
    def queue_db(self) -> Path:
        """The SQLite job queue."""
        return self.root / "queue.sqlite3"

    def ensure(self) -> ProjectLayout:
        """Create the folders that do not exist yet; returns self."""
        for d in (self.inbox, self.inbox / "done", self.inbox / "failed", self.outbox, self.renders):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def job_dir(self, job_id: str) -> Path:
        """``renders/<job_id>``."""
        return self.renders / job_id

    def manifest_path(self, job_id: str) -> Path:
        """``outbox/<job_id>.json``."""
        return self.outbox / f"{job_id}.json"

    def relative(self, path: Path) -> str:
        """``path`` relative to the project folder, with forward slashes (as in manifests)."""
        return path.resolve().relative_to(self.project_dir.resolve()).as_posix()

    def next_take(self, section_slug: str) -> int:
        """The next unused take number for a section, over every job's renders (1-based)."""
        highest = 0
        if self.renders.is_dir():
            for wav in self.renders.glob(f"*/{section_slug}_*_take*.wav"):
                m = _TAKE_FILE.match(wav.name)
                if m and m.group("slug") == section_slug:
                    highest = max(highest, int(m.group("take")))
        return highest + 1


_last_job_id = ""
_job_id_lock = threading.Lock()


def new_job_id() -> str:
    """A unique job id ``YYYYmmdd-HHMMSS-mmmrrr`` that sorts in creation order.

    ``mmm`` is the millisecond in hex and ``rrr`` random hex; ids made by one process are
    strictly increasing, so "the newest manifest" is the last by name even within one second.
    """
    global _last_job_id
    with _job_id_lock:
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        job_id = f"{stamp}-{int(now % 1 * 1000):03x}{secrets.randbelow(0x1000):03x}"
        if job_id <= _last_job_id:  # same millisecond (or a clock step back): count on
            job_id = f"{_last_job_id[:-6]}{int(_last_job_id[-6:], 16) + 1:06x}"
        _last_job_id = job_id
        return job_id


def write_json_atomic(path: Path, data: Any, *, overwrite: bool = False) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and an atomic rename.

    Args:
        path: destination.
        data: JSON-serialisable value.
        overwrite: allow replacing an existing file (only for status.json-like files).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists; stembridge never overwrites results")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:  # a full disk (or a bad value) must not leave a half-written temp file behind
        tmp.unlink(missing_ok=True)
        raise
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
        finally:
            tmp.unlink()
    return path

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
    server.lock       held (flock) by the running bridge, with its pid
```
Nothing is ever overwritten: every job writes a new folder, every take a new file name.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conditioning.io.atomic import write_text_atomic

#: Every job id the bridge accepts (OSC, mailbox, CLI, ``base_job``): letters, digits, - and _.
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The ids :func:`new_job_id` makes (``YYYYmmdd-HHMMSS-`` and six hex digits), a subset of
#: :data:`JOB_ID`; a mailbox file named like this keeps its name as the job id.
NEW_JOB_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_TAKE_FILE = re.compile(r"^(?P<slug>.+)_(?P<stem>[a-z][a-z0-9_-]*)_take(?P<take>\d+)\.wav$")


def is_job_id(text: object) -> bool:
    """Whether ``text`` is a job id the bridge accepts (see :data:`JOB_ID`)."""
    return isinstance(text, str) and JOB_ID.match(text) is not None


def take_file_name(section_slug: str, stem: str, take: int) -> str:
    """The WAV name of one stem of one take: ``<section-slug>_<stem>_take<N>.wav``."""
    return f"{section_slug}_{stem}_take{take}.wav"


@dataclass(frozen=True)
class TakeFile:
    """The parts of a take file name (see :func:`take_file_name`)."""

    section_slug: str
    stem: str
    take: int


def parse_take_file_name(name: str) -> TakeFile | None:
    """The section slug, stem and take number of a take file name, or None for other names."""
    m = _TAKE_FILE.match(name)
    if m is None:
        return None
    return TakeFile(m.group("slug"), m.group("stem"), int(m.group("take")))


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

    @property
    def lock_file(self) -> Path:
        """``server.lock``: a running bridge holds an exclusive flock on it and writes its pid in it."""
        return self.root / "server.lock"

    def ensure(self) -> ProjectLayout:
        """Create every folder that does not exist yet (the server does, at its start); returns self.

        A single job does not need this: it makes only the folders it writes into.
        """
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
                parsed = parse_take_file_name(wav.name)
                if parsed is not None and parsed.section_slug == section_slug:
                    highest = max(highest, parsed.take)
        return highest + 1


def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents.

    Returns:
        The folders this call created, deepest first (empty when ``folder`` existed), for
        :func:`remove_empty_dirs` to undo.
    """
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty_dirs(folders: list[Path]) -> None:
    """Remove each folder of ``folders`` (deepest first) that is empty; others are kept."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another job wrote into it) or already gone: keep it
            continue


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
    """Write ``data`` as JSON to ``path`` whole (:mod:`conditioning.io.atomic`), making its folder.

    Args:
        path: destination.
        data: JSON-serialisable value.
        overwrite: allow replacing an existing file (only for status.json-like files).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    text = json.dumps(data, indent=2) + "\n"  # a bad value fails here, before any file exists
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text, overwrite=overwrite)

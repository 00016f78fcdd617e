"""Publish files whole: every file stembridge writes appears complete or not at all.

A file is written under a hidden temporary name beside its target (``.name.<pid>.<hex>.tmp``:
the same folder, so the final rename never crosses a file system; dot-prefixed and ending in
``.tmp``, so DAW file browsers, the mailbox watcher and globs for ``*.wav`` or ``*.json`` skip
it), flushed to disk, and only then given its real name:

* a **new** file (the default) is published with a hard link, which fails if the name was
  taken meanwhile, so a file a musician (or another writer) made is never replaced, not even
  by a race between the existence check and the rename. File systems without hard links
  (exFAT or FAT32 USB drives, some network shares) fall back to a rename after a last check;
* ``overwrite=True`` (the bridge's own state files: a job record, a MIDI mapping, a resume
  checkpoint) replaces the target in one rename, so readers see the old or the new file.

On any error, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Permissions of published files: read for all (a DAW or a colleague must open them), written
#: by their owner.
FILE_MODE = 0o644

#: ``os.link`` errors that mean "this file system has no hard links", not "the name is taken".
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS})


def temp_path_for(path: Path) -> Path:
    """A fresh hidden temporary name beside ``path`` (nothing is created)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it is synced and published as ``path``.

    The body writes the whole file to the yielded path (with any writer: ``soundfile``, ``mido``,
    ``zipfile``, ``torch.save``). Its folder must exist.

    Args:
        path: the file to publish.
        overwrite: replace an existing ``path`` (one rename) instead of refusing.

    Raises:
        FileExistsError: ``path`` exists (checked before the body runs and again when
            publishing) and ``overwrite`` is False; it is left untouched.
        OSError: the folder is missing or unwritable, or the disk is full; nothing is left behind.
    """
    target = Path(path)
    if not overwrite and target.exists():
        raise _exists(target)
    tmp = temp_path_for(target)
    try:
        yield tmp
        _sync(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            _publish_new(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` whole (see :func:`atomic_output` for ``overwrite`` and errors)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` whole (see :func:`atomic_output` for ``overwrite`` and errors)."""
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def _sync(tmp: Path) -> None:
    """Give the written file its published permissions and flush it to the disk."""
    os.chmod(tmp, FILE_MODE)
    fd = os.open(tmp, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless that name is taken."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if target.exists():  # no hard links here: the last check, then a rename
            raise _exists(target) from None
        os.replace(tmp, target)


def _exists(target: Path) -> FileExistsError:
    return FileExistsError(
        f"{target} already exists; stembridge never overwrites a file - choose a new name or move that file away"
    )


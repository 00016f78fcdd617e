"""Job ids sort in creation order (manifests are found "newest first" by name); atomic JSON writes."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from bridge.job.layout import new_job_id, write_json_atomic


def test_job_ids_are_strictly_increasing_and_keep_their_shape() -> None:
    ids = [new_job_id() for _ in range(2000)]  # many share a second and a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)


def test_an_atomic_write_that_fails_on_a_full_disk_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_json_atomic(tmp_path / "status.json", {"queued": []}, overwrite=True)
    assert list(tmp_path.iterdir()) == []

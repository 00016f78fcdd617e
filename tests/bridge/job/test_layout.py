"""Job ids sort in creation order (manifests are found "newest first" by name); take file names; atomic JSON writes."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest

from bridge.job.layout import (
    JOB_ID,
    NEW_JOB_ID,
    ProjectLayout,
    TakeFile,
    is_job_id,
    new_job_id,
    parse_take_file_name,
    take_file_name,
    write_json_atomic,
)


def test_job_ids_are_strictly_increasing_and_keep_their_shape() -> None:
    ids = [new_job_id() for _ in range(2000)]  # many share a second and a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)
    assert all(NEW_JOB_ID.match(i) and JOB_ID.match(i) and is_job_id(i) for i in ids[:50])


def test_job_id_pattern() -> None:
    assert is_job_id("j1") and is_job_id("take_2-b") and is_job_id("a" * 64)
    for bad in ("", "a" * 65, "../x", "a b", "x.json", None, 7):
        assert not is_job_id(bad), bad
    assert not NEW_JOB_ID.match("verse")  # a mailbox file named "verse.json" gets a fresh id


def test_take_file_names_round_trip_and_number_takes(tmp_path: Path) -> None:
    name = take_file_name("chorus-1", "drums", 3)
    assert name == "chorus-1_drums_take3.wav"
    assert parse_take_file_name(name) == TakeFile("chorus-1", "drums", 3)
    assert parse_take_file_name("chorus-1_drums_take3.mid") is None
    layout = ProjectLayout(tmp_path).ensure()
    assert layout.next_take("chorus-1") == 1
    for job, take in (("a", 1), ("b", 4)):
        (layout.job_dir(job)).mkdir()
        (layout.job_dir(job) / take_file_name("chorus-1", "bass", take)).write_bytes(b"")
    (layout.job_dir("b") / take_file_name("chorus-10", "bass", 9)).write_bytes(b"")  # another section
    assert layout.next_take("chorus-1") == 5


def test_an_atomic_write_that_fails_on_a_full_disk_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_json_atomic(tmp_path / "status.json", {"queued": []}, overwrite=True)
    assert list(tmp_path.iterdir()) == []

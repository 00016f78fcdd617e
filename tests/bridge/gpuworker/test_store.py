"""The worker's state folder: verified blobs, atomic jobs, recovery after a restart, cleanup by age."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from bridge.gpuworker.store import JobRecord, UploadRefused, WorkerStore


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _put(store: WorkerStore, data: bytes, *, age_h: float = 0.0) -> str:
    ref = store.put_bytes(data)
    if age_h:
        then = time.time() - age_h * 3600
        os.utime(store.blob_path(ref), (then, then))
    return ref


def test_an_upload_is_streamed_verified_and_renamed_into_place(tmp_path: Path) -> None:
    store = WorkerStore(tmp_path)
    data = b"0123456789" * 1000
    ref = hashlib.sha256(data).hexdigest()
    upload = store.begin_upload(ref, max_bytes=len(data))
    for i in range(0, len(data), 999):
        upload.write(data[i:i + 999])
        assert not store.has_blob(ref), "a blob is visible only once complete"
    assert upload.commit() is True
    assert store.read_blob(ref) == data and store.blob_path(ref).parent.name == ref[:2]
    again = store.begin_upload(ref, max_bytes=len(data))
    again.write(data)
    assert again.commit() is False
    assert _files(store.tmp_dir) == []


def test_an_upload_over_the_bound_or_with_the_wrong_hash_leaves_nothing(tmp_path: Path) -> None:
    store = WorkerStore(tmp_path)
    ref = hashlib.sha256(b"x" * 11).hexdigest()
    upload = store.begin_upload(ref, max_bytes=10)
    upload.write(b"x" * 6)
    with pytest.raises(UploadRefused) as info:
        upload.write(b"x" * 5)
    assert info.value.code == "too_large"
    wrong = store.begin_upload(ref, max_bytes=100)
    wrong.write(b"y" * 11)
    with pytest.raises(UploadRefused) as info:
        wrong.commit()
    assert info.value.code == "blob_mismatch"
    assert _files(tmp_path) == []


def test_a_bad_blob_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a blob id"):
        WorkerStore(tmp_path).blob_path("../../etc/passwd")


def test_a_job_appears_whole_or_not_at_all_and_only_once(tmp_path: Path) -> None:
    store = WorkerStore(tmp_path)
    assert store.create_job(JobRecord(job_id="j.1", body_hash="a"), {"version": 1}) is True
    assert store.create_job(JobRecord(job_id="j.1", body_hash="b"), {"version": 1}) is False
    record = store.load_job("j.1")
    assert record is not None and record.body_hash == "a" and record.state == "queued"
    assert store.load_task("j.1") == {"version": 1}
    assert sorted(p.name for p in (store.jobs_dir / "j.1").iterdir()) == ["job.json", "task.json"]
    assert list(store.tmp_dir.iterdir()) == []
    assert store.load_job("..") is None and store.load_job("nope") is None


def test_recovery_queues_again_what_was_queued_or_running_in_order(tmp_path: Path) -> None:
    store = WorkerStore(tmp_path)
    for i, state in enumerate(["done", "running", "queued", "failed"]):
        store.create_job(JobRecord(job_id=f"j.{i}", body_hash="h", state=state, accepted=1000.0 + i), {})
    (store.tmp_dir / "upload-leftover").write_bytes(b"partial")
    restarted = WorkerStore(tmp_path)
    todo = restarted.recover()
    assert [r.job_id for r in todo] == ["j.1", "j.2"]
    assert all(r.state == "queued" for r in todo)
    again = restarted.load_job("j.1")
    assert again is not None and again.state == "queued"
    assert list(restarted.tmp_dir.iterdir()) == []


def test_cleanup_removes_old_finished_jobs_and_old_blobs_no_kept_job_names(tmp_path: Path) -> None:
    store = WorkerStore(tmp_path)
    old = time.time() - 30 * 3600
    kept_by_job = _put(store, b"input of a queued job", age_h=30)
    named_by_old_job = _put(store, b"stem of an old job", age_h=30)
    orphan_old = _put(store, b"never used, old", age_h=30)
    orphan_new = _put(store, b"uploaded just now for a job to come")
    store.create_job(JobRecord(job_id="old.1", body_hash="h", state="done", accepted=old, finished=old,
                               blobs=[named_by_old_job]), {})
    store.create_job(JobRecord(job_id="waiting.1", body_hash="h", state="queued", accepted=old,
                               blobs=[kept_by_job]), {})
    store.create_job(JobRecord(job_id="recent.1", body_hash="h", state="failed", accepted=time.time(),
                               finished=time.time()), {})
    assert store.cleanup(keep_hours=24) == (1, 2)
    assert [r.job_id for r in store.jobs()] == ["waiting.1", "recent.1"]
    assert store.has_blob(kept_by_job) and store.has_blob(orphan_new)
    assert not store.has_blob(named_by_old_job) and not store.has_blob(orphan_old)
    assert list(store.tmp_dir.iterdir()) == []


def test_an_old_blob_asked_for_again_is_kept_by_the_cleanup(tmp_path: Path) -> None:
    store = WorkerStore(tmp_path)
    asked = _put(store, b"the bridge asked HEAD for this one", age_h=30)
    forgotten = _put(store, b"nobody asked", age_h=30)
    assert store.missing_blobs([asked, "0" * 64]) == ["0" * 64]
    assert store.cleanup(keep_hours=24) == (0, 1)
    assert store.has_blob(asked) and not store.has_blob(forgotten)

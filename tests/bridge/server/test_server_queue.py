"""The persistent SQLite job queue."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bridge.server.queue import (
    MAX_INTERRUPTIONS,
    DuplicateJobError,
    JobQueue,
    QueueFullError,
    QueueStorageError,
)


def test_jobs_run_in_order_and_survive_a_reopen(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite3"
    q = JobQueue(db)
    for i in range(3):
        q.enqueue(f"job-{i}", {"seed": i}, reply="osc:127.0.0.1:9", source="osc")
    q.close()
    q = JobQueue(db)
    job = q.claim_next()
    assert job is not None and job.job_id == "job-0" and job.state == "running" and job.request == {"seed": 0}
    assert job.reply == "osc:127.0.0.1:9"
    assert [j.job_id for j in q.jobs("queued")] == ["job-1", "job-2"]
    assert q.finish("job-0", "done", manifest="/x/job-0.json")
    assert not q.finish("job-0", "failed")  # a finished job stays finished
    assert q.get("job-0").state == "done"  # type: ignore[union-attr]
    q.close()


def test_a_job_id_is_never_reused_or_claimed_twice(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.sqlite3")
    q.enqueue("a", {})
    with pytest.raises(DuplicateJobError, match="never reused"):
        q.enqueue("a", {})
    claimed: list[str] = []
    for i in range(50):
        q.enqueue(f"j{i}", {})

    def grab() -> None:
        while (job := q.claim_next()) is not None:
            claimed.append(job.job_id)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(["a", *[f"j{i}" for i in range(50)]])
    assert len(claimed) == len(set(claimed))
    q.close()


def test_a_full_queue_refuses(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.sqlite3", max_active=2)
    q.enqueue("a", {})
    q.enqueue("b", {})
    with pytest.raises(QueueFullError, match="full"):
        q.enqueue("c", {})
    q.finish("a", "cancelled", error_code="cancelled")
    q.enqueue("c", {})
    q.close()


def test_recover_requeues_running_jobs_and_gives_up_after_repeated_interruptions(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite3"
    q = JobQueue(db)
    q.enqueue("a", {})
    q.enqueue("b", {})
    q.claim_next()
    q.close()
    q = JobQueue(db)
    assert [j.job_id for j in q.recover()] == ["a"]
    assert [(j.job_id, j.interruptions) for j in q.jobs("queued")] == [("a", 1), ("b", 0)]
    for _ in range(MAX_INTERRUPTIONS - 1):
        assert q.claim_next().job_id == "a"  # type: ignore[union-attr]
        q.recover()
    job = q.get("a")
    assert job is not None and job.state == "failed" and job.error_code == "interrupted"
    q.close()


def test_latest_and_recent_finished(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.sqlite3")
    q.enqueue("a", {"range": None})
    q.enqueue("b", {"range": {"start_bar": 1, "end_bar": 2}})
    q.enqueue("c", {})
    assert q.latest().job_id == "c"  # type: ignore[union-attr]
    assert q.latest(with_range=True).job_id == "b"  # type: ignore[union-attr]
    q.finish("a", "done")
    q.finish("b", "failed", error_code="input", error_message="bad")
    assert [j.job_id for j in q.recent_finished(1)] == ["b"]
    assert [j.job_id for j in q.jobs("queued")] == ["c"]  # the one job still active
    q.close()


def test_an_error_naming_a_file_that_is_not_utf8_is_still_recorded(tmp_path: Path) -> None:
    """Python spells the byte 0xE9 of a Latin-1 file name as a lone surrogate; SQLite refuses those."""
    q = JobQueue(tmp_path / "q.sqlite3")
    q.enqueue("a", {})
    q.claim_next()
    assert q.finish("a", "failed", error_code="input", error_message="no track in caf\udce9.mid")
    job = q.get("a")
    assert job is not None and (job.state, job.error_message) == ("failed", "no track in caf\\udce9.mid")
    q.close()


def test_a_full_database_refuses_the_job_with_a_clear_error_and_keeps_working(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.sqlite3")
    q.enqueue("a", {})
    (pages,) = q._db.execute("PRAGMA page_count").fetchone()
    q._db.execute(f"PRAGMA max_page_count = {pages}")  # as if the disk were full
    with pytest.raises(QueueStorageError, match="free some disk space"):
        q.enqueue("b", {"prompt": "x" * 100_000})
    q._db.execute("PRAGMA max_page_count = 1073741823")
    q.enqueue("c", {})
    assert [j.job_id for j in q.jobs("queued")] == ["a", "c"]
    q.close()


def test_the_worker_a_job_ran_on_is_recorded_and_an_old_queue_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "queue.db"
    old = sqlite3.connect(str(path))  # a queue file from before jobs could run on a remote worker
    old.executescript(
        "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, state TEXT NOT NULL,"
        " request TEXT NOT NULL, reply TEXT, source TEXT NOT NULL DEFAULT '', parent TEXT, created REAL NOT NULL,"
        " started REAL, finished REAL, interruptions INTEGER NOT NULL DEFAULT 0, manifest TEXT, error_code TEXT,"
        " error_message TEXT);"
        "INSERT INTO jobs (job_id, state, request, created) VALUES ('old', 'done', '{}', 1.0);"
    )
    old.commit()
    old.close()
    q = JobQueue(path)
    assert q.get("old").worker is None  # type: ignore[union-attr]
    q.enqueue("a", {"model": "arranger"})
    job = q.claim_next(worker="http://gpu-box:9100")
    assert job is not None and job.worker == "http://gpu-box:9100"
    q.close()
    assert JobQueue(path).get("a").worker == "http://gpu-box:9100"  # type: ignore[union-attr]

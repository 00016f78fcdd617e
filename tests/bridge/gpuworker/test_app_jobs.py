"""The worker service runs jobs over HTTP: results, progress, cancel, crashes, restarts, warm models.

Every test serves a real app with uvicorn on 127.0.0.1 and a LocalExecutor whose generator
process runs the real arranger (tests.bridge.gpuworker.helpers misbehaves on request). The
tests share one executor (starting a generator process costs seconds), so each finishes its jobs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.gpuworker.local_executor import LocalExecutor
from bridge.gpuworker.store import WorkerStore
from bridge.gpuworker.task import GenerationTask, ModelCache, execute_task
from tests.bridge.gpuworker.helpers import (
    Worker,
    new_executor,
    read_events,
    running_worker,
    submit,
    task_doc,
    upload,
    wait_final,
)


@pytest.fixture(scope="module")
def shared() -> Iterator[LocalExecutor]:
    executor = new_executor()
    executor.start()
    yield executor
    asyncio.run(executor.close())


def _wait_running(worker: Worker, job_id: str, message: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = worker.http.get(f"/v1/jobs/{job_id}").json()
        if doc["state"] == "running" and doc["message"] == message:
            return
        assert doc["state"] in ("queued", "running"), doc
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reported {message!r}")


def test_a_job_runs_end_to_end_and_its_stems_are_the_bytes_the_local_stage_gives(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        doc, blobs = task_doc(project, "20261122-101500-ab12cd.1")
        upload(worker.http, blobs)
        reply = worker.http.post("/v1/jobs", json=doc)
        assert reply.status_code == 202 and reply.json() == {"job_id": doc["job_id"], "state": "queued"}
        events = read_events(worker.http, doc["job_id"])
        assert events[0][1] == "state" and events[-1][1] == "done"
        remote = json.loads(events[-1][2])
        assert remote == worker.http.get(f"/v1/jobs/{doc['job_id']}").json()
        assert remote["state"] == "done" and remote["worker"] == "test-worker" and remote["error"] is None
        health = worker.http.get("/v1/health").json()
        assert health == {"ok": True, "api": 1, "worker": "test-worker", "models_loaded": ["arranger"],
                          "queued": 0, "running": 0}

        local = execute_task(
            GenerationTask(job_id="local", request=doc["request"], seed=7,
                           files={rel: blobs[ref] for rel, ref in doc["files"].items()}),
            models=ModelCache(), work_dir=tmp_path)
        assert remote["result"] == local.result
        stems = [ref for s in remote["result"]["sections"] for take in s["takes"] for ref in take["stems"].values()]
        assert len(stems) == 8  # 2 sections x 4 stems
        for ref in stems:
            fetched = worker.http.get(f"/v1/blobs/{ref}")
            assert fetched.status_code == 200
            assert fetched.headers["content-type"] == "application/octet-stream"
            assert fetched.content == local.blobs[ref]


def test_a_warm_model_is_not_loaded_again_for_the_next_job(project: Path, tmp_path: Path,
                                                            shared: LocalExecutor) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "warm.1", seed=1).status_code == 202
        assert wait_final(worker.http, "warm.1")["state"] == "done"
        loads = worker.executor.loads
        assert loads >= 1 and "arranger" in worker.executor.models_loaded()
        assert submit(worker.http, project, "warm.2", seed=2).status_code == 202
        assert wait_final(worker.http, "warm.2")["state"] == "done"
        assert worker.executor.loads == loads


def test_progress_arrives_on_change_and_as_a_heartbeat_at_least_every_2_s(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared, heartbeat_s=1.0) as worker:
        assert submit(worker.http, project, "slow.1", prompt="slow 30").status_code == 202  # 3 s of silence
        events = read_events(worker.http, "slow.1")
    kinds = [e[1] for e in events]
    assert kinds[0] == "state" and kinds[-1] == "done" and set(kinds[1:-1]) == {"progress"}
    gaps = [b[0] - a[0] for a, b in zip(events, events[1:], strict=False)]
    assert max(gaps) < 2.0, gaps
    warming = [e for e in events if e[1] == "progress" and json.loads(e[2])["message"] == "warming up"]
    assert len(warming) >= 3, "the same progress must be sent again as a heartbeat"
    messages = [json.loads(e[2])["message"] for e in events if e[1] == "progress"]
    assert any(m.startswith("Chorus 1") for m in messages), "the generator's own progress is forwarded"
    assert json.loads(events[-1][2])["result"]["version"] == 1


def test_a_cancel_mid_job_stops_it_and_the_next_job_runs_in_the_same_process(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "long.1", prompt="slow 200").status_code == 202
        _wait_running(worker, "long.1", "warming up")
        pid = worker.executor.pid
        started = time.monotonic()
        reply = worker.http.post("/v1/jobs/long.1/cancel")
        assert reply.status_code == 202 and reply.json() == {"state": "cancelling"}
        final = wait_final(worker.http, "long.1")
        assert time.monotonic() - started < 2.0
        assert final["state"] == "cancelled" and final["error"]["code"] == "cancelled" and final["result"] is None
        assert worker.http.post("/v1/jobs/long.1/cancel").json() == {"state": "cancelled"}
        assert [e[1] for e in read_events(worker.http, "long.1")] == ["state", "cancelled"]
        assert submit(worker.http, project, "next.1").status_code == 202
        assert wait_final(worker.http, "next.1")["state"] == "done"
        assert worker.executor.pid == pid


def test_a_job_deaf_to_its_cancel_is_ended_by_restarting_the_process(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "deaf.1", prompt="stubborn").status_code == 202
        _wait_running(worker, "deaf.1", "not listening")
        pid = worker.executor.pid
        started = time.monotonic()
        assert worker.http.post("/v1/jobs/deaf.1/cancel").status_code == 202
        assert wait_final(worker.http, "deaf.1")["state"] == "cancelled"
        assert time.monotonic() - started < 3.0  # ~1 s grace, then the kill
        assert submit(worker.http, project, "next.1").status_code == 202
        assert wait_final(worker.http, "next.1")["state"] == "done"
        assert worker.executor.pid != pid


def test_a_queued_job_is_cancelled_at_once(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "first.1", prompt="slow 200").status_code == 202
        assert submit(worker.http, project, "second.1").status_code == 202
        assert worker.http.post("/v1/jobs/second.1/cancel").json() == {"state": "cancelled"}
        assert worker.http.get("/v1/health").json()["queued"] == 0
        worker.http.post("/v1/jobs/first.1/cancel")
        assert wait_final(worker.http, "first.1")["state"] == "cancelled"
        assert wait_final(worker.http, "second.1")["error"]["code"] == "cancelled"


def test_a_killed_generator_process_fails_the_job_as_worker_crashed_and_the_next_job_runs(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "doomed.1", prompt="slow 200").status_code == 202
        _wait_running(worker, "doomed.1", "warming up")
        pid = worker.executor.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        final = wait_final(worker.http, "doomed.1")
        assert final["state"] == "failed" and final["error"]["code"] == "worker_crashed"
        assert "SIGKILL" in final["error"]["message"]
        assert submit(worker.http, project, "after.1").status_code == 202
        assert wait_final(worker.http, "after.1")["state"] == "done"


def test_a_generator_that_dies_by_itself_is_worker_crashed_too(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "crash.1", prompt="crash").status_code == 202
        events = read_events(worker.http, "crash.1")
        assert events[-1][1] == "failed" and json.loads(events[-1][2])["code"] == "worker_crashed"


def test_the_same_task_sent_again_runs_once_and_another_task_under_its_id_is_a_duplicate(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        doc, blobs = task_doc(project, "twice.1")
        upload(worker.http, blobs)
        assert worker.http.post("/v1/jobs", json=doc).status_code == 202
        again = worker.http.post("/v1/jobs", content=json.dumps(doc, indent=3))  # same task, other spacing
        assert again.status_code == 200 and again.json()["job_id"] == "twice.1"
        assert again.json()["state"] in ("queued", "running", "done")
        other = worker.http.post("/v1/jobs", json={**doc, "seed": 8})
        assert other.status_code == 409 and other.json()["error"]["code"] == "duplicate"
        assert wait_final(worker.http, "twice.1")["state"] == "done"
        after = worker.http.post("/v1/jobs", json=doc)
        assert after.status_code == 200 and after.json()["state"] == "done"
        time.sleep(0.3)
        record = WorkerStore(tmp_path / "state").load_job("twice.1")
        assert record is not None and record.runs == 1 and record.state == "done"
        assert worker.job_folders() == ["twice.1"]


def test_a_restarted_worker_runs_the_jobs_it_had_accepted(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    state = tmp_path / "state"
    with running_worker(state) as worker:  # its own executor, stopped with it
        assert submit(worker.http, project, "interrupted.1", prompt="slow 10").status_code == 202
        assert submit(worker.http, project, "waiting.1").status_code == 202
        _wait_running(worker, "interrupted.1", "warming up")
    store = WorkerStore(state)
    assert [(r.job_id, r.state) for r in store.jobs()] == [("interrupted.1", "running"), ("waiting.1", "queued")]
    with running_worker(state, shared) as worker:
        first = wait_final(worker.http, "interrupted.1")
        second = wait_final(worker.http, "waiting.1")
        assert first["state"] == second["state"] == "done"
    runs = {r.job_id: r.runs for r in store.jobs()}
    assert runs == {"interrupted.1": 2, "waiting.1": 1}


def test_a_full_queue_answers_busy(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared, max_queue=1) as worker:
        assert submit(worker.http, project, "one.1", prompt="slow 200").status_code == 202
        reply = submit(worker.http, project, "two.1")
        assert reply.status_code == 503 and reply.json()["error"]["code"] == "busy"
        assert "--max-queue" in reply.json()["error"]["message"]
        assert worker.job_folders() == ["one.1"]
        worker.http.post("/v1/jobs/one.1/cancel")
        assert wait_final(worker.http, "one.1")["state"] == "cancelled"


def test_a_bar_range_regeneration_runs_from_base_takes_stored_as_blobs(
    project: Path, tmp_path: Path, shared: LocalExecutor
) -> None:
    with running_worker(tmp_path / "state", shared) as worker:
        assert submit(worker.http, project, "fresh.1").status_code == 202
        fresh = wait_final(worker.http, "fresh.1")["result"]
        verse = next(s for s in fresh["sections"] if s["name"] == "Verse 1")["takes"][0]
        doc, blobs = task_doc(project, "regen.1", seed=11)
        doc["request"]["range"] = {"start_bar": 2, "end_bar": 3}
        doc["bases"] = {"takes": {"Verse 1": {"job_id": "20261122-101500-ab12cd", "take": verse}},
                        "previous_mix": None}
        upload(worker.http, blobs)  # the base stems are on the worker already: fresh.1 made them
        assert worker.http.post("/v1/jobs", json=doc).status_code == 202
        regen = wait_final(worker.http, "regen.1")
        assert regen["state"] == "done", regen["error"]
        assert [s["name"] for s in regen["result"]["sections"]] == ["Verse 1"]

        base_blobs = {ref: worker.http.get(f"/v1/blobs/{ref}").content for ref in verse["stems"].values()}
        local = execute_task(
            GenerationTask(job_id="local", request=doc["request"], seed=11, bases=doc["bases"], blobs=base_blobs,
                           files={rel: blobs[ref] for rel, ref in doc["files"].items()}),
            models=ModelCache(), work_dir=tmp_path)
        assert regen["result"] == local.result
        missing = {**doc, "job_id": "regen.2",
                   "bases": {**doc["bases"], "previous_mix": "f" * 64}}
        reply = worker.http.post("/v1/jobs", json=missing)
        assert reply.status_code == 409 and reply.json()["error"]["missing"] == ["f" * 64]


@pytest.mark.slow
def test_a_warm_neural_model_is_not_loaded_again(project: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    short = {"sections": [{"name": "Verse 1", "start_bar": 1, "end_bar": 2}], "stems": ["drums", "bass"],
             "model": "musicgen-debug"}
    with running_worker(tmp_path / "state") as worker:
        for job_id, seed in (("neural.1", 1), ("neural.2", 2)):
            assert submit(worker.http, project, job_id, seed=seed, **short).status_code == 202
            final = wait_final(worker.http, job_id, timeout_s=120)
            assert final["state"] == "done", final["error"]
        assert worker.executor.loads == 1
        assert worker.executor.models_loaded() == ["musicgen-debug"]

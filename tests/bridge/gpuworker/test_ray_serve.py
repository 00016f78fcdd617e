"""The worker on Ray Serve: a local cluster on loopback, two Generation replicas, real arranger jobs.

One cluster (two CPUs) and one deployment serve the whole module: several clients at once over
HTTP, a cancel, a replica killed mid-job. The replica classes are also driven without Ray.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bridge.gpuworker.ray_config import RayServeConfig, load_ray_config
from bridge.gpuworker.ray_serve import GenerationReplica, running_here
from bridge.gpuworker.task import GenerationTask, ModelCache, execute_task
from bridge.job.request import parse_request
from bridge.remote.wire import audio_from_wav, portable_request
from tests.bridge.gpuworker.worker_client import (
    JobRun,
    WorkerClient,
    make_song,
    song_request,
    task_document,
)

pytest.importorskip("ray.serve")
pytest.importorskip("starlette")

TOKEN = "test-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _long_request(project: Path) -> dict[str, Any]:
    """About 1.5 s of arranger work on an idle core (64 one-bar sections, four takes each)."""
    raw = song_request(project, sections=64, bars_each=1, variations=4, stems=["bass"])
    raw["project"]["sample_rate"] = 22050
    return raw


def _medium_request(project: Path) -> dict[str, Any]:
    """About 0.5 s of arranger work (64 one-bar sections, one take each)."""
    raw = song_request(project, sections=64, bars_each=1, stems=["bass"])
    raw["project"]["sample_rate"] = 22050
    return raw


def _short_request(project: Path, stems: list[str]) -> dict[str, Any]:
    return song_request(project, sections=2, bars_each=2, stems=stems)


def _task(raw: dict[str, Any], job_id: str, seed: int) -> GenerationTask:
    portable = portable_request(parse_request(raw))
    files = {rel: path.read_bytes() for rel, path in portable.files.items()}
    return GenerationTask(job_id=job_id, request=portable.raw, files=files, seed=seed)


def _canonical(result: Any, blobs: Any) -> Any:
    """``result`` with every stem's blob id replaced by its rate, shape and a digest of its samples."""
    doc = copy.deepcopy(dict(result))
    for section in doc["sections"]:
        for take in section["takes"]:
            for stem, ref in take["stems"].items():
                audio = audio_from_wav(blobs[ref])
                take["stems"][stem] = (audio.sample_rate, audio.samples.shape,
                                       hashlib.sha256(audio.samples.tobytes()).hexdigest())
    return doc


def _write_config(folder: Path, port: int, **replicas: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(TOKEN + "\n")
    rows = "\n".join(f"{k} = {v}" for k, v in replicas.items())
    path = folder / "ray-serve.toml"
    path.write_text(f'[worker]\nname = "ray-test"\nhost = "127.0.0.1"\nport = {port}\ntoken_file = "token"\n'
                    f'state_dir = "state"\n[ray]\nnum_cpus = 2\n[models]\npreload = ["arranger"]\n'
                    f"[replicas]\n{rows}\n")
    return path


# -- the replica class alone (no Ray) ------------------------------------------------------------

async def _drain(gen: Any) -> list[tuple[Any, ...]]:
    return [item async for item in gen]


def test_one_replica_runs_tasks_concurrently_on_its_shared_cache(tmp_path: Path) -> None:
    project = make_song(tmp_path / "song")
    replica = GenerationReplica({}, 2, ("arranger",), 2)
    tasks = [_task(_medium_request(project), f"c{i}", seed=i) for i in range(2)]
    seen_together = threading.Event()

    async def main() -> list[list[tuple[Any, ...]]]:
        runs = [asyncio.create_task(_drain(replica.run(t))) for t in tasks]
        while not all(r.done() for r in runs):
            if {"c0", "c1"} <= set(running_here()):
                seen_together.set()
            await asyncio.sleep(0.02)
        return [r.result() for r in runs]

    results = asyncio.run(main())
    assert seen_together.is_set(), "the two tasks never ran at the same time"
    for task, items in zip(tasks, results, strict=True):
        kinds = [i[0] for i in items]
        assert kinds[0] == "started" and kinds[-1] == "done" and set(kinds[1:-1]) == {"progress"}
        fractions = [i[1] for i in items if i[0] == "progress"]
        assert fractions == sorted(fractions) and len(fractions) >= 3
        local = execute_task(task, models=ModelCache())
        remote = items[-1][1]
        assert _canonical(remote.result, remote.blobs) == _canonical(local.result, local.blobs)
        assert remote.result == local.result
        assert items[-1][2] == ["arranger"]
    assert running_here() == []


def test_cancelling_a_replica_call_sets_the_token_and_stops_the_thread(tmp_path: Path) -> None:
    project = make_song(tmp_path / "song")
    replica = GenerationReplica({}, 2, ("arranger",), 1)
    task = _task(_long_request(project), "x1", seed=1)

    async def main() -> list[str]:
        kinds: list[str] = []

        async def consume() -> None:
            async for item in replica.run(task):
                kinds.append(item[0])

        run = asyncio.create_task(consume())
        while "progress" not in kinds:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert time.monotonic() - started < 3.0
        return kinds

    kinds = asyncio.run(main())
    assert "done" not in kinds and running_here() == [], "the task's thread went on after the cancel"


def test_a_task_failure_comes_back_as_its_code(tmp_path: Path) -> None:
    project = make_song(tmp_path / "song")
    replica = GenerationReplica({}, 2, (), 1)
    bad = _task(_short_request(project, ["bass"]), "f1", seed=1)
    bad = GenerationTask(job_id="f1", request=bad.request, files={}, seed=1)
    items = asyncio.run(_drain(replica.run(bad)))
    assert items[-1][:2] == ("failed", "path") and "chords.mid" in items[-1][2]


# -- the deployment on a local cluster ----------------------------------------------------------

@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Serve application on a local two-CPU cluster: 2 Generation replicas, one task each.

    One task per replica keeps the kill test exact: the killed replica ran the doomed job alone.
    """
    ray = pytest.importorskip("ray")
    from ray import serve

    from bridge.gpuworker.ray_serve import connect_ray, deploy

    root = tmp_path_factory.mktemp("ray-worker")
    config = load_ray_config(_write_config(root, _free_port(), min=2, max=2, initial=2, num_cpus=0.5,
                                           max_ongoing_requests=1))
    assert connect_ray(config), "a Ray cluster was already running in the test process"
    try:
        deploy(config)
        yield config, make_song(root / "song")
    finally:
        serve.shutdown()
        ray.shutdown()


def _client(config: RayServeConfig) -> WorkerClient:
    return WorkerClient(f"http://{config.host}:{config.port}", TOKEN)


def _replica_actors() -> list[Any]:
    import ray

    names = [a for a in ray.util.list_named_actors(all_namespaces=True) if "Generation" in a["name"]]
    return [ray.get_actor(a["name"], namespace=a["namespace"]) for a in names]


def _running_on(actor: Any) -> list[str]:
    import ray

    return list(ray.get(actor.__ray_call__.remote(lambda _self: running_here()), timeout=10))


def _check_done(run: JobRun, task: GenerationTask) -> None:
    assert run.final == "done", (run.job_id, run.final, run.data)
    local = execute_task(task, models=ModelCache())
    assert _canonical(run.data["result"], run.stems) == _canonical(local.result, local.blobs)
    assert run.data["result"] == local.result and run.stems == dict(local.blobs)  # the same blob ids too


@pytest.mark.slow  # the cluster's start (~10-20 s on two cores) is paid by the first of these
def test_several_clients_at_once_all_get_their_takes(worker: Any) -> None:
    config, project = worker
    client = _client(config)
    health = client.health()
    assert health["ok"] and health["worker"] == "ray-test" and health["api"] == 1
    jobs = [(f"many-{i}.1", _short_request(project, [["bass"], ["drums", "keys"], ["lead"], ["bass", "lead"]][i]), 10 + i)
            for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda j: _client(config).run_job(j[1], j[0], j[2]), jobs))
    for (job_id, raw, seed), run in zip(jobs, runs, strict=True):
        _check_done(run, _task(raw, job_id, seed))
    assert "arranger" in client.health()["models_loaded"]
    client.close()


@pytest.mark.slow
def test_a_large_blob_goes_through_serves_proxy_intact(worker: Any) -> None:
    import os

    from bridge.remote.wire import blob_id

    config, _ = worker
    client = _client(config)
    data = os.urandom(48 * 1024 * 1024)
    ref = blob_id(data)
    assert client.upload({ref: data}) == 1
    assert client.http.head(f"/v1/blobs/{ref}").status_code == 200
    back = client.http.get(f"/v1/blobs/{ref}")
    assert back.status_code == 200 and back.content == data
    wrong = client.http.put(f"/v1/blobs/{'0' * 64}", content=data[:1024])
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "blob_mismatch"
    client.close()


@pytest.mark.slow
def test_a_cancel_over_http_stops_the_task_on_its_replica(worker: Any) -> None:
    config, project = worker
    client = _client(config)
    doc_raw = _long_request(project)
    doc, blobs = task_document(doc_raw, "cancel-me.1", 3)
    client.upload(blobs)
    assert client.submit(doc).status_code == 202
    final = ""
    for event, data in client.events("cancel-me.1"):
        if event == "progress" and data["fraction"] > 0.05:
            assert client.cancel("cancel-me.1").status_code == 202
        if event in ("done", "failed", "cancelled"):
            final = event
            break
    assert final == "cancelled"
    deadline = time.monotonic() + 6.0
    while any("cancel-me.1" in _running_on(a) for a in _replica_actors()):
        assert time.monotonic() < deadline, "the replica went on running the cancelled task"
        time.sleep(0.1)
    client.close()


@pytest.mark.slow
def test_a_replica_killed_mid_job_fails_that_job_with_worker_crashed_and_the_others_finish(worker: Any) -> None:
    import ray

    config, project = worker
    client = _client(config)
    doc, blobs = task_document(_long_request(project), "doomed.1", 5)
    client.upload(blobs)
    assert client.submit(doc).status_code == 202
    victim = None
    deadline = time.monotonic() + 30.0
    while victim is None:
        assert time.monotonic() < deadline, "the job never started on a replica"
        victim = next((a for a in _replica_actors() if "doomed.1" in _running_on(a)), None)
        time.sleep(0.02)
    others = [(f"survivor-{i}.1", _short_request(project, ["bass", "drums"]), 20 + i) for i in range(2)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_client(config).run_job, raw, job_id, seed) for job_id, raw, seed in others]
        ray.kill(victim, no_restart=True)
        doomed = client.follow("doomed.1")
        survivors = [f.result(timeout=120) for f in futures]
    assert doomed.final == "failed" and doomed.data["code"] == "worker_crashed", doomed.data
    assert client.job("doomed.1")["error"]["code"] == "worker_crashed"
    for (job_id, raw, seed), run in zip(others, survivors, strict=True):
        _check_done(run, _task(raw, job_id, seed))
    # Serve replaces the dead replica; the bridge's attempt 2 then runs
    retry = client.run_job(_short_request(project, ["keys"]), "doomed.2", 5)
    _check_done(retry, _task(_short_request(project, ["keys"]), "doomed.2", 5))
    client.close()

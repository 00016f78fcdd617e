"""Remote worker benchmark: the cost of running a job over HTTP, and Ray Serve throughput.

Run: ``.venv/bin/python benchmarks/bench_remote.py [--jobs 10] [--clients 4] [--model arranger]
[--device cuda]``. Two parts, both on loopback:

(a) overhead per job: the same request run through ``execute_task`` in this process, and through
    a standalone ``stembridge worker`` (uvicorn on 127.0.0.1, a subprocess) with the httpx client
    a bridge uses: upload the inputs (each job's MIDI files are new bytes, so every job uploads),
    ``POST /v1/jobs``, follow the events to ``done``, fetch the stems. Medians of ``--jobs``
    warm jobs, in ms.
(b) throughput: ``--clients`` clients each running ``--jobs-per-client`` jobs back to back
    against the Ray Serve worker (a local cluster), with 1 and then 2 Generation replicas;
    jobs per minute over the wall time of all of them.

``--device cuda`` runs the models on the GPU (replicas share it: each reserves 1/replicas of it
unless ``--gpus-per-replica`` says otherwise).

Measured on the 2-core development machine (shared, so noisy), arranger, 2 sections x 2 bars,
4 stems at 48 kHz: (a) 174.9 ms in-process, 297.2 ms over HTTP (upload 8.6, submit 5.4, events
until done 226.0, fetch 55.5 for 10 MB of stems): 122 ms overhead per job; (b) 4 clients x 4
jobs, 2 tasks per replica: 115-133 jobs/min with 1 replica, 90-139 with 2 (two cores give a
second replica nothing to run on; the test of scaling is a GPU per replica).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.gpuworker.ray_config import parse_ray_config  # noqa: E402
from bridge.gpuworker.task import GenerationTask, ModelCache, execute_task  # noqa: E402
from bridge.job.request import parse_request  # noqa: E402
from bridge.remote.wire import portable_request  # noqa: E402
from tests.bridge.gpuworker.worker_client import (  # noqa: E402
    WorkerClient,
    make_song,
    song_request,
    task_document,
)

TOKEN = "bench-token-" + os.urandom(8).hex()


@dataclass
class Phases:
    """One remote job's wall times, in ms."""

    upload: float
    submit: float
    run: float
    fetch: float

    @property
    def total(self) -> float:
        """The whole job as the bridge waits for it."""
        return self.upload + self.submit + self.run + self.fetch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_for(project: Path, args: argparse.Namespace) -> dict[str, Any]:
    return song_request(project, sections=args.sections, bars_each=2, model=args.model,
                        stems=["drums", "bass", "keys", "lead"])


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"device": args.device} if args.device else {}


def local_ms(project: Path, args: argparse.Namespace) -> list[float]:
    """Wall ms of ``execute_task`` in this process, warm (the model built once before)."""
    portable = portable_request(parse_request(request_for(project, args)))
    task = GenerationTask("local", portable.raw, {r: p.read_bytes() for r, p in portable.files.items()}, seed=7)
    cache = ModelCache(model_options(args))
    execute_task(task, models=cache)
    times = []
    for _ in range(args.jobs):
        started = time.perf_counter()
        execute_task(task, models=cache)
        times.append((time.perf_counter() - started) * 1000)
    return times


def remote_job(client: WorkerClient, project: Path, job_id: str, args: argparse.Namespace) -> Phases:
    doc, blobs = task_document(request_for(project, args), job_id, seed=7)
    t0 = time.perf_counter()
    client.upload(blobs)
    t1 = time.perf_counter()
    response = client.submit(doc)
    t2 = time.perf_counter()
    if response.status_code != 202:
        raise SystemExit(f"POST /v1/jobs {job_id}: {response.status_code} {response.text}")
    final, data = "", None
    for event, payload in client.events(job_id):
        if event in ("done", "failed", "cancelled"):
            final, data = event, payload
            break
    t3 = time.perf_counter()
    if final != "done":
        raise SystemExit(f"job {job_id} ended {final}: {data}")
    client.fetch_stems(data["result"])
    t4 = time.perf_counter()
    return Phases(*(1000 * d for d in (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))


def start_worker(root: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "token").write_text(TOKEN)
    cmd = [sys.executable, "-m", "bridge.cli.main", "worker", "--listen", f"127.0.0.1:{free_port()}",
           "--token-file", str(root / "token"), "--state-dir", str(root / "state"), "--name", "bench"]
    if args.device:
        cmd += ["--device", args.device]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://[\d.]+:\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the worker did not start: {line!r}")
    return proc, match.group(1)


def wait_healthy(client: WorkerClient, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.health()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def overhead(root: Path, args: argparse.Namespace) -> tuple[list[float], list[Phases]]:
    """Part (a): local and remote wall times of the same request."""
    local = local_ms(make_song(root / "local"), args)
    proc, url = start_worker(root / "worker", args)
    try:
        client = WorkerClient(url, TOKEN)
        wait_healthy(client)
        remote_job(client, make_song(root / "warm", label="warm"), "warm-up.1", args)  # loads the model
        phases = [remote_job(client, make_song(root / f"p{i}", label=f"-{i}"), f"a-{i}.1", args)
                  for i in range(args.jobs)]
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return local, phases


def throughput(root: Path, args: argparse.Namespace) -> list[tuple[int, int, float]]:
    """Part (b): (replicas, jobs, wall s) for 1 and 2 Generation replicas."""
    import ray
    from ray import serve

    from bridge.gpuworker.ray_serve import connect_ray, deploy

    (root / "token").write_text(TOKEN)
    port = free_port()
    rows = []
    started = False
    try:
        for replicas in (1, 2):
            gpus = args.gpus_per_replica if args.gpus_per_replica is not None else (
                1.0 / replicas if args.device and args.device.startswith("cuda") else 0.0)
            config = parse_ray_config({
                "worker": {"name": "bench-ray", "port": port, "token_file": "token",
                           "state_dir": f"state-{replicas}", "max_queue": 1000},
                "ray": {"num_cpus": args.num_cpus},
                "models": {"preload": [args.model], "options": model_options(args)},
                "replicas": {"min": replicas, "max": replicas, "initial": replicas, "num_gpus": gpus,
                             "num_cpus": min(1.0, args.num_cpus / 2), "max_ongoing_requests": args.ongoing},
            }, root / "bench.toml")
            started = connect_ray(config) or started
            deploy(config)
            client = WorkerClient(f"http://127.0.0.1:{port}", TOKEN)
            wait_healthy(client)
            song = make_song(root / f"song-{replicas}")
            for i in range(replicas * args.ongoing):  # every replica's threads touched once
                remote_job(client, song, f"warm-{replicas}-{i}.1", args)

            def one_client(c: int, _song: Path = song, _replicas: int = replicas) -> None:
                mine = WorkerClient(f"http://127.0.0.1:{port}", TOKEN)
                for j in range(args.jobs_per_client):
                    remote_job(mine, _song, f"b-{_replicas}-{c}-{j}.1", args)
                mine.close()

            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                list(pool.map(one_client, range(args.clients)))
            rows.append((replicas, args.clients * args.jobs_per_client, time.perf_counter() - t0))
            client.close()
    finally:
        if started:
            serve.shutdown()
            ray.shutdown()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=10, help="jobs per side in part (a); the median is shown")
    ap.add_argument("--sections", type=int, default=2, help="two-bar sections per job")
    ap.add_argument("--model", default="arranger", help="arranger (no torch) or musicgen-debug, or a real model")
    ap.add_argument("--device", default=None, help="torch device for the models, e.g. cuda (default: the model's)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients in part (b)")
    ap.add_argument("--jobs-per-client", type=int, default=4, help="jobs each client runs in part (b)")
    ap.add_argument("--ongoing", type=int, default=2, help="tasks one replica runs at once in part (b)")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray cluster")
    ap.add_argument("--gpus-per-replica", type=float, default=None,
                    help="GPUs each replica reserves (default: 1/replicas with --device cuda, else 0)")
    ap.add_argument("--skip-overhead", action="store_true", help="only part (b)")
    ap.add_argument("--skip-throughput", action="store_true", help="only part (a)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    print(f"model {args.model}, device {args.device or 'default'}, {args.sections} sections x 2 bars, "
          f"4 stems at 48 kHz, {os.cpu_count()} CPUs")
    if not args.skip_overhead:
        local, phases = overhead(root, args)
        med = statistics.median
        remote = med(p.total for p in phases)
        print(f"(a) one job on loopback, median of {args.jobs} warm jobs (ms)")
        print(f"  {'in-process execute_task':<34}{med(local):>9.1f}")
        print(f"  {'standalone worker over HTTP':<34}{remote:>9.1f}")
        print(f"  {'  upload inputs (HEAD + PUT)':<34}{med(p.upload for p in phases):>9.1f}")
        print(f"  {'  POST /v1/jobs':<34}{med(p.submit for p in phases):>9.1f}")
        print(f"  {'  events until done':<34}{med(p.run for p in phases):>9.1f}")
        print(f"  {'  fetch stems':<34}{med(p.fetch for p in phases):>9.1f}")
        print(f"  {'overhead per job':<34}{remote - med(local):>9.1f}")
    if not args.skip_throughput:
        rows = throughput(root, args)
        print(f"(b) Ray Serve throughput, {args.clients} clients, {args.ongoing} tasks at once per replica")
        print(f"  {'replicas':>8}{'jobs':>6}{'wall s':>9}{'jobs/min':>10}")
        for replicas, jobs, wall in rows:
            print(f"  {replicas:>8}{jobs:>6}{wall:>9.2f}{60 * jobs / wall:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

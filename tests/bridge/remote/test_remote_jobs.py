"""A bridge and a `stembridge worker` in two processes on loopback: jobs, failures, retries, cancel.

The worker is the real command (`python -m bridge.cli.main worker …`) in its own process; the
bridge is the real server (OSC in, manifests out) or the real `generate` command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from bridge.app import BridgeServer, ServerConfig
from bridge.cli.main import main
from bridge.job.pipeline import run_request
from bridge.job.request import parse_request
from bridge.remote.client import RemoteStage, WorkerError, WorkerSettings
from tests.bridge.conftest import base_request
from tests.bridge.server_helpers import OscClient, wait_for

TOKEN = "test-token-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProc:
    """A `stembridge worker` process on 127.0.0.1 (start, kill, start again on the same state)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.token_file = root / "worker.token"
        self.token_file.write_text(TOKEN + "\n")
        self.state_dir = root / "worker-state"
        self.log = root / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **kw: Any) -> WorkerSettings:
        return WorkerSettings(url=self.url, token=TOKEN, **kw)

    def start(self) -> WorkerProc:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bridge.cli.main", "worker", "--listen", f"127.0.0.1:{self.port}",
                 "--token-file", str(self.token_file), "--state-dir", str(self.state_dir)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        import httpx

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/v1/health", headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, 60, 0.2), f"the worker did not start: {self.log.read_text()[-2000:]}"
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def job_states(self) -> dict[str, str]:
        states = {}
        for path in (self.state_dir / "jobs").glob("*/job.json"):
            states[path.parent.name] = json.loads(path.read_text())["state"]
        return states


@pytest.fixture(scope="module")
def shared_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProc]:
    """One worker for the tests that leave it running (each uses its own job ids)."""
    proc = WorkerProc(tmp_path_factory.mktemp("worker")).start()
    yield proc
    proc.stop()


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProc]:
    """A worker of this test's own (tests that kill it, or count its jobs)."""
    proc = WorkerProc(tmp_path).start()
    yield proc
    proc.stop()


def _samples(project: Path, manifest: dict[str, Any]) -> dict[tuple[str, str, int], np.ndarray]:
    return {
        (p["section"], p["stem"], p["take"]): sf.read(project / p["file"], dtype="float32", always_2d=True)[0]
        for p in manifest["placements"]
    }


def _copy_project(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("chords.mid", "drums.mid"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_a_job_on_the_worker_places_the_same_stems_as_a_local_job(shared_worker: WorkerProc, project: Path,
                                                                   tmp_path: Path) -> None:
    worker = shared_worker
    other = _copy_project(project, tmp_path / "local-song")
    remote = run_request(parse_request(base_request(project)), job_id="20261201-120000-aaaaaa",
                         stage=RemoteStage(worker.settings(), "20261201-120000-aaaaaa"))
    local = run_request(parse_request(base_request(other)))
    assert [(p.section, p.stem, p.take, p.start_beat, p.length_samples) for p in remote.record.placements] == \
           [(p.section, p.stem, p.take, p.start_beat, p.length_samples) for p in local.record.placements]
    a, b = _samples(project, remote.manifest), _samples(other, local.manifest)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert remote.manifest["key"] == local.manifest["key"]
    assert {k: v for k, v in worker.job_states().items() if k.startswith("20261201-120000-aaaaaa")} == {
        "20261201-120000-aaaaaa.1": "done"}


def test_a_re_sent_file_is_not_uploaded_again(worker: WorkerProc, project: Path) -> None:
    first = RemoteStage(worker.settings(), "20261201-120000-bbbbbb")
    run_request(parse_request(base_request(project)), job_id=first.job_id, stage=first)
    assert first.uploaded_bytes > 0
    again = RemoteStage(worker.settings(), "20261201-120000-cccccc")
    run_request(parse_request(base_request(project, seed=8)), job_id=again.job_id, stage=again)
    assert again.uploaded_bytes == 0


def test_a_bar_range_regenerated_on_the_worker_keeps_everything_outside_the_range(shared_worker: WorkerProc,
                                                                                   project: Path) -> None:
    worker = shared_worker
    first = RemoteStage(worker.settings(), "20261201-120000-dddddd")
    base = run_request(parse_request(base_request(project)), job_id=first.job_id, stage=first)
    again = RemoteStage(worker.settings(), "20261201-120000-eeeeee")
    regen = run_request(parse_request(base_request(project, range={"start_bar": 3, "end_bar": 4}, seed=9)),
                        job_id=again.job_id, stage=again)
    assert regen.manifest["base_jobs"] == {"Chorus 1": base.job_id}
    old, new = _samples(project, base.manifest), _samples(project, regen.manifest)
    sr = 48000
    bar = 2 * sr  # 4 beats at 120 bpm
    for (section, stem, take), samples in new.items():
        assert section == "Chorus 1" and take == 2
        before = old[(section, stem, 1)]
        np.testing.assert_array_equal(samples[bar + sr // 2:], before[bar + sr // 2:])  # bar 4 untouched


def test_the_server_runs_jobs_on_the_worker_and_status_says_where(shared_worker: WorkerProc, project: Path) -> None:
    worker = shared_worker
    cfg = ServerConfig(project_dir=project, osc_port=0, poll_interval_s=0.05, worker=worker.settings())
    with BridgeServer(cfg) as srv:
        client = OscClient(srv.osc_port)
        job = client.generate(base_request(project))
        address, args, progress = client.until_final(job, timeout=120)
        assert address == "/stembridge/done", args
        assert progress, "no progress arrived over OSC"
        manifest = json.loads(Path(args[1]).read_text())
        assert manifest["status"] == "done" and len(manifest["placements"]) == 8
        wait_for(lambda: '"finished": [\n    {' in (srv.layout.outbox / "status.json").read_text(), 5)
        status = json.loads((srv.layout.outbox / "status.json").read_text())
        assert status["finished"][0]["worker"] == worker.url
        client.close()


def test_an_unreachable_worker_fails_the_job_clearly_and_the_server_keeps_serving(project: Path) -> None:
    settings = WorkerSettings(url=f"http://127.0.0.1:{_free_port()}", token=TOKEN, wait_s=1.0, poll_s=0.1)
    cfg = ServerConfig(project_dir=project, osc_port=0, poll_interval_s=0.05, worker=settings)
    with BridgeServer(cfg) as srv:
        client = OscClient(srv.osc_port)
        job = client.generate(base_request(project))
        address, args, _ = client.until_final(job, timeout=60)
        assert address == "/stembridge/error" and args[1] == "worker_unreachable", args
        assert "did not answer" in args[2] and "stembridge worker" in args[2]
        assert not (project / "stembridge" / "renders" / job).exists()
        client.send("/stembridge/ping")
        client.expect("/stembridge/pong")
        client.close()


def test_a_wrong_token_is_refused_and_nothing_runs(worker: WorkerProc, project: Path) -> None:
    stage = RemoteStage(WorkerSettings(url=worker.url, token="wrong"), "20261201-120000-ffffff")
    with pytest.raises(WorkerError) as info:
        run_request(parse_request(base_request(project)), job_id=stage.job_id, stage=stage)
    assert info.value.code == "worker_auth"
    assert worker.job_states() == {}
    assert not (project / "stembridge" / "outbox").exists()


def test_a_model_the_worker_cannot_run_comes_back_with_its_own_code(shared_worker: WorkerProc,
                                                                    project: Path) -> None:
    stage = RemoteStage(shared_worker.settings(), "20261201-120000-gggggg")
    request = parse_request(base_request(project, model="musicgen-large", stems=["bass"]))  # no weights here
    with pytest.raises(WorkerError) as info:
        run_request(request, job_id=stage.job_id, stage=stage)
    assert info.value.code == "model_unavailable"
    assert "musicgen-large" in str(info.value)
    assert not list(project.glob("stembridge/renders/*"))


def _slow_request(project: Path, **overrides: Any) -> dict[str, Any]:
    """A musicgen-debug job long enough (a 16-bar section, 32 s) to act on while it runs."""
    return base_request(project, model="musicgen-debug", stems=["bass"],
                        sections=[{"name": "Long", "start_bar": 1, "end_bar": 17}], **overrides)


@pytest.mark.slow
def test_a_worker_killed_mid_job_and_restarted_finishes_the_job_once(worker: WorkerProc, project: Path) -> None:
    stage = RemoteStage(worker.settings(wait_s=90.0, poll_s=0.2), "20261201-120000-hhhhhh")
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if len(seen) == 5:  # the job is running on the worker: kill it, start it again
            worker.kill()
            worker.start()

    result = run_request(parse_request(_slow_request(project)), job_id=stage.job_id, stage=stage,
                         progress=progress)
    assert result.record.status == "done"
    # the restarted worker ran the job it had accepted, and the bridge followed it: no second attempt
    assert worker.job_states() == {"20261201-120000-hhhhhh.1": "done"}


@pytest.mark.slow
def test_a_worker_that_dies_and_stays_down_fails_the_job_with_worker_failed(worker: WorkerProc,
                                                                           project: Path) -> None:
    stage = RemoteStage(worker.settings(wait_s=2.0, poll_s=0.1), "20261201-120000-iiiiii")
    count = [0]

    def progress(fraction: float, message: str) -> None:
        count[0] += 1
        if count[0] == 5:
            worker.kill()

    with pytest.raises(WorkerError) as info:
        run_request(parse_request(_slow_request(project)), job_id=stage.job_id, stage=stage, progress=progress)
    assert info.value.code == "worker_failed"
    assert not (project / "stembridge" / "renders" / stage.job_id).exists()
    assert not list(project.glob("stembridge/renders/*.partial"))
    assert not list(project.glob("stembridge/outbox/*.json"))


@pytest.mark.slow
def test_cancel_over_osc_stops_the_job_on_the_worker(worker: WorkerProc, project: Path) -> None:
    cfg = ServerConfig(project_dir=project, osc_port=0, poll_interval_s=0.05, worker=worker.settings())
    with BridgeServer(cfg) as srv:
        client = OscClient(srv.osc_port)
        job = client.generate(_slow_request(project))
        client.expect("/stembridge/progress", job_id=job, timeout=60)
        assert wait_for(lambda: worker.job_states().get(f"{job}.1") == "running", 60)
        t0 = time.monotonic()
        client.send("/stembridge/cancel", job)
        address, args, _ = client.until_final(job, timeout=30)
        assert address == "/stembridge/error" and args[1] == "cancelled", args
        assert wait_for(lambda: worker.job_states().get(f"{job}.1") == "cancelled", 10), worker.job_states()
        assert time.monotonic() - t0 < 10
        client.close()


@pytest.mark.slow
def test_the_demo_runs_end_to_end_on_a_worker_process(worker: WorkerProc, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--seed", "7", "--quiet", "--json",
                 "--worker", worker.url, "--worker-token-file", str(worker.token_file)])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["status"] == "done" and manifest["placements"]
    assert list(worker.job_states().values()) == ["done"]
    for p in manifest["placements"]:
        assert (out / p["file"]).is_file()

"""A small blocking client of the worker API (docs/worker-api.md) for tests and benchmarks.

It does what a bridge does for one job: upload the input files the worker lacks (``HEAD`` then
``PUT``), ``POST`` the task, follow the server-sent events to the end, then fetch the stems.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bridge.job.request import parse_request
from bridge.remote.wire import task_upload
from tests.bridge.conftest import AM_F_C_G, base_request, write_midi


@dataclass
class JobRun:
    """How one job went, as the client saw it.

    Attributes:
        job_id: the job's id.
        final: the last event ("done", "failed" or "cancelled").
        data: that event's data.
        events: every (event, data) received, in order.
        stems: blob id -> bytes of every stem fetched ("done" only).
    """

    job_id: str
    final: str = ""
    data: Any = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    stems: dict[str, bytes] = field(default_factory=dict)

    @property
    def fractions(self) -> list[float]:
        """The progress fractions received, in order."""
        return [float(d["fraction"]) for e, d in self.events if e == "progress"]


def make_song(root: Path, bars: int = 64, *, label: str = "") -> Path:
    """A project folder with ``bars`` bars of chords (Am F C G) and a four-on-the-floor kick.

    ``label`` goes into the MIDI track names: the same music in other bytes (other blob ids).
    """
    root.mkdir(parents=True, exist_ok=True)
    chords = [(p, bar * 4.0, bar * 4.0 + 3.9, 80) for bar in range(bars) for p in AM_F_C_G[bar % 4]]
    write_midi(root / "chords.mid", chords, name=f"chords{label}")
    write_midi(root / "drums.mid", [(36, b, b + 0.1, 100) for b in range(bars * 4)], drum=True, name=f"drums{label}")
    return root


def song_request(project: Path, *, sections: int = 2, bars_each: int = 2, **overrides: Any) -> dict[str, Any]:
    """A request v1 for ``project`` with ``sections`` back-to-back sections of ``bars_each`` bars."""
    secs = [{"name": f"Part {i + 1}", "start_bar": 1 + bars_each * i, "end_bar": 1 + bars_each * (i + 1)}
            for i in range(sections)]
    return base_request(project, sections=secs, **overrides)


def task_document(raw_request: dict[str, Any], job_id: str, seed: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The ``POST /v1/jobs`` body for a request, and blob id -> bytes of the files it names."""
    upload = task_upload(parse_request(raw_request), seed=seed)
    return {**upload.document, "job_id": job_id}, upload.blobs


class WorkerClient:
    """Blocking calls to one worker.

    Args:
        base_url: e.g. ``http://127.0.0.1:8760``.
        token: the worker's bearer token.
        timeout_s: read timeout of each call, in seconds (a progress stream sends at least every 2 s).
    """

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 60.0) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=httpx.Timeout(timeout_s))

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``."""
        response = self.http.get("/v1/health")
        response.raise_for_status()
        return dict(response.json())

    def upload(self, blobs: dict[str, bytes]) -> int:
        """Upload every blob the worker lacks; returns how many were sent."""
        sent = 0
        for ref, data in blobs.items():
            if self.http.head(f"/v1/blobs/{ref}").status_code == 200:
                continue
            response = self.http.put(f"/v1/blobs/{ref}", content=data)
            if response.status_code not in (200, 201):
                raise AssertionError(f"PUT blob {ref[:12]}: {response.status_code} {response.text}")
            sent += 1
        return sent

    def submit(self, doc: dict[str, Any]) -> httpx.Response:
        """``POST /v1/jobs`` (the response as it came)."""
        return self.http.post("/v1/jobs", json=doc)

    def events(self, job_id: str) -> Iterator[tuple[str, Any]]:
        """The job's server-sent events as (event, data) until the stream ends."""
        with self.http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
            response.raise_for_status()
            event, data = "", ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and event:
                    yield event, json.loads(data) if data else None
                    event, data = "", ""

    def follow(self, job_id: str) -> JobRun:
        """Follow a submitted job to its end; fetch the stems when it is done."""
        run = JobRun(job_id)
        for event, data in self.events(job_id):
            run.events.append((event, data))
            if event in ("done", "failed", "cancelled"):
                run.final, run.data = event, data
                break
        if run.final == "done":
            run.stems = self.fetch_stems(run.data["result"])
        return run

    def fetch_stems(self, result: dict[str, Any]) -> dict[str, bytes]:
        """Blob id -> bytes of every stem a result document names (``GET /v1/blobs/<id>``)."""
        stems: dict[str, bytes] = {}
        for section in result["sections"]:
            for take in section["takes"]:
                for ref in take["stems"].values():
                    response = self.http.get(f"/v1/blobs/{ref}")
                    response.raise_for_status()
                    stems[ref] = response.content
        return stems

    def run_job(self, raw_request: dict[str, Any], job_id: str, seed: int) -> JobRun:
        """Upload, submit and follow one job (what a bridge does)."""
        doc, blobs = task_document(raw_request, job_id, seed)
        self.upload(blobs)
        response = self.submit(doc)
        if response.status_code not in (200, 202):
            raise AssertionError(f"POST /v1/jobs {job_id}: {response.status_code} {response.text}")
        return self.follow(job_id)

    def cancel(self, job_id: str) -> httpx.Response:
        """``POST /v1/jobs/<job_id>/cancel``."""
        return self.http.post(f"/v1/jobs/{job_id}/cancel")

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/jobs/<job_id>``."""
        response = self.http.get(f"/v1/jobs/{job_id}")
        response.raise_for_status()
        return dict(response.json())

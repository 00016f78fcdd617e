"""The worker's calls refuse what is wrong at once, with the contract's codes, and keep nothing of it.

No test here runs a job, so the executor's generator process is never started.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.job.request import RequestError, parse_request
from tests.bridge.conftest import base_request
from tests.bridge.gpuworker.helpers import TOKEN, Worker, client, running_worker, task_doc, upload


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    with running_worker(tmp_path / "state", max_upload_bytes=4096, max_body_bytes=64 * 1024) as w:
        yield w


def _code(reply: httpx.Response) -> str:
    return str(reply.json()["error"]["code"])


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN + "x", TOKEN[:-1]])
def test_a_missing_or_wrong_token_is_401_and_nothing_is_kept_or_run(worker: Worker, project: Path,
                                                                    token: str | None) -> None:
    doc, blobs = task_doc(project, "sneaky.1")
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=worker.url, headers=headers) as http:
        replies = [http.get("/v1/health"), http.post("/v1/jobs", json=doc), http.get("/v1/jobs/sneaky.1"),
                   http.post("/v1/jobs/sneaky.1/cancel"), http.get("/v1/nowhere")]
        replies += [http.put(f"/v1/blobs/{ref}", content=data) for ref, data in blobs.items()]
        replies += [http.head(f"/v1/blobs/{ref}") for ref in blobs]
    assert [r.status_code for r in replies] == [401] * len(replies)
    assert all(_code(r) == "auth" for r in replies if r.request.method != "HEAD")
    assert worker.job_folders() == [] and worker.blob_files() == []
    assert worker.service.store.jobs() == []


def test_a_token_without_bearer_is_refused(worker: Worker) -> None:
    with httpx.Client(base_url=worker.url, headers={"Authorization": TOKEN}) as http:
        assert http.get("/v1/health").status_code == 401


def test_blobs_are_stored_once_fetched_and_answered_for(worker: Worker) -> None:
    data = b"RIFF not really a wav but bytes all the same"
    ref = hashlib.sha256(data).hexdigest()
    assert worker.http.head(f"/v1/blobs/{ref}").status_code == 404
    missing = worker.http.get(f"/v1/blobs/{ref}")
    assert missing.status_code == 404 and _code(missing) == "unknown_blob"
    assert worker.http.put(f"/v1/blobs/{ref}", content=data).status_code == 201
    assert worker.http.put(f"/v1/blobs/{ref}", content=data).status_code == 200
    assert worker.http.head(f"/v1/blobs/{ref}").status_code == 200
    assert worker.http.get(f"/v1/blobs/{ref}").content == data
    assert worker.blob_files() == [worker.state_dir / "blobs" / ref[:2] / ref]
    bad = worker.http.get("/v1/blobs/ABC")
    assert bad.status_code == 400 and _code(bad) == "schema"


def test_bytes_that_do_not_hash_to_the_blob_id_are_refused_and_not_kept(worker: Worker) -> None:
    ref = hashlib.sha256(b"what was meant").hexdigest()
    reply = worker.http.put(f"/v1/blobs/{ref}", content=b"what was sent")
    assert reply.status_code == 400 and _code(reply) == "blob_mismatch"
    assert hashlib.sha256(b"what was sent").hexdigest() in reply.json()["error"]["message"]
    assert worker.http.head(f"/v1/blobs/{ref}").status_code == 404
    assert worker.blob_files() == []


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_an_upload_over_the_bound_is_413_and_leaves_no_partial_blob(worker: Worker, streamed: bool) -> None:
    data = bytes(range(256)) * 20  # 5120 bytes, over the 4096 bound
    ref = hashlib.sha256(data).hexdigest()
    reply = worker.http.put(f"/v1/blobs/{ref}", content=_chunks(data) if streamed else data)
    assert reply.status_code == 413 and _code(reply) == "too_large"
    assert "--max-upload-mb" in reply.json()["error"]["message"]
    assert worker.blob_files() == []
    assert worker.http.get("/v1/health").status_code == 200  # and it keeps serving


def test_a_task_body_over_the_bound_is_413_and_no_job_appears(worker: Worker, project: Path) -> None:
    doc, blobs = task_doc(project, "big.1")
    upload(worker.http, blobs)
    doc["request"]["prompt"] = "x" * (70 * 1024)
    for content in (json.dumps(doc).encode(), _chunks(json.dumps(doc).encode())):
        reply = worker.http.post("/v1/jobs", content=content)
        assert reply.status_code == 413 and _code(reply) == "too_large"
    assert worker.job_folders() == []


def test_a_task_naming_blobs_not_uploaded_is_409_with_the_list(worker: Worker, project: Path) -> None:
    doc, blobs = task_doc(project, "early.1")
    first, second = sorted(blobs)
    upload(worker.http, {first: blobs[first]})
    reply = worker.http.post("/v1/jobs", json=doc)
    assert reply.status_code == 409 and _code(reply) == "missing_blobs"
    assert reply.json()["error"]["missing"] == [second]
    assert worker.job_folders() == []


def test_an_unknown_model_is_answered_at_submit_with_the_bridge_s_code(worker: Worker, project: Path) -> None:
    doc, blobs = task_doc(project, "nomodel.1")
    upload(worker.http, blobs)
    doc["request"]["model"] = "musicgen-gigantic"
    reply = worker.http.post("/v1/jobs", json=doc)
    assert reply.status_code == 400 and _code(reply) == "unknown_model"
    assert "stembridge models" in reply.json()["error"]["message"]
    assert worker.job_folders() == [] and not list((worker.state_dir / "tmp").iterdir())


BAD_REQUESTS: list[dict[str, Any]] = [
    {"stems": []},
    {"sections": [{"name": "Verse 1", "start_bar": 3, "end_bar": 1}]},
    {"version": 2},
    {"seed": "seven"},
    {"inputs": {"chords": {"midi": "absent.mid"}}},
    {"project": {"dir": ".", "sample_rate": 12345}},
]


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=lambda b: next(iter(b)))
def test_a_malformed_request_is_answered_with_the_code_the_bridge_gives(worker: Worker, project: Path,
                                                                       bad: dict[str, Any]) -> None:
    with pytest.raises(RequestError) as local:
        raw = base_request(project)
        for key, value in bad.items():
            raw[key] = {**value, "dir": str(project)} if key == "project" else value
        parse_request(raw)
    doc, blobs = task_doc(project, "bad.1")
    upload(worker.http, blobs)
    doc["request"].update(bad)
    reply = worker.http.post("/v1/jobs", json=doc)
    assert reply.status_code == 400
    assert _code(reply) == local.value.code
    assert worker.job_folders() == []


@pytest.mark.parametrize("name", ["../escape.mid", "/etc/passwd", "a/../../b.mid", "a\\b.mid", "", "a//b.mid"])
def test_a_file_name_that_would_leave_the_job_folder_is_refused_with_path(worker: Worker, project: Path,
                                                                         name: str) -> None:
    doc, blobs = task_doc(project, "escape.1")
    upload(worker.http, blobs)
    doc["files"][name] = next(iter(blobs))
    reply = worker.http.post("/v1/jobs", json=doc)
    assert reply.status_code == 400 and _code(reply) == "path"
    assert worker.job_folders() == []
    assert not (worker.state_dir.parent / "escape.mid").exists()


@pytest.mark.parametrize(("change", "code"), [
    ({"version": 2}, "version"),
    ({"job_id": "../../etc"}, "schema"),
    ({"job_id": ".."}, "schema"),
    ({"job_id": "x" * 101}, "schema"),
    ({"seed": -1}, "schema"),
    ({"seed": True}, "schema"),
    ({"request": "not an object"}, "schema"),
    ({"files": ["chords.mid"]}, "schema"),
    ({"bases": {"takes": {"Verse 1": {"job_id": "j", "take": {"stems": {"keys": "nope"}}}}}}, "schema"),
])
def test_a_malformed_task_is_refused(worker: Worker, project: Path, change: dict[str, Any], code: str) -> None:
    doc, blobs = task_doc(project, "shape.1")
    upload(worker.http, blobs)
    reply = worker.http.post("/v1/jobs", json={**doc, **change})
    assert reply.status_code == 400 and _code(reply) == code
    assert worker.job_folders() == []


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "not valid JSON"),
    (b'{"seed": ' + b"9" * 5000 + b"}", "thousands of digits"),  # Python refuses ints past 4300 digits
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),  # past Python's recursion limit
    (b'{"version": 1, "job_id": "a.1", "seed": 1, "request": {"prompt": "\\ud800"}}', "surrogate"),
])
def test_a_body_that_is_not_usable_json_is_a_schema_error(worker: Worker, body: bytes, fragment: str) -> None:
    reply = worker.http.post("/v1/jobs", content=body)
    assert reply.status_code == 400 and _code(reply) == "schema"
    assert fragment in reply.text


def test_unknown_jobs_are_404(worker: Worker) -> None:
    for reply in (worker.http.get("/v1/jobs/nope.1"), worker.http.get("/v1/jobs/nope.1/events"),
                  worker.http.post("/v1/jobs/nope.1/cancel")):
        assert reply.status_code == 404 and _code(reply) == "unknown_job"


def test_an_unexpected_error_in_a_handler_is_a_json_500_and_the_worker_keeps_serving(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(blob: str) -> bool:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(worker.service.store, "has_blob", broken)
    reply = worker.http.get(f"/v1/blobs/{'0' * 64}")
    assert reply.status_code == 500 and _code(reply) == "internal"
    assert "disk on fire" in reply.json()["error"]["message"]
    assert worker.http.get("/v1/health").status_code == 200


def test_a_second_client_with_the_token_is_served(worker: Worker) -> None:
    with client(worker.url) as other:
        assert other.get("/v1/health").json()["ok"] is True

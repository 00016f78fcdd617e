"""The bridge's client for a remote generation worker (docs/worker-api.md).

:class:`RemoteStage` is a :class:`~bridge.job.generation.GenerationStage`: the bridge's job runs
exactly as for a local job, except that the generation stage happens on the worker. It uploads
the request's input files and the bases' audio as content-addressed blobs (asking first, so a
re-sent hum is not uploaded twice), submits the task, follows its server-sent events into the
job's progress, posts a cancel as soon as the job's cancel token is set, and downloads the stems
(checking each blob's SHA-256).

Failures: if the worker cannot be reached or the connection drops mid-job, the stage waits up to
``wait_s`` for ``/v1/health`` to answer and then recovers once — it follows the job again if the
worker still has it (so a job that finished meanwhile is not run a second time), or submits it
again as attempt 2 if the worker lost it or its generator process crashed. A second failure, or
no answer in time, fails the job with ``worker_failed`` or ``worker_unreachable``. Errors the
worker reports for the job itself (a bad request, a model that cannot run) keep their codes.

httpx is used for its timeouts, streaming and connection reuse; it is small and pure Python.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge.job.generation import Bases, GenerationOutcome, StagedProgress
from bridge.job.request import Request
from bridge.remote.wire import (
    WireError,
    audio_from_wav,
    blob_id,
    outcome_from_json,
    task_upload,
)
from conditioning.types import Audio
from models.base import CancelToken, GenerationCancelled

log = logging.getLogger(__name__)

#: Share of the job's progress the generation stage covers (the bridge writes files after it).
STAGE_SHARE = 0.9


class WorkerError(RuntimeError):
    """A remote job failed; ``code`` is the error code the bridge reports (OSC, mailbox, status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Lost(Exception):
    """The connection to the worker failed (refused, dropped, or silent past the stall time)."""


@dataclass(frozen=True)
class WorkerSettings:
    """Where the worker is and how patient to be with it.

    Attributes:
        url: the worker's base URL, e.g. ``http://gpu-box:9100`` (https behind a TLS proxy).
        token: the bearer token the worker was started with.
        wait_s: how long to wait for an unreachable worker to come back before failing, seconds.
        connect_timeout_s: TCP/TLS connect timeout per call, seconds.
        stall_s: a progress stream silent this long counts as a lost connection, seconds (the
            worker sends a heartbeat at least every 2 s).
        poll_s: interval between health checks while waiting, seconds.
    """

    url: str
    token: str
    wait_s: float = 60.0
    connect_timeout_s: float = 5.0
    stall_s: float = 10.0
    poll_s: float = 0.5

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"worker URL {self.url!r} must look like http://HOST:PORT or https://HOST:PORT")
        if parts.username or parts.password:
            raise ValueError("put the worker's token in --worker-token-file, not in the URL")
        if not self.token:
            raise ValueError("the worker needs a token: pass --worker-token-file FILE (or STEMBRIDGE_WORKER_TOKEN)")

    @property
    def label(self) -> str:
        """The worker as status shows it (scheme, host and port; never the token)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def to_options(self) -> dict[str, Any]:
        """As the ``worker`` entry of a runner's ``model_options``."""
        return {"url": self.url, "token": self.token, "wait_s": self.wait_s, "stall_s": self.stall_s}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> WorkerSettings:
        """Inverse of :meth:`to_options`."""
        return cls(url=str(options["url"]), token=str(options["token"]),
                   wait_s=float(options.get("wait_s", 60.0)), stall_s=float(options.get("stall_s", 10.0)))


def _error_of(response: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    """(code, message, the error object) of a worker's error answer."""
    try:
        err = response.json().get("error") or {}
    except (ValueError, AttributeError):
        err = {}
    code = str(err.get("code") or f"http_{response.status_code}")
    message = str(err.get("message") or response.text[:200] or response.reason_phrase)
    return code, message, err if isinstance(err, dict) else {}


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a server-sent event stream."""
    event: str = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


class WorkerClient:
    """The calls of docs/worker-api.md, each raising :class:`_Lost` when the worker cannot be reached.

    Args:
        settings: where the worker is.
        transport: an httpx transport (tests pass an in-process one), or None for the network.
    """

    def __init__(self, settings: WorkerSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(30.0, connect=settings.connect_timeout_s, read=settings.stall_s)
        self._http = httpx.Client(
            base_url=settings.url.rstrip("/"), timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {settings.token}"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise _Lost(f"{method} {path}: {exc or type(exc).__name__}") from exc

    def _checked(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code == 401:
            raise WorkerError("worker_auth", f"the worker at {self.settings.label} refused the token; check "
                                             "--worker-token-file against the worker's --token-file")
        if response.status_code >= 500:
            code, message, _ = _error_of(response)
            raise _Lost(f"{what}: the worker answered {response.status_code} ({code}: {message})")
        return response

    def healthy(self) -> bool:
        """True when ``GET /v1/health`` answers 200."""
        try:
            return self._checked(self._call("GET", "/v1/health"), "health").status_code == 200
        except _Lost:
            return False

    def upload(self, blobs: Mapping[str, bytes]) -> int:
        """Upload the blobs the worker lacks; returns how many bytes were sent."""
        sent = 0
        for ref, data in blobs.items():
            if self._checked(self._call("HEAD", f"/v1/blobs/{ref}"), "blob check").status_code == 200:
                continue
            response = self._checked(self._call("PUT", f"/v1/blobs/{ref}", content=data), "upload")
            if response.status_code not in (200, 201):
                code, message, _ = _error_of(response)
                raise WorkerError(code, f"the worker refused an upload: {message}")
            sent += len(data)
        return sent

    def submit(self, body: Mapping[str, Any], blobs: Mapping[str, bytes]) -> None:
        """Submit the task, its blobs uploaded first (:meth:`upload`); idempotent for the same job id and body.

        Blobs the worker reports missing (removed by its clean-up since) are sent again from ``blobs``.
        """
        for _ in range(2):
            response = self._checked(self._call("POST", "/v1/jobs", json=body), "submit")
            if response.status_code in (200, 202):
                return
            code, message, err = _error_of(response)
            if code == "missing_blobs":  # removed by the worker's clean-up since we asked
                self.upload({r: blobs[r] for r in err.get("missing", []) if r in blobs})
                continue
            raise WorkerError(code, message)
        raise WorkerError("worker_failed", "the worker kept asking for files it had been sent")

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The job document, or None when the worker does not know the job."""
        response = self._checked(self._call("GET", f"/v1/jobs/{job_id}"), "job state")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            code, message, _ = _error_of(response)
            raise WorkerError(code, message)
        doc = response.json()
        return doc if isinstance(doc, dict) else None

    def cancel(self, job_id: str) -> None:
        """Ask the worker to stop ``job_id`` (best effort)."""
        try:
            self._call("POST", f"/v1/jobs/{job_id}/cancel")
        except _Lost as exc:
            log.warning("could not tell the worker to cancel %s: %s", job_id, exc)

    def events(self, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's events as (event name, data object) until the stream ends."""
        try:
            with self._http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
                self._checked(response, "progress stream")
                if response.status_code != 200:
                    response.read()
                    code, message, _ = _error_of(response)
                    raise WorkerError(code, message) if code != "unknown_job" else _Lost("the worker lost the job")
                for event, data in _sse(response.iter_lines()):
                    try:
                        payload = json.loads(data)
                    except ValueError:
                        raise WorkerError("worker_failed", f"the worker sent an unreadable {event} event") from None
                    yield event, payload if isinstance(payload, dict) else {}
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise _Lost(f"progress stream of {job_id}: {exc or type(exc).__name__}") from exc

    def blob(self, ref: str) -> bytes:
        """Download a blob and check its SHA-256."""
        response = self._checked(self._call("GET", f"/v1/blobs/{ref}"), "download")
        if response.status_code != 200:
            code, message, _ = _error_of(response)
            raise WorkerError("worker_failed", f"a stem could not be downloaded ({code}: {message})")
        if blob_id(response.content) != ref:
            raise _Lost(f"stem {ref[:12]}… arrived damaged (its SHA-256 does not match)")
        return response.content


class RemoteStage:
    """The generation stage of one job, run on a remote worker.

    Args:
        settings: where the worker is.
        job_id: the bridge's job id (the worker's job ids are ``<job_id>.<attempt>``).
        transport: an httpx transport for tests, or None.
    """

    def __init__(self, settings: WorkerSettings, job_id: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.job_id = job_id
        self._transport = transport
        #: Bytes uploaded by the last call, over all its attempts (the benchmark reports it).
        self.uploaded_bytes = 0

    def __call__(
        self, request: Request, *, seed: int, bases: Bases, progress: StagedProgress, cancel: CancelToken
    ) -> GenerationOutcome:
        """Run the generation stage of ``request`` on the worker (see the module docstring)."""
        upload = task_upload(request, seed=seed, bases=bases)
        client = WorkerClient(self.settings, transport=self._transport)
        try:
            return self._run(client, upload.document, upload.blobs, progress, cancel)
        finally:
            client.close()

    def _run(
        self, client: WorkerClient, body: dict[str, Any], blobs: dict[str, bytes],
        progress: StagedProgress, cancel: CancelToken,
    ) -> GenerationOutcome:
        self.uploaded_bytes = 0
        attempt = 1
        recovered = False
        ever_answered = False
        progress.report(0.0, f"sending the job to {self.settings.label}")
        submitted = False
        while True:
            remote_id = f"{self.job_id}.{attempt}"
            try:
                if not submitted:
                    self.uploaded_bytes += client.upload(blobs)
                    client.submit({**body, "job_id": remote_id}, blobs)
                    submitted = True
                ever_answered = True
                doc = self._follow(client, remote_id, progress, cancel)
                if doc.get("state") == "done":
                    return self._download(client, doc)
                error = doc.get("error") or {}
                code, message = str(error.get("code") or "worker_failed"), str(error.get("message") or "")
                if code == "cancelled":
                    raise GenerationCancelled("the job was cancelled")
                if code != "worker_crashed":
                    raise WorkerError(code, message)
                if recovered:
                    raise WorkerError("worker_failed", f"the worker's generator crashed twice on this job: {message}")
                log.warning("job %s: the worker's generator crashed (%s); running it again", self.job_id, message)
                recovered, attempt, submitted = True, attempt + 1, False
            except _Lost as exc:
                cancel.check()
                if recovered:
                    code = "worker_failed" if ever_answered else "worker_unreachable"
                    raise WorkerError(code, f"the worker at {self.settings.label} failed again during this job "
                                            f"({exc}); check the worker's log and send the job again") from None
                recovered = True
                log.warning("job %s: lost the worker (%s); waiting up to %.0f s for it", self.job_id, exc,
                            self.settings.wait_s)
                progress.report(0.0, f"waiting for the worker at {self.settings.label}")
                self._wait_for(client, cancel, ever_answered)
                try:
                    known = client.job(remote_id) if submitted else None
                except _Lost as again:
                    raise WorkerError("worker_failed", f"the worker at {self.settings.label} came back but "
                                                       f"failed again ({again})") from None
                if known is None or (known.get("error") or {}).get("code") == "worker_crashed":
                    attempt, submitted = (attempt + 1 if submitted else attempt), False

    def _wait_for(self, client: WorkerClient, cancel: CancelToken, ever_answered: bool) -> None:
        deadline = time.monotonic() + self.settings.wait_s
        while not client.healthy():
            cancel.check()
            if time.monotonic() >= deadline:
                code = "worker_failed" if ever_answered else "worker_unreachable"
                raise WorkerError(
                    code,
                    f"the worker at {self.settings.label} did not answer for {self.settings.wait_s:.0f} s; "
                    "start it (stembridge worker) or check the URL, then send the job again",
                )
            time.sleep(self.settings.poll_s)

    def _follow(
        self, client: WorkerClient, remote_id: str, progress: StagedProgress, cancel: CancelToken
    ) -> dict[str, Any]:
        """Follow the job's events to its end; returns the final job document (without result on failure)."""
        stop = threading.Event()

        def watch() -> None:  # post the cancel at once, even while the stream read blocks
            while not stop.wait(0.05):
                if cancel.cancelled:
                    client.cancel(remote_id)
                    return

        watcher = threading.Thread(target=watch, name="worker-cancel", daemon=True)
        watcher.start()
        try:
            for event, data in client.events(remote_id):
                if event in ("state", "progress"):
                    fraction = float(data.get("fraction", 0.0) or 0.0)
                    message = str(data.get("message") or "")
                    if message:
                        progress.report(STAGE_SHARE * fraction, message)
                elif event == "done":
                    return data
                elif event == "failed":
                    return {"state": "failed", "error": data}
                elif event == "cancelled":
                    return {"state": "cancelled", "error": {"code": "cancelled", "message": "cancelled"}}
            raise _Lost("the progress stream ended before the job did")
        finally:
            stop.set()

    def _download(self, client: WorkerClient, doc: Mapping[str, Any]) -> GenerationOutcome:
        def load(ref: str) -> Audio:
            return audio_from_wav(client.blob(ref))

        try:
            return outcome_from_json(doc.get("result"), load)
        except WireError as exc:
            raise WorkerError("worker_failed", f"the worker's result is unreadable: {exc}") from None

"""The job runner a bridge uses when its generation happens on a remote worker.

``stembridge serve --worker URL`` makes the bridge's worker process call :func:`run_on_worker`
instead of :func:`bridge.job.pipeline.run_request`: the same job, with the generation stage
sent to the worker (:class:`bridge.remote.client.RemoteStage`). Reading the bases and writing
stems, exports and the manifest stay on this machine, so DAW scripts see no difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bridge.job.layout import new_job_id
from bridge.job.pipeline import JobResult, run_request
from bridge.job.request import Request
from bridge.remote.client import RemoteStage, WorkerSettings
from models.base import CancelToken

#: The runner target the bridge configures for a remote worker.
REMOTE_RUNNER = "bridge.remote.runner:run_on_worker"


def run_on_worker(
    request: Request,
    *,
    job_id: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> JobResult:
    """Run ``request`` with its generation on the worker named in ``model_options["worker"]``.

    Args:
        request, job_id, progress, cancel: as for :func:`bridge.job.pipeline.run_request`.
        model_options: ``{"worker": WorkerSettings.to_options()}`` (model options themselves
            belong to the worker: ``stembridge worker --model-path …``).

    Raises:
        bridge.remote.client.WorkerError: ``worker_unreachable``, ``worker_failed``,
            ``worker_auth``, or the worker's own code for the job.
        and whatever :func:`~bridge.job.pipeline.run_request` raises.
    """
    options = dict(model_options or {})
    if "worker" not in options:
        raise ValueError("run_on_worker needs model_options['worker'] (the worker's URL and token)")
    settings = WorkerSettings.from_options(options["worker"])
    job_id = job_id or new_job_id()
    return run_request(request, job_id=job_id, progress=progress, cancel=cancel,
                       stage=RemoteStage(settings, job_id))

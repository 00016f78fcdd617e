"""The worker scaled out on Ray Serve (``stembridge worker --ray CONFIG``).

Two deployments make one Serve application:

- ``Generation`` (:class:`GenerationReplica`): each replica holds a
  :class:`~bridge.gpuworker.task.ModelCache` (models loaded once and kept warm, ``[models]
  preload`` loaded before the replica takes requests) and runs
  :func:`~bridge.gpuworker.task.execute_task`, each task in a thread of its own, up to
  ``max_ongoing_requests`` at once on the shared cache (so concurrent takes can batch on one
  generator). Its :meth:`~GenerationReplica.run` streams ``("started" | "progress" | "done" |
  "failed", ...)`` items back; cancelling the response sets the task's
  :class:`~models.base.CancelToken`. Replicas reserve ``num_gpus``/``num_cpus`` each and
  autoscale between ``min`` and ``max``.
- ``Ingress`` (:class:`IngressReplica`): one replica serving the worker's own web app
  (:func:`bridge.gpuworker.app.build_app`, docs/worker-api.md) with a :class:`RayExecutor`, so
  jobs, blobs and progress streams live on disk where that replica runs (the head node).

:class:`RayExecutor` is the :class:`~bridge.gpuworker.executor.Executor` over the Generation
handle; a replica dying mid-task fails that task with ``worker_crashed`` (the bridge then
submits attempt 2, docs/worker-api.md). Ray is imported lazily, only here, so the standalone
worker never imports it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.gpuworker.executor import TaskFailed, TaskProgress
from bridge.gpuworker.ray_config import RayConfigError, RayServeConfig
from bridge.gpuworker.task import GenerationTask, ModelCache, TaskResult, execute_task
from bridge.server.worker import error_code
from models.base import CancelToken

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

log = logging.getLogger(__name__)

#: Name of the Serve application.
APP_NAME = "stembridge-worker"
#: Shortest interval between two progress items streamed for one task, in seconds.
PROGRESS_INTERVAL_S = 0.1
#: How long a cancelled replica call waits for its thread to stop, in seconds.
CANCEL_GRACE_S = 5.0
#: How often a cancel token is checked by the executor, in seconds.
CANCEL_POLL_S = 0.1
#: Concurrent HTTP requests (progress streams included) the one ingress replica serves.
INGRESS_MAX_ONGOING = 1000
#: A replica's report of its loaded models is forgotten after this many seconds.
LOADED_TTL_S = 60.0

# Job ids running in this process (a Generation replica): for diagnostics and tests, read with
# ``actor.__ray_call__.remote(lambda _: running_here())``.
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()


def running_here() -> list[str]:
    """The job ids whose tasks run in this process now (a Generation replica's)."""
    with _RUNNING_LOCK:
        return sorted(_RUNNING)


def _failure(exc: BaseException) -> tuple[str, str]:
    """(code, message) for what a task raised, as the bridge's generator process reports it."""
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without torch here
        return "out_of_memory", f"the GPU ran out of memory ({exc}); try a smaller model or a shorter range"
    code = error_code(exc)
    message = str(exc) or type(exc).__name__
    if code == "internal":
        log.error("task failed", exc_info=exc)
        message = f"{type(exc).__name__}: {message}"
    return code, message


def _replica_name() -> str:
    """This replica's Ray actor name ("" outside Ray)."""
    import sys

    ray = sys.modules.get("ray")  # never start Ray just to learn a name
    if ray is None or not ray.is_initialized():
        return ""
    try:
        return str(ray.get_runtime_context().get_actor_name() or "")
    except Exception:  # not an actor (a driver), or an older runtime context
        return ""


class GenerationReplica:
    """One replica of the ``Generation`` deployment: a warm model cache and task threads.

    Args:
        model_options: keyword options of every generator.
        max_models: generators kept loaded.
        preload: models loaded now, before the replica takes requests.
        threads: tasks run at once (the deployment's ``max_ongoing_requests``).
        work_dir: folder of the tasks' temporary projects (default: the system's temp folder).
    """

    def __init__(
        self,
        model_options: dict[str, Any],
        max_models: int,
        preload: tuple[str, ...],
        threads: int,
        work_dir: str | None = None,
    ) -> None:
        self._cache = ModelCache(model_options, max_models=max_models)
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="generation")
        self._work_dir = Path(work_dir) if work_dir else None
        self._name = _replica_name() or f"pid-{os.getpid()}"
        for name in preload:
            started = time.perf_counter()
            self._cache(name)
            log.info("replica %s: %s loaded in %.1f s", self._name, name, time.perf_counter() - started)

    def loaded(self) -> tuple[str, list[str]]:
        """(this replica's name, the models it holds loaded)."""
        return self._name, self._cache.loaded

    def _execute(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> tuple[Any, ...]:
        with _RUNNING_LOCK:
            _RUNNING.add(task.job_id)
        try:
            result = execute_task(task, models=self._cache, progress=progress, cancel=cancel,
                                  work_dir=self._work_dir)
            return ("done", result)
        # the replica boundary: every failure travels back as (code, message), none as an exception
        except Exception as exc:
            return ("failed", *_failure(exc))
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(task.job_id)

    async def run(self, task: GenerationTask) -> AsyncIterator[tuple[Any, ...]]:
        """Run ``task`` in a thread, streaming its progress.

        Yields ``("started", replica, loaded_models)`` first, then ``("progress", fraction,
        message)`` at most every :data:`PROGRESS_INTERVAL_S` while something changed, and last
        ``("done", TaskResult, loaded_models)`` or ``("failed", code, message)``. Cancelling the
        call (the caller's ``response.cancel()``) cancels the task and waits up to
        :data:`CANCEL_GRACE_S` for its thread to stop.
        """
        loop = asyncio.get_running_loop()
        cancel = CancelToken()
        lock = threading.Lock()
        latest: list[tuple[float, str]] = []

        def progress(fraction: float, message: str) -> None:
            with lock:
                latest[:] = [(float(fraction), str(message))]

        future = loop.run_in_executor(self._pool, self._execute, task, progress, cancel)
        try:
            yield ("started", self._name, self._cache.loaded)
            sent: tuple[float, str] | None = None
            while True:
                await asyncio.wait({future}, timeout=PROGRESS_INTERVAL_S)
                with lock:
                    now = latest[0] if latest else None
                if now is not None and now != sent:
                    sent = now
                    yield ("progress", *now)
                if future.done():
                    break
            outcome = future.result()
            yield (*outcome, self._cache.loaded) if outcome[0] == "done" else outcome
        finally:
            if not future.done():
                cancel.cancel()
                try:
                    await asyncio.wait({future}, timeout=CANCEL_GRACE_S)
                except asyncio.CancelledError:
                    pass
                if not future.done():
                    log.warning("task %s did not stop within %.0f s of its cancel", task.job_id, CANCEL_GRACE_S)


class RayExecutor:
    """The :class:`~bridge.gpuworker.executor.Executor` over the Generation deployment's handle.

    Args:
        handle: the ``Generation`` deployment's handle.
    """

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle
        self._loaded: dict[str, tuple[float, list[str]]] = {}  # replica -> (when reported, models)
        self._refreshing: asyncio.Task[None] | None = None
        self._streams: set[Any] = set()

    def _note(self, replica: str, models: list[str]) -> None:
        self._loaded[replica] = (time.monotonic(), list(models))

    async def _refresh(self) -> None:
        try:
            replica, models = await self._handle.loaded.remote()
            self._note(replica, models)
        except Exception as exc:  # health must answer even while no replica does
            log.info("could not ask a replica for its models: %s", exc)

    def models_loaded(self) -> list[str]:
        """The models the replicas reported loaded in the last :data:`LOADED_TTL_S` seconds.

        Reports come with every task; when none came lately a replica is asked in the background
        (so the next call answers with it).
        """
        now = time.monotonic()
        fresh = {r: m for r, (t, m) in self._loaded.items() if now - t < LOADED_TTL_S}
        if not fresh and (self._refreshing is None or self._refreshing.done()):
            try:
                self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            except RuntimeError:  # no event loop here: answer with what is known
                pass
        return sorted({m for models in fresh.values() for m in models})

    async def _watch(self, cancel: CancelToken, stream: Any) -> None:
        while not cancel.cancelled:
            await asyncio.sleep(CANCEL_POLL_S)
        stream.cancel()

    async def run(self, task: GenerationTask, progress: TaskProgress, cancel: CancelToken) -> TaskResult:
        """Run ``task`` on a replica (see :meth:`bridge.gpuworker.executor.Executor.run`).

        Raises:
            TaskFailed: the task's own failure; "cancelled" after ``cancel``; "worker_crashed"
                when the replica (or its node) died, or no replica could be reached.
        """
        from ray.exceptions import (
            NodeDiedError,
            ObjectLostError,
            RayActorError,
            RayError,
            WorkerCrashedError,
        )
        from ray.serve.exceptions import DeploymentUnavailableError, RequestCancelledError

        stream: Any = self._handle.options(stream=True).run.remote(task)
        self._streams.add(stream)
        watcher = asyncio.create_task(self._watch(cancel, stream))
        replica = ""
        try:
            async for item in stream:
                kind = item[0]
                if kind == "started":
                    replica = str(item[1])
                    self._note(replica, item[2])
                elif kind == "progress":
                    progress(float(item[1]), str(item[2]))
                elif kind == "done":
                    self._note(replica, item[2])
                    result: TaskResult = item[1]
                    return result
                elif kind == "failed":
                    raise TaskFailed(str(item[1]), str(item[2]))
            raise TaskFailed("internal", "the replica ended the task without a result")
        except RequestCancelledError:
            raise TaskFailed("cancelled", "the job was cancelled") from None
        except (RayActorError, WorkerCrashedError, NodeDiedError, ObjectLostError, DeploymentUnavailableError) as exc:
            self._loaded.pop(replica, None)
            log.warning("task %s: replica %s died: %s", task.job_id, replica or "?", exc)
            raise TaskFailed("worker_crashed", f"the generation replica running the job died "
                                               f"({type(exc).__name__}); submit it again") from None
        except RayError as exc:
            raise TaskFailed("internal", f"Ray failed the task: {type(exc).__name__}: {exc}") from None
        except asyncio.CancelledError:
            stream.cancel()
            raise
        finally:
            watcher.cancel()
            self._streams.discard(stream)

    async def close(self) -> None:
        """Cancel the tasks still streaming (the replicas stop them)."""
        for stream in list(self._streams):
            stream.cancel()
        self._streams.clear()
        if self._refreshing is not None:
            self._refreshing.cancel()


class WorkerAppFactory:
    """Builds the worker's web app in the ingress replica (picklable; the token is read there).

    The token file is read where the app runs, so the token never travels in the deployment's
    arguments.

    Args:
        config: the validated configuration.
    """

    def __init__(self, config: RayServeConfig) -> None:
        self._config = config

    def worker_config(self, token: str) -> Any:
        """The :class:`~bridge.gpuworker.app.WorkerConfig` of the ingress's app.

        ``run_slots`` is every replica's capacity (``max`` x ``max_ongoing_requests``), so the
        app hands the Generation deployment as many tasks at once as its replicas can run.
        """
        from bridge.gpuworker.app import WorkerConfig

        cfg, rep = self._config, self._config.replicas
        return WorkerConfig(
            state_dir=cfg.state_dir, token=token, name=cfg.name, max_upload_bytes=cfg.max_upload_mb * 1024 * 1024,
            max_queue=cfg.max_queue, keep_hours=cfg.keep_hours, run_slots=rep.max * rep.max_ongoing_requests,
        )

    def __call__(self, executor: RayExecutor) -> Any:
        """The ASGI app over ``executor``."""
        from bridge.gpuworker.app import build_app

        return build_app(self.worker_config(self._config.token()), executor)


class IngressReplica:
    """The one ``Ingress`` replica: the worker's web app on a :class:`RayExecutor`.

    Args:
        app_factory: builds the ASGI app from an executor (``build_app`` with its config bound).
        generation: the Generation deployment's handle (Serve passes it for the bound deployment).
    """

    def __init__(self, app_factory: Callable[[RayExecutor], Any], generation: DeploymentHandle) -> None:
        self._factory = app_factory
        self._generation = generation

    def __serve_build_asgi_app__(self) -> Any:
        """The ASGI app Serve's proxy sends this deployment's HTTP requests to."""
        return self._factory(RayExecutor(self._generation))


def generation_deployment(config: RayServeConfig) -> Any:
    """The ``Generation`` deployment bound to ``config``'s models and scaling (a Serve Application)."""
    from ray import serve

    rep = config.replicas
    deployment = serve.deployment(
        name="Generation",
        ray_actor_options={"num_gpus": rep.num_gpus, "num_cpus": rep.num_cpus},
        max_ongoing_requests=rep.max_ongoing_requests,
        graceful_shutdown_timeout_s=rep.graceful_shutdown_s,
        autoscaling_config={
            "min_replicas": rep.min,
            "max_replicas": rep.max,
            "initial_replicas": rep.initial,
            "target_ongoing_requests": rep.target_ongoing_requests,
        },
    )(GenerationReplica)
    return deployment.bind(dict(config.model_options), config.max_models, config.preload, rep.max_ongoing_requests)


def build_application(config: RayServeConfig) -> Any:
    """The whole Serve application: one ``Ingress`` replica in front of the Generation replicas."""
    from ray import serve

    ingress = serve.deployment(
        name="Ingress",
        num_replicas=1,
        max_ongoing_requests=INGRESS_MAX_ONGOING,
        # jobs and blobs are on the disk of the node it runs on: keep it on the head node
        ray_actor_options={"num_cpus": 0, "resources": {"node:__internal_head__": 0.001}},
    )(serve.ingress()(IngressReplica))
    return ingress.bind(WorkerAppFactory(config), generation_deployment(config))


def connect_ray(config: RayServeConfig) -> bool:
    """Join the cluster at ``[ray] address``, or start a local one on loopback.

    Returns:
        True when this call started the cluster (and so must shut it down), False otherwise.
    """
    import ray

    if ray.is_initialized():
        return False
    if config.ray_address:
        ray.init(address=config.ray_address, log_to_driver=False)
        return False
    # A cluster started here is this machine alone: every Ray service on loopback, no dashboard;
    # its workers import this very checkout of stembridge (not another one installed elsewhere).
    source = str(Path(__file__).resolve().parents[2])
    paths = [source, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != source]]
    ray.init(num_cpus=config.ray_num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}})
    return True


def check_resources(config: RayServeConfig, totals: dict[str, float]) -> None:
    """Refuse replicas this cluster can never place (else ``serve.run`` would wait forever).

    Args:
        config: the validated configuration.
        totals: the cluster's resources (``ray.cluster_resources()``), e.g. {"CPU": 8, "GPU": 1}.

    Raises:
        RayConfigError: one replica needs more GPUs or CPUs than the cluster has.
    """
    rep = config.replicas
    for key, need, fix in (("GPU", rep.num_gpus, 'num_gpus = 0 (with [models.options] device = "cpu")'),
                           ("CPU", rep.num_cpus, "a smaller num_cpus")):
        have = float(totals.get(key, 0.0))
        if need > have:
            raise RayConfigError(f"{config.source}: [replicas] num_{key.lower()}s = {need:g} per replica, but this "
                                 f"Ray cluster has {have:g} {key}(s); set {fix}, or run where there are enough")


def deploy(config: RayServeConfig) -> None:
    """Start Serve's HTTP proxy on ``host:port`` (if Serve is not running yet) and deploy the app.

    Returns once every replica is ready (models in ``preload`` loaded).

    Raises:
        RuntimeError: Serve could not deploy (a replica failed to start; its log says why).
    """
    from ray import serve

    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(build_application(config), name=APP_NAME, route_prefix="/")


def serve_forever(config: RayServeConfig, *, announce: Callable[[str], None] = print) -> None:
    """Connect to Ray, deploy the worker and block until Ctrl-C; then remove what was started.

    A cluster started here is shut down; on a joined cluster only this application is deleted.

    Raises:
        RayConfigError: the token file is unusable, or a replica needs more than this machine has.
        RuntimeError: Serve could not deploy (a replica failed to start; its log says why).
    """
    import ray
    from ray import serve

    config.token()  # a missing token file is refused before Ray starts
    started = connect_ray(config)
    try:
        if started:  # a joined cluster's autoscaler may add nodes; this machine will not grow
            check_resources(config, dict(ray.cluster_resources()))
        deploy(config)
        rep = config.replicas
        announce(f"stembridge worker {config.name!r} on Ray Serve: http://{config.host}:{config.port}/v1/health "
                 f"({rep.initial} of {rep.min}-{rep.max} generation replicas, {rep.num_gpus:g} GPU and "
                 f"{rep.num_cpus:g} CPU each, {rep.max_ongoing_requests} tasks at once per replica); "
                 "Ctrl-C stops it")
        while True:
            time.sleep(1.0)
    finally:
        try:
            if started:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        except Exception as exc:  # stopping anyway: say what was left behind
            log.warning("could not remove the Serve application %s: %s", APP_NAME, exc)
        if started:
            ray.shutdown()

"""The bridge server's wiring: builds the queue, job service, scheduler and transports and starts them.

``stembridge serve --project-dir DIR`` runs :func:`serve`. Nothing here handles a request: the
job service (:mod:`bridge.server.service`) does, fed by the OSC router, the mailbox and MIDI
controller actions. Threads: the OSC receiver, the intake thread (validates generate requests,
:mod:`bridge.server.intake`), the scheduler (drives the worker process) and the housekeeper
(:mod:`bridge.server.events`: polls the inbox, moves mailbox files of failed jobs, rewrites
status.json). Generation happens only in the worker process, so the server never imports torch.
One server per project: a lock file in ``<project>/stembridge/`` refuses a second one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from bridge.job.layout import ProjectLayout
from bridge.server.auth import TokenAuth
from bridge.server.controller import ControllerActions
from bridge.server.events import Housekeeper, JobEvents, sweep_leftovers
from bridge.server.intake import Intake
from bridge.server.queue import Job, JobQueue
from bridge.server.replies import Origin, Replier, SinkByScheme
from bridge.server.scheduler import Scheduler
from bridge.server.service import JobService
from bridge.server.status import StatusBoard
from bridge.server.worker import DEFAULT_RUNNER, WorkerProcess
from bridge.transports.mailbox import Mailbox
from bridge.transports.midi import (
    InputPort,
    PortOpener,
    TriggerRouter,
    list_input_ports,
    load_mapping,
    mido_opener,
    open_bound_ports,
)
from bridge.transports.osc import OscTransport
from bridge.transports.osc_router import OscRouter

if TYPE_CHECKING:  # the remote client (httpx, the job pipeline) is imported only by a bridge that uses one
    from bridge.remote.client import WorkerSettings

log = logging.getLogger(__name__)

class ServerBusyError(RuntimeError):
    """Another bridge already serves this project."""


@dataclass
class ServerConfig:
    """How to run the bridge.

    Attributes:
        project_dir: the DAW project folder (requests must point inside it).
        host: OSC bind address (loopback unless ``allow_remote``).
        osc_port: OSC UDP port (0 picks a free one).
        reply_port: send OSC replies to this port on the sender's host (None: the sender's port).
        allow_remote: accept a non-loopback host; requires ``token``.
        token: secret every OSC message must carry when ``allow_remote`` is set.
        max_queue: most jobs queued or running at once (a full queue answers "busy").
        runner: ``"module:function"`` the worker calls for each job.
        model_options: passed to the runner.
        midi_map: MIDI trigger mapping (None: ``<project>/stembridge/midi.toml`` if present).
        midi_ports: names of input ports to consider (None: ask mido).
        midi_opener: opens a MIDI input (tests use in-memory ports).
        poll_interval_s: inbox polling interval, seconds.
        cancel_grace_s: seconds a running job gets to stop after a cancel before it is killed.
        heartbeat_s: seconds between repeated progress reports of a running job.
        log_to_file: also log to ``<project>/stembridge/stembridge.log``.
        worker: a remote generation worker to run jobs on (``--worker URL``), or None for
            this machine's generator process.
    """

    project_dir: Path
    host: str = "127.0.0.1"
    osc_port: int = 9000
    reply_port: int | None = None
    allow_remote: bool = False
    token: str | None = None
    max_queue: int = 100
    runner: str = DEFAULT_RUNNER
    model_options: Mapping[str, Any] = field(default_factory=dict)
    midi_map: Path | None = None
    midi_ports: Iterable[str] | None = None
    midi_opener: PortOpener = mido_opener
    poll_interval_s: float = 0.2
    cancel_grace_s: float = 1.0
    heartbeat_s: float = 1.0
    log_to_file: bool = True
    worker: WorkerSettings | None = None

    @property
    def worker_label(self) -> str:
        """Where jobs run, as status shows it: ``"local"`` or the worker's URL (no token)."""
        return "local" if self.worker is None else self.worker.label


class BridgeServer:
    """A running bridge. Use as a context manager, or call :meth:`start` and :meth:`stop`.

    Raises (from the constructor):
        ValueError: an unsafe or inconsistent configuration (message says how to fix it).
        ServerBusyError: another bridge serves this project.
        PortBusyError: the OSC port is taken.
    """

    def __init__(self, config: ServerConfig) -> None:
        if config.allow_remote and not config.token:
            raise ValueError("--allow-remote needs --token (or STEMBRIDGE_TOKEN) so strangers cannot send jobs")
        if config.worker is not None and config.model_options:
            raise ValueError(
                "model options (" + ", ".join(sorted(config.model_options)) + ") belong to the worker when jobs run "
                "on one: pass them to `stembridge worker` on the GPU machine"
            )
        project = config.project_dir.resolve()
        if not project.is_dir():
            raise ValueError(f"project folder {str(config.project_dir)!r} does not exist; save the DAW project first")
        self.config = config
        self.layout = ProjectLayout(project).ensure()
        self._log_handler: logging.Handler | None = None
        if config.log_to_file:
            self._log_handler = logging.FileHandler(self.layout.log_file, encoding="utf-8")
            self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(self._log_handler)
            if logging.getLogger().level > logging.INFO or logging.getLogger().level == logging.NOTSET:
                logging.getLogger().setLevel(logging.INFO)
        self._lock_fh = self._take_lock()
        sweep_leftovers(self.layout)  # this server holds the project now: nothing else is writing
        self.queue = JobQueue(self.layout.queue_db, max_active=config.max_queue)
        try:
            for job in self.queue.recover():
                log.warning("job %s was running when the server stopped; it runs again", job.job_id)
            sinks = SinkByScheme()
            replier = Replier(sinks)
            auth = TokenAuth(config.token if config.allow_remote else None)
            self.status = StatusBoard(self.layout, self.queue, self._running)
            self.intake = Intake(replier)
            self.events = JobEvents(self.layout, sinks, self.status, finished=self._job_finished)
            self.scheduler = Scheduler(
                self.queue, self.layout, self.events, worker_factory=self._new_worker,
                cancel_grace_s=config.cancel_grace_s, heartbeat_s=config.heartbeat_s,
                worker_label=config.worker_label,
            )
            self.service = JobService(project, self.queue, self.scheduler, replier, self.status.snapshot, auth=auth,
                                      accepted=self.events.job_accepted)
            self.controller = ControllerActions(self.service, self.intake, replier)
            router = OscRouter(self.service, self.intake, replier, auth)
            self.osc = OscTransport(
                router.handle_message, host=config.host, port=config.osc_port,
                reply_port=config.reply_port, allow_remote=config.allow_remote,
            )
            sinks.add("osc", self.osc)
        except BaseException:
            self.queue.close()
            self._release_lock()
            if self._log_handler is not None:
                logging.getLogger().removeHandler(self._log_handler)
                self._log_handler.close()
            raise
        self.mailbox = Mailbox(self.layout, self.service)
        self.housekeeper = Housekeeper(self.status, [self.mailbox.poll_once, self.events.write_missing_manifests],
                                       self.mailbox.job_finished, interval_s=config.poll_interval_s)
        self._midi_ports: list[InputPort] = []
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> BridgeServer:
        """Start every thread and transport; returns self (if a step fails, what started is stopped)."""
        try:
            # jobs that ended while the disk was full (or just before a kill) still get their manifest
            self.events.write_missing_manifests([*self.queue.jobs("failed"), *self.queue.jobs("cancelled")])
            self.scheduler.start()
            self.osc.start()
            self.housekeeper.start()
            self._open_midi()
            self.status.write()
        except BaseException:
            self.stop()  # no thread may outlive a server that failed to start
            raise
        log.info("stembridge bridge serving %s on %s:%d", self.layout.project_dir, self.osc.host, self.osc.port)
        return self

    def stop(self) -> None:
        """Shut down cleanly: stop transports, requeue a running job, close the queue.

        Every server thread (OSC, intake, housekeeping, scheduler) has ended when this returns.
        A second call does nothing (``start`` stops a server that failed to start; its caller's
        own ``stop`` must not then hide that error).
        """
        if self._stopped:
            return
        self._stopped = True
        for port in self._midi_ports:
            port.close()
        self.osc.stop()
        self.intake.close()
        self.housekeeper.stop()
        self.scheduler.stop()
        self.osc.close()
        self.housekeeper.flush()
        try:
            self.status.write()
        except OSError as exc:  # a full disk must not keep the lock and the queue open
            log.warning("could not write status.json at shutdown: %s", exc)
        self.queue.close()
        self._release_lock()
        log.info("stembridge bridge stopped")
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()

    def __enter__(self) -> BridgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def osc_port(self) -> int:
        """The bound OSC port."""
        return self.osc.port

    # -- internals -------------------------------------------------------------------------
    def _job_finished(self, job: Job) -> None:  # the housekeeper is built after the events it serves
        self.housekeeper.job_finished(job)

    def _running(self) -> tuple[str, float, str] | None:
        return self.scheduler.running()

    def _new_worker(self) -> WorkerProcess:
        runner, options = self.config.runner, self.config.model_options
        if self.config.worker is not None:  # generation happens on the remote worker
            from bridge.remote.runner import REMOTE_RUNNER

            runner, options = REMOTE_RUNNER, {"worker": self.config.worker.to_options()}
        return WorkerProcess(
            runner, model_options=options,
            log_file=self.layout.log_file if self.config.log_to_file else None,
        )

    def _open_midi(self) -> None:
        path = self.config.midi_map or (self.layout.root / "midi.toml")
        bindings = load_mapping(path)
        if not bindings:
            return
        router = TriggerRouter(bindings, lambda action: self.controller.trigger(action, Origin(source="midi", trusted=True)))
        names: Iterable[str]
        if self.config.midi_ports is not None:
            names = self.config.midi_ports
        else:
            try:
                names = list_input_ports()
            except OSError as exc:
                log.warning("MIDI is not available (%s); MIDI triggers are off", exc)
                return
        self._midi_ports = open_bound_ports(router, names, self.config.midi_opener)

    def _take_lock(self) -> Any:
        path = self.layout.root / "server.lock"
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the server's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            fh.close()
            raise ServerBusyError(
                f"another stembridge bridge ({owner}) is already serving {self.layout.project_dir}; "
                "use that one or stop it first"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        return fh

    def _release_lock(self) -> None:
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        finally:
            self._lock_fh.close()


def serve(config: ServerConfig, *, stop: threading.Event | None = None,
          ready: Callable[[BridgeServer], None] | None = None) -> int:
    """Run the bridge until Ctrl-C, SIGTERM or ``stop`` is set. Returns an exit code (0 on a clean stop).

    Raises:
        ValueError, ServerBusyError, PortBusyError: the server could not start (see BridgeServer).
    """
    stop = stop or threading.Event()
    server = BridgeServer(config)
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum: int, frame: FrameType | None) -> None:
            stop.set()
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        server.start()
        if ready is not None:
            ready(server)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        log.info("Ctrl-C: shutting down")
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0

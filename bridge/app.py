"""The bridge server: wires the queue, worker, dispatcher and transports together.

``stembridge serve --project-dir DIR`` runs :func:`serve`. Threads: the OSC receiver, the
dispatcher's intake thread (validates generate requests), the scheduler (drives the worker
process) and a housekeeping thread (polls the inbox, moves mailbox files of failed jobs, rewrites
status.json). Generation happens only in the worker process, so the server never imports torch.
One server per project: a lock file in ``<project>/stembridge/`` refuses a second one.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bridge.job.layout import ProjectLayout, write_json_atomic
from bridge.job.manifest import Failure, Manifest
from bridge.server.queue import Job, JobQueue
from bridge.server.scheduler import Scheduler
from bridge.server.service import PREFIX, Dispatcher, Origin, OscArg
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

log = logging.getLogger(__name__)

#: Shortest interval between two OSC progress messages of one job, in seconds.
OSC_PROGRESS_INTERVAL_S = 0.2


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
        self.queue = JobQueue(self.layout.queue_db, max_active=config.max_queue)
        try:
            for job in self.queue.recover():
                log.warning("job %s was running when the server stopped; it runs again", job.job_id)
            self.status = StatusBoard(self.layout, self.queue, self._running)
            self.scheduler = Scheduler(
                self.queue, self.layout, self, worker_factory=self._new_worker,
                cancel_grace_s=config.cancel_grace_s, heartbeat_s=config.heartbeat_s,
            )
            self.dispatcher = Dispatcher(
                project, self.queue, self.scheduler, self, self.status.snapshot,
                token=config.token if config.allow_remote else None,
            )
            self.osc = OscTransport(
                self.dispatcher.handle_message, host=config.host, port=config.osc_port,
                reply_port=config.reply_port, allow_remote=config.allow_remote,
            )
        except BaseException:
            self.queue.close()
            self._release_lock()
            if self._log_handler is not None:
                logging.getLogger().removeHandler(self._log_handler)
                self._log_handler.close()
            raise
        self.mailbox = Mailbox(self.layout, self.dispatcher)
        self._finished: collections.deque[Job] = collections.deque()
        self._last_osc_progress: dict[str, float] = {}
        self._stop = threading.Event()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="stembridge-housekeeping", daemon=True)
        self._midi_ports: list[InputPort] = []
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> BridgeServer:
        """Start every thread and transport; returns self."""
        self.scheduler.start()
        self.osc.start()
        self._housekeeper.start()
        self._open_midi()
        self.status.write()
        self._started = True
        log.info("stembridge bridge serving %s on %s:%d", self.layout.project_dir, self.osc.host, self.osc.port)
        return self

    def stop(self) -> None:
        """Shut down cleanly: stop transports, requeue a running job, close the queue."""
        self._stop.set()
        for port in self._midi_ports:
            port.close()
        self.osc.stop()
        self.dispatcher.close()
        if self._housekeeper.is_alive():
            self._housekeeper.join(timeout=5.0)
        self.scheduler.stop()
        self.osc.close()
        self._flush_finished()
        self.status.write()
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

    # -- ReplySink -------------------------------------------------------------------------
    def send(self, target: str, address: str, args: Sequence[OscArg]) -> None:
        """Deliver a reply through the transport that owns ``target``."""
        self.osc.send(target, address, args)

    # -- JobListener (scheduler thread) ----------------------------------------------------
    def job_started(self, job: Job) -> None:
        """Tell the client the job started."""
        self.status.mark_dirty()
        self._send_progress(job, 0.0, "started", force=True)

    def job_progress(self, job: Job, fraction: float, message: str) -> None:
        """Forward progress (throttled) to the job's client."""
        self.status.mark_dirty()
        self._send_progress(job, fraction, message, force=False)

    def job_finished(self, job: Job) -> None:
        """Announce the outcome and hand mailbox bookkeeping to the housekeeping thread."""
        self._last_osc_progress.pop(job.job_id, None)
        if job.state != "done":
            self._write_failure_manifest(job)
        if job.reply is not None:
            if job.state == "done":
                self.send(job.reply, PREFIX + "done", [job.job_id, job.manifest or ""])
            else:
                self.send(job.reply, PREFIX + "error", [job.job_id, job.error_code or job.state, job.error_message or ""])
        self._finished.append(job)
        self.status.mark_dirty()

    # -- internals -------------------------------------------------------------------------
    def _send_progress(self, job: Job, fraction: float, message: str, *, force: bool) -> None:
        if job.reply is None:
            return
        now = time.monotonic()
        last = self._last_osc_progress.get(job.job_id, 0.0)
        if force or fraction >= 1.0 or now - last >= OSC_PROGRESS_INTERVAL_S:
            self._last_osc_progress[job.job_id] = now
            self.send(job.reply, PREFIX + "progress", [job.job_id, float(fraction), message])

    def _write_failure_manifest(self, job: Job) -> None:
        path = self.layout.manifest_path(job.job_id)
        failure = Failure(job.error_code or job.state, job.error_message or "")
        doc = Manifest.failed(job.job_id, job.state, job.request, failure).to_json()
        try:
            write_json_atomic(path, doc)
        except FileExistsError:
            log.debug("manifest %s exists already", path.name)
        except OSError as exc:
            log.warning("could not write %s: %s", path.name, exc)

    def _running(self) -> tuple[str, float, str] | None:
        return self.scheduler.running()

    def _new_worker(self) -> WorkerProcess:
        return WorkerProcess(
            self.config.runner, model_options=self.config.model_options,
            log_file=self.layout.log_file if self.config.log_to_file else None,
        )

    def _housekeeping(self) -> None:
        while not self._stop.wait(self.config.poll_interval_s):
            try:
                self.mailbox.poll_once()
                self._flush_finished()
                self.status.write_if_due()
            except OSError:  # a full or vanished disk must not stop the mailbox for good
                log.exception("housekeeping failed (mailbox, status.json); retrying")

    def _flush_finished(self) -> None:
        while self._finished:
            self.mailbox.job_finished(self._finished.popleft())

    def _open_midi(self) -> None:
        path = self.config.midi_map or (self.layout.root / "midi.toml")
        bindings = load_mapping(path)
        if not bindings:
            return
        router = TriggerRouter(bindings, lambda action: self.dispatcher.trigger(action, Origin(source="midi", trusted=True)))
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

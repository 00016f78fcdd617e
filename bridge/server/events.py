"""Job events and housekeeping: what the bridge does when a job starts, progresses or ends.

:class:`JobEvents` is the scheduler's listener: it sends ``/stembridge/progress <job_id>
<fraction> <message>`` (throttled), ``/stembridge/done <job_id> <manifest path>`` or
``/stembridge/error <job_id> <code> <message>`` to the job's sender (``interrupted`` when the bridge
stops during the job, which is queued again), logs one line per event at the default level
(:data:`JOB_LOG_NAME`), and writes the manifest of
a failed or cancelled job (again and again while the disk is full, and at start-up for any job that
ended without one). :class:`Housekeeper` is the thread that polls the inbox, hands finished
jobs to their transport's bookkeeping (the mailbox moves failed requests to ``inbox/failed/``)
and rewrites status.json.
"""

from __future__ import annotations

import collections
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from bridge.job.layout import ProjectLayout, write_json_atomic
from bridge.job.manifest import Failure, Manifest
from bridge.server.queue import Job
from bridge.server.replies import PREFIX, ReplySink
from bridge.server.status import StatusBoard
from bridge.server.threads import join_thread

log = logging.getLogger(__name__)

#: The logger of the one-line job events (accepted, started, every 25 %, done, error, interrupted);
#: the console shows it at the default level (``bridge.cli.console``).
JOB_LOG_NAME = "bridge.server.events.jobs"
job_log = logging.getLogger(JOB_LOG_NAME)

#: Shortest interval between two OSC progress messages of one job, in seconds.
OSC_PROGRESS_INTERVAL_S = 0.2
#: Progress is logged each time a job passes another multiple of this fraction (0.25: 25 %, 50 %, 75 %).
LOG_PROGRESS_STEP = 0.25
#: The message of ``/stembridge/error <job_id> interrupted <message>`` sent when the bridge stops during a job.
INTERRUPTED_MESSAGE = "the bridge was stopped during this job: re-queued, runs again when the bridge restarts"


#: Temporary files of ``write_json_atomic`` (``.<name>.<pid>.<hex>.tmp``).
_ATOMIC_TMP = re.compile(r"^\..+\.\d+\.[0-9a-f]{6}\.tmp$")


def sweep_leftovers(layout: ProjectLayout) -> list[str]:
    """Remove what a killed server or worker left half-done; call before anything runs.

    Only the bridge's own temporary names are touched: ``outbox/.<name>.<pid>.<hex>.tmp`` (a
    manifest or status.json being written) and ``renders/<job_id>.partial/`` (a take being
    rendered, never published; a job that runs again starts it afresh). Published takes and
    anything a musician made are never removed.

    Returns:
        The removed paths, relative to ``<project>/stembridge``.
    """
    removed: list[str] = []
    for folder, is_leftover in ((layout.outbox, lambda p: p.is_file() and _ATOMIC_TMP.match(p.name)),
                                (layout.renders, lambda p: p.is_dir() and not p.is_symlink()
                                 and p.name.endswith(".partial"))):
        try:
            entries = list(folder.iterdir())
        except FileNotFoundError:
            continue
        for path in entries:
            if not is_leftover(path):
                continue
            try:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as exc:
                log.warning("could not remove the leftover %s: %s", path.name, exc)
                continue
            removed.append(f"{folder.name}/{path.name}")
    if removed:
        log.info("removed what a stopped run left half-done: %s", ", ".join(removed))
    return removed


class JobEvents:
    """Announces job events to their senders (the scheduler's :class:`~bridge.server.scheduler.JobListener`).

    Args:
        layout: the project's folders (failure manifests go to its outbox).
        sink: delivers replies to the job's reply address.
        status: marked dirty on every event so status.json follows.
        finished: called with each finished job, on the scheduler thread; must return at once.
    """

    def __init__(self, layout: ProjectLayout, sink: ReplySink, status: StatusBoard,
                 finished: Callable[[Job], None]) -> None:
        self.layout = layout
        self._sink = sink
        self._status = status
        self._finished = finished
        self._last_osc_progress: dict[str, float] = {}
        #: How many progress steps (LOG_PROGRESS_STEP) of each running job were logged.
        self._logged_steps: dict[str, int] = {}
        #: Failed or cancelled jobs whose manifest could not be written yet (a full disk), by id.
        self._unwritten: dict[str, Job] = {}
        self._unwritten_lock = threading.Lock()

    def job_accepted(self, job: Job) -> None:
        """Log that ``job`` was queued (its sender got ``/stembridge/accepted`` already)."""
        job_log.info("job %s accepted from %s (model %s)", job.job_id, job.source or "?",
                     job.request.get("model", "arranger"))

    def job_started(self, job: Job) -> None:
        """Tell the client the job started."""
        self._status.mark_dirty()
        self._logged_steps[job.job_id] = 0
        job_log.info("job %s started", job.job_id)
        self._send_progress(job, 0.0, "started", force=True)

    def job_progress(self, job: Job, fraction: float, message: str) -> None:
        """Forward progress (throttled) to the job's client; log each 25 % passed (fraction 0-1)."""
        self._status.mark_dirty()
        self._log_progress(job, fraction, message)
        self._send_progress(job, fraction, message, force=False)

    def job_interrupted(self, job: Job) -> None:
        """The bridge stops while ``job`` runs; it is queued again. Log it and tell the sender.

        The sender gets ``/stembridge/error <job_id> interrupted <INTERRUPTED_MESSAGE>``; the job
        keeps its id, and its events come again when a bridge for the project starts and runs it.
        """
        self._last_osc_progress.pop(job.job_id, None)
        self._logged_steps.pop(job.job_id, None)
        job_log.warning("job %s interrupted: re-queued, runs again when the bridge restarts", job.job_id)
        if job.reply is not None:
            self._sink.send(job.reply, PREFIX + "error", [job.job_id, "interrupted", INTERRUPTED_MESSAGE])
        self._status.mark_dirty()

    def job_finished(self, job: Job) -> None:
        """Announce the outcome and hand mailbox bookkeeping to the housekeeping thread."""
        self._last_osc_progress.pop(job.job_id, None)
        self._logged_steps.pop(job.job_id, None)
        if job.state == "done":
            job_log.info("job %s done: %s", job.job_id, job.manifest or "")
        elif job.state == "cancelled":
            job_log.info("job %s cancelled", job.job_id)
        else:
            job_log.warning("job %s failed: %s: %s", job.job_id, job.error_code or job.state, job.error_message or "")
        if job.state != "done":
            self._write_failure_manifest(job)
        if job.reply is not None:
            if job.state == "done":
                self._sink.send(job.reply, PREFIX + "done", [job.job_id, job.manifest or ""])
            else:
                self._sink.send(job.reply, PREFIX + "error",
                                [job.job_id, job.error_code or job.state, job.error_message or ""])
        self._finished(job)
        self._status.mark_dirty()

    def _log_progress(self, job: Job, fraction: float, message: str) -> None:
        """One line each time ``job`` passes another LOG_PROGRESS_STEP (25 %, 50 %, 75 %; done logs 100 %)."""
        steps = int(min(max(fraction, 0.0), 1.0) / LOG_PROGRESS_STEP + 1e-9)
        if fraction >= 1.0 or steps <= self._logged_steps.get(job.job_id, 0):
            return
        self._logged_steps[job.job_id] = steps
        job_log.info("job %s %d %% (%s)", job.job_id, round(100 * steps * LOG_PROGRESS_STEP), message)

    def _send_progress(self, job: Job, fraction: float, message: str, *, force: bool) -> None:
        if job.reply is None:
            return
        now = time.monotonic()
        last = self._last_osc_progress.get(job.job_id, 0.0)
        if force or fraction >= 1.0 or now - last >= OSC_PROGRESS_INTERVAL_S:
            self._last_osc_progress[job.job_id] = now
            self._sink.send(job.reply, PREFIX + "progress", [job.job_id, float(fraction), message])

    def write_missing_manifests(self, jobs: Iterable[Job] = ()) -> int:
        """Write the manifest of each failed or cancelled job that has none yet; returns how many remain.

        Jobs whose manifest could not be written when they ended are retried here (the housekeeper
        calls this every round), so a DAW watching the outbox hears of the failure once the disk has
        room again. ``jobs`` adds more to check (at start-up: the queue's failed and cancelled jobs).
        """
        with self._unwritten_lock:
            for job in jobs:
                if job.state != "done" and not self.layout.manifest_path(job.job_id).exists():
                    self._unwritten[job.job_id] = job
            pending = list(self._unwritten.values())
        for job in pending:
            self._write_failure_manifest(job)
        with self._unwritten_lock:
            return len(self._unwritten)

    def _write_failure_manifest(self, job: Job) -> None:
        path = self.layout.manifest_path(job.job_id)
        failure = Failure(job.error_code or job.state, job.error_message or "")
        doc = Manifest.failed(job.job_id, job.state, job.request, failure).to_json()
        try:
            write_json_atomic(path, doc)
        except FileExistsError:
            log.debug("manifest %s exists already", path.name)
        except OSError as exc:
            with self._unwritten_lock:
                first = job.job_id not in self._unwritten
                self._unwritten[job.job_id] = job
            if first:
                log.warning("could not write %s (%s); trying again until there is room", path.name, exc)
            return
        with self._unwritten_lock:
            self._unwritten.pop(job.job_id, None)


class Housekeeper:
    """A thread that polls the inbox, settles finished jobs and keeps status.json current.

    Args:
        status: the status board (rewritten when due).
        tasks: run every round, in order (the mailbox's ``poll_once``, retrying failure manifests).
        settle: bookkeeping for one finished job (the mailbox's ``job_finished``).
        interval_s: seconds between rounds.
    """

    def __init__(self, status: StatusBoard, tasks: Sequence[Callable[[], object]], settle: Callable[[Job], None],
                 *, interval_s: float) -> None:
        self._status = status
        self._tasks = list(tasks)
        self._settle = settle
        self._interval_s = interval_s
        self._finished: collections.deque[Job] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stembridge-housekeeping", daemon=True)

    def job_finished(self, job: Job) -> None:
        """Queue ``job`` for settling on the housekeeping thread (safe from any thread)."""
        self._finished.append(job)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; returns once it has ended (after the round under way)."""
        self._stop.set()
        join_thread(self._thread, "housekeeping")

    def flush(self) -> None:
        """Settle every finished job now (used at shutdown, after the scheduler stopped)."""
        while self._finished:
            self._settle(self._finished.popleft())

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                for task in self._tasks:
                    if self._stop.is_set():  # stop() waits for this round: end it early
                        return
                    task()
                self.flush()
                self._status.write_if_due()
            except OSError:  # a full or vanished disk must not stop the mailbox for good
                log.exception("housekeeping failed (mailbox, status.json); retrying")

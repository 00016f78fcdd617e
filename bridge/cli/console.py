"""Console logging for the ``stembridge`` commands: what a musician sees in the terminal.

Warnings and errors always show; with ``-v`` every INFO line does too. The bridge's one-line job
events (accepted, started, every 25 %, done, error, interrupted; logger
:data:`bridge.server.events.JOB_LOG_NAME`), and those of ``stembridge worker`` (logger
:data:`WORKER_JOB_LOG_NAME`), show at the default level, so neither is silent while it works.
The handler is removed when the command returns, so a command run in-process (tests, a host
application) leaves no handler on a stream that may be closed later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bridge.server.events import JOB_LOG_NAME

#: The logger of the worker's job events (``bridge.gpuworker.app.job_log``; named here so the
#: console does not import the web app).
WORKER_JOB_LOG_NAME = "bridge.gpuworker.jobs"
_JOB_LOGS = frozenset({JOB_LOG_NAME, WORKER_JOB_LOG_NAME})


class ConsoleFilter(logging.Filter):
    """Passes warnings and errors, job events, and with ``verbose`` everything else too."""

    def __init__(self, *, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        """True when ``record`` belongs on the console."""
        return self.verbose or record.levelno >= logging.WARNING or record.name in _JOB_LOGS


@contextmanager
def console_logging(*, verbose: bool) -> Iterator[logging.Handler]:
    """Log to stderr for the duration of one command (root logger at INFO; the log file gets INFO)."""
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    console.addFilter(ConsoleFilter(verbose=verbose))
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(console)
    root.setLevel(logging.INFO)
    try:
        yield console
    finally:
        root.removeHandler(console)
        console.close()

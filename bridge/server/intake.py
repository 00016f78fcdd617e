"""The intake thread: where work that may read files (validating a generate request) runs.

Transports must not do slow work on their own threads, so they hand it to :class:`Intake`, which
runs it on one thread in arrival order. A failure is logged with its traceback and answered with
``/stembridge/error "" internal <why>``, never lost in a future nobody reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bridge.server.replies import Origin, Replier

log = logging.getLogger(__name__)


class Intake:
    """One worker thread running submitted work in order.

    Args:
        replier: answers the sender when a piece of work fails unexpectedly.
    """

    def __init__(self, replier: Replier) -> None:
        self._replier = replier
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stembridge-intake")

    def submit(self, work: Callable[[], None], origin: Origin) -> None:
        """Run ``work`` on the intake thread; a failure is logged with its traceback and answered."""

        def guarded() -> None:
            # The intake thread's boundary: an executor would keep the exception in a future nobody
            # reads, so the sender would hear nothing. Log the traceback and answer instead.
            try:
                work()
            except Exception as exc:
                log.exception("internal error while handling a request from %s", origin.source)
                self._replier.error(origin, "", "internal",
                                    f"the bridge failed on this request: {type(exc).__name__}: {exc}")

        self._pool.submit(guarded)

    def close(self) -> None:
        """Finish queued work and stop the thread."""
        self._pool.shutdown(wait=True)

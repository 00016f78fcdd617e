"""Stopping the bridge's threads for good: a thread is joined before its owner's ``stop()`` returns.

A thread left running after ``stop()`` would log into handlers (a console, a test's captured
stream) that its owner's caller may close next, and would touch a queue that is being closed.
So owners wait until their thread has ended; every :data:`STOP_WARN_S` seconds that it has not,
a warning names it, so a stuck shutdown is visible rather than silent (a second Ctrl-C still
interrupts the wait).
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

#: Seconds between two "still waiting" warnings while a thread is being stopped.
STOP_WARN_S = 5.0


def join_thread(thread: threading.Thread, what: str) -> None:
    """Wait until ``thread`` has ended (at once if it never started or is the calling thread).

    Args:
        thread: the thread to wait for; its owner has already asked it to stop.
        what: names it in the warning ("scheduler", "housekeeping").
    """
    if thread.ident is None or thread is threading.current_thread():
        return
    waited = 0.0
    while True:
        thread.join(STOP_WARN_S)
        if not thread.is_alive():
            return
        waited += STOP_WARN_S
        log.warning("still waiting for the %s thread to stop (%.1f s so far)", what, waited)

"""Rate-limited logging, so a flood of bad messages cannot fill the project's disk with log lines.

The bridge logs into ``<project>/stembridge/stembridge.log``. Every rejected request is worth a
line, but a sender stuck in a loop (or a fuzzer) can send thousands a second; past ``limit``
lines in ``window_s`` seconds the rest are counted, and the count is logged when the window ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any


class LogLimiter:
    """Logs at most ``limit`` lines per ``window_s`` seconds through ``logger``, then a count.

    Args:
        logger: where the lines go.
        what: names the suppressed lines in the count ("malformed datagrams").
        limit: lines logged per window.
        window_s: window length in seconds.
        clock: monotonic clock in seconds (injected by tests).
    """

    def __init__(self, logger: logging.Logger, what: str, *, limit: int = 20, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self.what, self.limit, self.window_s, self._clock = logger, what, limit, window_s, clock
        self._start, self._count, self.suppressed = clock(), 0, 0
        self._lock = threading.Lock()

    def log(self, level: int, text: str, *args: Any) -> None:
        """Log ``text % args`` at ``level`` unless this window's limit is reached."""
        with self._lock:
            now = self._clock()
            if now - self._start > self.window_s:
                if self.suppressed:
                    self._log.warning("%d more %s were not logged", self.suppressed, self.what)
                self._start, self._count, self.suppressed = now, 0, 0
            self._count += 1
            if self._count > self.limit:
                self.suppressed += 1
                return
        self._log.log(level, text, *args)

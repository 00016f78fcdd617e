"""A flood of bad messages logs a bounded number of lines, then a count."""

from __future__ import annotations

import logging

import pytest

from bridge.server.loglimit import LogLimiter


def test_lines_past_the_limit_are_counted_and_the_count_is_logged_when_the_window_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    logger = logging.getLogger("test.loglimit")
    limiter = LogLimiter(logger, "bad things", limit=3, window_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.loglimit"):
        for i in range(1000):
            limiter.log(logging.INFO, "bad thing %d", i)
        assert [r.getMessage() for r in caplog.records] == ["bad thing 0", "bad thing 1", "bad thing 2"]
        assert limiter.suppressed == 997
        now[0] = 10.5
        limiter.log(logging.INFO, "bad thing %d", 1000)
    assert [r.getMessage() for r in caplog.records][3:] == ["997 more bad things were not logged", "bad thing 1000"]
    assert limiter.suppressed == 0

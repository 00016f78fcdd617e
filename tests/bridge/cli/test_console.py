"""Console logging: job events show without -v, other INFO lines only with it; no handler outlives a command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bridge.cli.console import ConsoleFilter
from bridge.cli.main import main
from bridge.server.events import JOB_LOG_NAME


def _record(name: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "a line", None, None)


def test_the_default_console_shows_job_events_and_warnings_only() -> None:
    quiet, verbose = ConsoleFilter(verbose=False), ConsoleFilter(verbose=True)
    assert quiet.filter(_record(JOB_LOG_NAME, logging.INFO))
    assert quiet.filter(_record("bridge.server.worker", logging.WARNING))
    assert not quiet.filter(_record("bridge.server.worker", logging.INFO))
    assert verbose.filter(_record("bridge.server.worker", logging.INFO))


def test_a_command_run_in_process_leaves_no_handler_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = list(logging.getLogger().handlers)
    assert main(["status", "--project-dir", str(tmp_path)]) == 1  # no bridge has run here
    assert logging.getLogger().handlers == before
    assert "no bridge has run" in capsys.readouterr().err

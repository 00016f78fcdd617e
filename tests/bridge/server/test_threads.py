"""Server threads are joined before their owner's stop() returns, however long their last round takes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bridge.job.layout import ProjectLayout
from bridge.server import threads as threads_module
from bridge.server.events import Housekeeper
from bridge.server.queue import JobQueue
from bridge.server.status import StatusBoard
from tests.bridge.server_helpers import make_project


def test_housekeeper_stop_waits_for_a_round_longer_than_the_warning_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(threads_module, "STOP_WARN_S", 0.05)
    layout = ProjectLayout(make_project(tmp_path / "song")).ensure()
    queue = JobQueue(layout.queue_db)
    inside, release, ended = threading.Event(), threading.Event(), threading.Event()

    def slow_task() -> None:  # a mailbox poll still reading files when the bridge stops
        inside.set()
        release.wait(5.0)
        ended.set()

    keeper = Housekeeper(StatusBoard(layout, queue, lambda: None), [slow_task], lambda job: None, interval_s=0.01)
    keeper.start()
    assert inside.wait(5.0)
    threading.Timer(0.4, release.set).start()
    with caplog.at_level(logging.WARNING, logger=threads_module.__name__):
        keeper.stop()
    assert ended.is_set()  # stop() returned only after the round ended
    assert not any(t.name == "stembridge-housekeeping" and t.is_alive() for t in threading.enumerate())
    assert any("still waiting for the housekeeping thread" in r.getMessage() for r in caplog.records)
    queue.close()


def test_joining_a_thread_that_never_started_returns_at_once() -> None:
    threads_module.join_thread(threading.Thread(target=lambda: None), "never started")

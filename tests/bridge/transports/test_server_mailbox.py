"""The file mailbox: inbox requests and control files, done/failed, status.json."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.app import BridgeServer, ServerConfig
from bridge.job.layout import ProjectLayout
from bridge.server.queue import JobQueue
from bridge.server.service import Outcome
from bridge.server.status import read_status
from bridge.transports import mailbox as mailbox_module
from bridge.transports.mailbox import Mailbox
from tests.bridge.server_helpers import RUNNER, make_project, tiny_request, wait_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BridgeServer]:
    srv = BridgeServer(ServerConfig(project_dir=make_project(tmp_path / "song"), osc_port=0, runner=RUNNER,
                                    poll_interval_s=0.05)).start()
    yield srv
    srv.stop()


def drop(inbox: Path, name: str, data: object) -> None:
    tmp = inbox / f"{name}.tmp"
    tmp.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    tmp.rename(inbox / name)


def finished(server: BridgeServer, job_id: str) -> dict[str, object] | None:
    status = read_status(server.layout.project_dir) or {}
    return next((f for f in status.get("finished", []) if f["job_id"] == job_id), None)


def test_a_request_named_like_a_job_id_runs_as_that_job(server: BridgeServer) -> None:
    inbox = server.layout.inbox
    job_id = "20260101-120000-abcdef"
    (inbox / "half.json.tmp").write_text('{"version": 1, "proj')  # a partial write is never read
    drop(inbox, f"{job_id}.json", tiny_request(server.layout.project_dir))
    assert wait_for(lambda: finished(server, job_id) is not None, 60)
    assert finished(server, job_id) == {"job_id": job_id, "status": "done",
                                        "manifest": f"stembridge/outbox/{job_id}.json", "error": None,
                                        "worker": "local"}
    assert (inbox / "done" / f"{job_id}.json").is_file()
    assert (inbox / "half.json.tmp").is_file()
    assert json.loads((server.layout.outbox / f"{job_id}.json").read_text())["status"] == "done"


def test_rejected_files_go_to_failed_with_the_error_beside_them(server: BridgeServer) -> None:
    inbox = server.layout.inbox
    drop(inbox, "broken.json", "{nope")
    drop(inbox, "outside.json", tiny_request(server.layout.project_dir, inputs={"chords": {"midi": "../x.mid"}}))
    drop(inbox, "cancel.json", {"version": 1, "action": "cancel", "job_id": "nosuch"})
    drop(inbox, "weird.json", {"version": 1, "action": "explode", "job_id": "x"})
    failed = inbox / "failed"
    assert wait_for(lambda: len(list(failed.glob("*.error.txt"))) == 4, 10)
    assert "invalid_json" in (failed / "broken.error.txt").read_text()
    assert "code: path" in (failed / "outside.error.txt").read_text()
    assert "unknown_job" in (failed / "cancel.error.txt").read_text()
    assert "unknown action" in (failed / "weird.error.txt").read_text()
    assert {p.name for p in failed.glob("*.json")} == {"broken.json", "outside.json", "cancel.json", "weird.json"}
    assert not list(inbox.glob("*.json"))


def test_cancel_and_variation_control_files(server: BridgeServer) -> None:
    inbox = server.layout.inbox
    drop(inbox, "slow.json", tiny_request(server.layout.project_dir, prompt="slow 30"))
    assert wait_for(lambda: bool((read_status(server.layout.project_dir) or {}).get("running")), 20)
    status = read_status(server.layout.project_dir) or {}
    job_id = status["running"][0]["job_id"]
    assert status["running"][0]["source"] == "inbox/done/slow.json"
    assert 0.0 <= status["running"][0]["progress"] <= 1.0 and status["running"][0]["message"]
    drop(inbox, "stop.json", {"version": 1, "action": "cancel", "job_id": job_id})
    assert wait_for(lambda: finished(server, job_id) is not None, 10)
    entry = finished(server, job_id)
    assert entry is not None and entry["status"] == "cancelled"
    # the cancelled request moves on to failed/ with its error
    assert wait_for(lambda: (inbox / "failed" / "slow.error.txt").is_file(), 5)
    assert "cancelled" in (inbox / "failed" / "slow.error.txt").read_text()
    new_id = "20260101-120001-000001"
    drop(inbox, f"{new_id}.json", {"version": 1, "action": "variation", "job_id": job_id})
    assert wait_for(lambda: finished(server, new_id) is not None, 60)
    assert finished(server, new_id)["status"] == "done"  # type: ignore[index]
    job = server.queue.get(new_id)
    assert job is not None and job.parent == job_id and job.request["seed"] != 3
    drop(inbox, f"{new_id}.json", {"version": 1, "action": "variation", "job_id": job_id})
    assert wait_for(lambda: (inbox / "failed" / f"{new_id}.error.txt").is_file(), 5)
    assert "duplicate_job" in (inbox / "failed" / f"{new_id}.error.txt").read_text()


def test_files_that_break_the_parsers_are_rejected_and_the_mailbox_keeps_going(server: BridgeServer) -> None:
    inbox = server.layout.inbox
    drop(inbox, "deep.json", "[" * 100_000 + "]" * 100_000)  # past Python's recursion limit
    huge = tiny_request(server.layout.project_dir)
    huge["sections"] = [{"name": "A", "start_bar": 10**400, "end_bar": 2}]  # too large for a float
    drop(inbox, "huge.json", json.dumps(huge))
    failed = inbox / "failed"
    assert wait_for(lambda: len(list(failed.glob("*.error.txt"))) == 2, 10)
    assert "code: invalid_json" in (failed / "deep.error.txt").read_text()
    assert "code: input" in (failed / "huge.error.txt").read_text()
    job_id = "20260101-120002-abcdef"
    drop(inbox, f"{job_id}.json", tiny_request(server.layout.project_dir))
    assert wait_for(lambda: finished(server, job_id) is not None, 60)
    assert finished(server, job_id)["status"] == "done"  # type: ignore[index]


def test_links_in_the_inbox_are_rejected_and_never_followed(server: BridgeServer, tmp_path: Path) -> None:
    inbox = server.layout.inbox
    outside = tmp_path / "elsewhere.json"  # a valid request, outside the project
    outside.write_text(json.dumps(tiny_request(server.layout.project_dir)))
    (inbox / "link.json").symlink_to(outside)
    (inbox / "dangling.json").symlink_to(tmp_path / "nothing-here.json")
    failed = inbox / "failed"
    assert wait_for(lambda: len(list(failed.glob("*.error.txt"))) == 2, 10)
    for name in ("link", "dangling"):
        assert "regular files, not links" in (failed / f"{name}.error.txt").read_text()
        assert (failed / f"{name}.json").is_symlink()
    assert outside.is_file() and not server.queue.jobs("queued") and not server.queue.recent_finished()


def test_json_that_is_not_an_object_is_a_schema_error_not_an_internal_one(server: BridgeServer) -> None:
    inbox = server.layout.inbox
    for name, text in (("list", "[]"), ("null", "null"), ("number", "3")):
        drop(inbox, f"{name}.json", text)
    failed = inbox / "failed"
    assert wait_for(lambda: len(list(failed.glob("*.error.txt"))) == 3, 10)
    for name in ("list", "null", "number"):
        note = (failed / f"{name}.error.txt").read_text()
        assert "code: schema" in note and "must be a JSON object" in note


class _Rejecting:
    """A job service that refuses every request (the mailbox only needs ``generate``)."""

    def generate(self, obj: object, origin: object, *, job_id: str | None = None) -> Outcome:
        return Outcome(False, "", "schema", "a reason long enough to be read half-written " * 20)


def test_the_error_text_is_complete_before_the_request_appears_in_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = ProjectLayout(make_project(tmp_path / "song")).ensure()
    mailbox = Mailbox(layout, _Rejecting())  # type: ignore[arg-type]
    seen: list[str] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        dst = Path(dst)
        if dst.parent == mailbox.failed and dst.suffix == ".json":  # what a DAW script sees at this moment
            err = dst.with_name(dst.stem + ".error.txt")
            seen.append(err.read_text(encoding="utf-8") if err.exists() else "")
        real_replace(src, dst)

    monkeypatch.setattr(mailbox_module.os, "replace", replace)
    drop(layout.inbox, "bad.json", {"version": 1, "nope": True})
    assert mailbox.poll_once() == 1
    assert (mailbox.failed / "bad.json").is_file()
    text = (mailbox.failed / "bad.error.txt").read_text(encoding="utf-8")
    assert text.startswith("code: schema\n") and text.endswith("\n") and "half-written" in text
    assert seen == [text]  # written in full before the move, not after it
    assert sorted(p.name for p in mailbox.failed.iterdir()) == ["bad.error.txt", "bad.json"]  # no temp file left


def test_a_failed_job_moves_on_to_failed_with_its_error_already_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = ProjectLayout(make_project(tmp_path / "song")).ensure()
    mailbox = Mailbox(layout, _Rejecting())  # type: ignore[arg-type]
    mailbox.done.mkdir(parents=True, exist_ok=True)
    (mailbox.done / "take.json").write_text("{}", encoding="utf-8")
    (mailbox.failed / "take.error.txt").parent.mkdir(parents=True, exist_ok=True)
    (mailbox.failed / "take.error.txt").write_text("an older note nobody moved\n", encoding="utf-8")
    queue = JobQueue(layout.queue_db)
    queue.enqueue("20260101-000000-aaaaaa", {"version": 1}, source="inbox/done/take.json")
    queue.finish("20260101-000000-aaaaaa", "failed", error_code="internal", error_message="out of memory")
    job = queue.get("20260101-000000-aaaaaa")
    queue.close()
    assert job is not None
    seen: list[str] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        dst = Path(dst)
        if dst.parent == mailbox.failed and dst.suffix == ".json":
            err = dst.with_name(dst.stem + ".error.txt")
            seen.append(err.read_text(encoding="utf-8") if err.exists() else "")
        real_replace(src, dst)

    monkeypatch.setattr(mailbox_module.os, "replace", replace)
    mailbox.job_finished(job)
    assert seen == ["code: internal\njob_id: 20260101-000000-aaaaaa\nmessage: out of memory\n"]
    # the older note keeps its name and its text: the request moves in beside a fresh name
    assert (mailbox.failed / "take.error.txt").read_text() == "an older note nobody moved\n"
    assert (mailbox.failed / "take-2.json").is_file()
    assert (mailbox.failed / "take-2.error.txt").read_text() == (
        "code: internal\njob_id: 20260101-000000-aaaaaa\nmessage: out of memory\n")

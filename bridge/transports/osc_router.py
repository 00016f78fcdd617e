"""The ``/stembridge/*`` OSC address space: one handler per address, each a call on the job service.

:class:`OscRouter` turns decoded OSC messages (address + arguments) into calls on
:class:`~bridge.server.service.JobService` and answers through a
:class:`~bridge.server.replies.Replier`. It knows nothing about sockets: the UDP transport
(:mod:`bridge.transports.osc`) feeds it. Generate and variation may read files, so they run on
the intake thread in arrival order; ping, status and cancel are answered at once.

Replies (DESIGN.md): ``/stembridge/pong 1``; ``/stembridge/accepted <job_id>``;
``/stembridge/progress <job_id> <fraction> <message>``; ``/stembridge/done <job_id>
<manifest path>``; ``/stembridge/error <job_id or ""> <code> <message>``;
``/stembridge/status <job_id> <state> <fraction> <message>`` for one job, or
``/stembridge/status <queued> <running> <status.json text>`` for the whole queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bridge.job.request import REQUEST_VERSION
from bridge.server.auth import TokenAuth
from bridge.server.intake import Intake
from bridge.server.loglimit import LogLimiter
from bridge.server.replies import PREFIX, Origin, Replier
from bridge.server.service import JobService, Outcome

log = logging.getLogger(__name__)


class OscRouter:
    """Routes ``/stembridge/<name>`` messages to the job service.

    Args:
        service: the job service every transport uses.
        intake: runs generate/variation off the receive thread.
        replier: answers the sender.
        auth: with a token, every untrusted message carries it as its last string argument (a
            generate request may carry it as the ``"token"`` key instead).
    """

    def __init__(self, service: JobService, intake: Intake, replier: Replier, auth: TokenAuth) -> None:
        self._service = service
        self._intake = intake
        self._replier = replier
        self._auth = auth
        self._unknown = LogLimiter(log, "unknown addresses")
        self._client_errors = LogLimiter(log, "DAW script errors", limit=100)
        self._handlers: dict[str, Callable[[list[Any], Origin], None]] = {
            "ping": self._on_ping, "generate": self._on_generate, "variation": self._on_variation,
            "cancel": self._on_cancel, "status": self._on_status, "client_error": self._on_client_error,
        }

    def handle_message(self, address: str, args: Sequence[Any], origin: Origin) -> None:
        """Handle one message and answer through the replier (never raises for bad input)."""
        args = list(args)
        if not origin.trusted and self._auth.required:
            args, presented = self._auth.strip_from_args(args)
            if presented:
                origin = replace(origin, trusted=True)
            elif address != PREFIX + "generate":
                self._replier.error(origin, "", "auth", "this bridge needs a token as the last argument")
                return
        name = address[len(PREFIX):] if address.startswith(PREFIX) else ""
        handler = self._handlers.get(name)
        if handler is None:
            self._unknown.log(logging.WARNING, "unknown OSC address %r from %s", address[:200], origin.reply)
            self._replier.error(origin, "", "unknown_address",
                                f"unknown address {address!r}; use {PREFIX}ping, generate, variation, cancel or status")
            return
        handler(args, origin)

    def _on_client_error(self, args: list[Any], origin: Origin) -> None:
        """A DAW script reports an error on its side: ``<source> <message>``; logged, not answered."""
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            self._replier.error(origin, "", "arguments",
                                f"{PREFIX}client_error takes two strings, source and message; got {_describe(args)}")
            return
        self._client_errors.log(logging.WARNING, "DAW script error from %s (%s): %s", args[0][:100], origin.reply,
                                args[1][:2000])

    def _on_ping(self, args: list[Any], origin: Origin) -> None:
        self._replier.reply(origin, "pong", [REQUEST_VERSION])

    def _on_generate(self, args: list[Any], origin: Origin) -> None:
        if len(args) != 1 or not isinstance(args[0], str | bytes):
            self._replier.error(origin, "", "arguments",
                                f"{PREFIX}generate takes one string: the request JSON or a path to it; got {_describe(args)}")
            return
        payload = args[0]
        self._intake.submit(lambda: self._answer_failure(self._service.generate(payload, origin), origin), origin)

    def _on_variation(self, args: list[Any], origin: Origin) -> None:
        if len(args) != 1 or not isinstance(args[0], str):
            self._replier.error(origin, "", "arguments",
                                f"{PREFIX}variation takes one string, the job id; got {_describe(args)}")
            return
        job_id = args[0]
        self._intake.submit(lambda: self._answer_failure(self._service.variation(job_id, origin), origin), origin)

    def _on_cancel(self, args: list[Any], origin: Origin) -> None:
        if len(args) != 1 or not isinstance(args[0], str):
            self._replier.error(origin, "", "arguments",
                                f"{PREFIX}cancel takes one string, the job id; got {_describe(args)}")
            return
        # a successful cancel is announced by the job's own /stembridge/error <id> cancelled
        self._answer_failure(self._service.cancel(args[0], origin), origin)

    def _on_status(self, args: list[Any], origin: Origin) -> None:
        if len(args) > 1 or (args and not isinstance(args[0], str)):
            self._replier.error(origin, "", "arguments",
                                f"{PREFIX}status takes no argument or a job id; got {_describe(args)}")
            return
        if not args:
            snap = self._service.queue_status()
            self._replier.reply(origin, "status", [len(snap["queued"]), len(snap["running"]), json.dumps(snap)])
            return
        status = self._service.job_status(args[0])
        if status is None:
            self._replier.error(origin, args[0], "unknown_job", f"there is no job {args[0]!r} in this project")
            return
        self._replier.reply(origin, "status", [status.job_id, status.state, status.fraction, status.message])

    def _answer_failure(self, outcome: Outcome, origin: Origin) -> None:
        if not outcome.ok:  # success was answered with /stembridge/accepted when queued
            self._replier.error(origin, outcome.job_id, outcome.code, outcome.message)


def _describe(args: Sequence[Any]) -> str:
    if not args:
        return "no arguments"
    return ", ".join(type(a).__name__ for a in args)

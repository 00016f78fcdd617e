"""Who sent a request and how answers reach them: origins, the reply sink and its OSC-shaped replies.

Every answer the bridge gives is an OSC-shaped message (an address under :data:`PREFIX` and a list
of arguments) sent to a transport address such as ``"osc:127.0.0.1:9001"``; a transport that
cannot answer (the mailbox, MIDI) has no reply address and its answers are only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.server.loglimit import LogLimiter

log = logging.getLogger(__name__)

PREFIX = "/stembridge/"
#: Longest error message sent over OSC, in characters.
MAX_REPLY_TEXT = 2000

OscArg = str | int | float | bytes | bool | None


class ReplySink(Protocol):
    """Delivers a reply to a transport address such as ``"osc:127.0.0.1:9001"``."""

    def send(self, target: str, address: str, args: Sequence[OscArg]) -> None:
        """Send ``address`` with ``args`` to ``target``; must not block for long."""


@dataclass(frozen=True)
class Origin:
    """Who sent a message.

    Attributes:
        source: "osc", "inbox/<file>", "midi" or "cli" (shown in status.json).
        reply: where replies and job events go, or None.
        trusted: True for local transports (mailbox, MIDI); OSC is trusted unless a token is set.
    """

    source: str
    reply: str | None = None
    trusted: bool = False


class SinkByScheme:
    """A :class:`ReplySink` that hands each reply to the transport owning the target's scheme.

    ``"osc:host:port"`` goes to the sink added for ``"osc"``; a target with no sink is logged and
    dropped (its sender has gone, or never could hear an answer).
    """

    def __init__(self) -> None:
        self._sinks: dict[str, ReplySink] = {}

    def add(self, scheme: str, sink: ReplySink) -> None:
        """Deliver targets starting with ``scheme:`` through ``sink``."""
        self._sinks[scheme] = sink

    def send(self, target: str, address: str, args: Sequence[OscArg]) -> None:
        """Send through the sink of ``target``'s scheme."""
        sink = self._sinks.get(target.partition(":")[0])
        if sink is None:
            log.debug("no transport for reply target %r (%s dropped)", target, address)
            return
        sink.send(target, address, args)


class Replier:
    """Sends OSC-shaped replies to an :class:`Origin` through a :class:`ReplySink`."""

    def __init__(self, sink: ReplySink) -> None:
        self._sink = sink
        self._errors = LogLimiter(log, "error replies", limit=100)

    def reply(self, origin: Origin, name: str, args: Sequence[OscArg]) -> None:
        """Send ``/stembridge/<name> args`` to ``origin`` (nothing if it has no reply address)."""
        if origin.reply is not None:
            self._sink.send(origin.reply, PREFIX + name, list(args))

    def error(self, origin: Origin, job_id: str, code: str, message: str) -> None:
        """Log (rate-limited) and send ``/stembridge/error <job_id> <code> <message>`` (message cut to MAX_REPLY_TEXT)."""
        self._errors.log(logging.INFO, "error for %s (%s): %s: %s", origin.source, job_id or "-", code, message)
        self.reply(origin, "error", [job_id, code, message[:MAX_REPLY_TEXT]])

"""The UDP transport's receive thread outlives a handler that fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bridge.server.replies import Origin
from bridge.transports.osc import OscTransport, decode_datagram, encode_message
from tests.bridge.server_helpers import OscClient


def test_a_failing_handler_is_answered_and_the_next_message_is_still_handled() -> None:
    seen: list[str] = []

    def handler(address: str, args: Sequence[Any], origin: Origin) -> None:
        if address == "/stembridge/boom":
            raise RuntimeError("the queue database is locked")
        seen.append(address)
        transport.send(origin.reply or "", "/stembridge/pong", [1])

    transport = OscTransport(handler, port=0)
    transport.start()
    client = OscClient(transport.port)
    try:
        client.send("/stembridge/boom")
        addr, args = client.recv(5.0)
        assert (addr, args[:2]) == ("/stembridge/error", ["", "internal"])
        assert "RuntimeError: the queue database is locked" in args[2]
        client.send("/stembridge/ping")
        assert client.recv(5.0) == ("/stembridge/pong", [1])
        assert seen == ["/stembridge/ping"]
    finally:
        client.close()
        transport.close()


def test_a_reply_echoing_text_that_is_not_unicode_is_still_sent() -> None:
    """An error may quote a client's lone surrogate (or a file name that is not UTF-8): the
    character goes out escaped instead of the whole reply failing to build."""
    data = encode_message("/stembridge/error", ["", "input", "no track named caf\udce9", "é", 3])
    assert decode_datagram(data) == [("/stembridge/error", ["", "input", "no track named caf\\udce9", "é", 3])]

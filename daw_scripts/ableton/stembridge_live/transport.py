"""UDP transport for OSC, polled from Live's tick: non-blocking, no threads (Live freezes with them)."""

from __future__ import annotations

import socket
from typing import Callable, List, Optional, Tuple

from .osc import OscArg, OscError, OscMessage, decode_packet, encode_message

#: Biggest datagram we send. macOS limits loopback UDP datagrams to 9216 bytes by default.
MAX_DATAGRAM = 8192


class UdpTransport:
    """Send OSC to the bridge and receive its replies on ``reply_port``.

    Args:
        host: the bridge's address (127.0.0.1: the bridge listens locally only).
        port: the bridge's OSC port (``stembridge serve --osc-port``, default 9000).
        reply_port: local port we listen on; the bridge answers to the port we send from.
        on_bad_packet: called with a message when a datagram cannot be decoded.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9000,
        reply_port: int = 9001,
        on_bad_packet: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.target = (host, port)
        self._on_bad_packet = on_bad_packet
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind((host, reply_port))

    @property
    def local_port(self) -> int:
        """The port replies arrive on."""
        return int(self._sock.getsockname()[1])

    def send(self, address: str, *args: OscArg) -> None:
        """Send one OSC message to the bridge.

        Raises:
            ValueError: the message is larger than one datagram (send a file path instead).
        """
        data = encode_message(address, list(args))
        if len(data) > MAX_DATAGRAM:
            raise ValueError(
                f"OSC message {address} is {len(data)} bytes, more than {MAX_DATAGRAM}; "
                "send the request as a file path instead"
            )
        try:
            self._sock.sendto(data, self.target)
        except BlockingIOError:
            pass  # send buffer full: the datagram is dropped, as UDP may do anyway

    def poll(self, limit: int = 64) -> List[Tuple[OscMessage, Tuple[str, int]]]:
        """Every message waiting now (at most ``limit`` datagrams); never blocks."""
        out: List[Tuple[OscMessage, Tuple[str, int]]] = []
        for _ in range(limit):
            try:
                data, sender = self._sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionResetError:
                continue  # Windows reports an earlier send to a closed port here
            try:
                for message in decode_packet(data):
                    out.append((message, sender))
            except OscError as exc:
                if self._on_bad_packet is not None:
                    self._on_bad_packet(f"ignored a bad OSC datagram from {sender}: {exc}")
        return out

    def close(self) -> None:
        """Release the port."""
        self._sock.close()

"""OSC over UDP: decode datagrams, hand messages to the router, send replies.

The receive thread only decodes and routes (:class:`~bridge.transports.osc_router.OscRouter`);
anything slow happens on the intake thread. A datagram that is not valid OSC is logged
(rate-limited) and answered with ``/stembridge/error "" malformed <why>``; the server keeps serving.

Messages are parsed by python-osc (:class:`pythonosc.osc_message.OscMessage`). Bundle framing
is split here rather than by ``pythonosc.osc_packet.OscPacket``/``OscBundle`` (python-osc
1.10.2), for reasons measured on that version: a 20-byte bundle whose element size is negative
(``#bundle\\0``, 8-byte time tag, ``-4``) makes ``OscBundle`` loop forever (still spinning
after 5 s, logging a warning per turn to the root logger), which would stop the receive thread
for good; an element size larger than the datagram is accepted and the truncated element parsed;
an element that is neither message nor bundle is skipped instead of reported; nesting depth is
unbounded. ``OscPacket`` also reorders messages by time tag, where the bridge handles them in
arrival order. ``tests/bridge/transports/test_server_fuzz.py`` pins each of these cases.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pythonosc import osc_message
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import BuildError, OscMessageBuilder
from pythonosc.osc_packet import ParseError

from bridge.job.text import escape_surrogates
from bridge.server.loglimit import LogLimiter
from bridge.server.replies import PREFIX, Origin, OscArg
from bridge.server.threads import join_thread

log = logging.getLogger(__name__)

#: Largest datagram accepted, in bytes (the largest a UDP packet can carry).
MAX_DATAGRAM = 65507
#: Deepest bundle nesting accepted.
MAX_BUNDLE_DEPTH = 8
#: Most messages accepted from one datagram.
MAX_MESSAGES = 64


class DatagramError(ValueError):
    """A datagram that is not a valid OSC packet."""


class PortBusyError(OSError):
    """The OSC port is taken by another program (or another bridge)."""


def decode_datagram(data: bytes) -> list[tuple[str, list[Any]]]:
    """Decode one UDP datagram into (address, arguments) pairs, bundles flattened in order.

    Bundle time tags are ignored: every message is handled as soon as it arrives.

    Raises:
        DatagramError: the bytes are not a valid OSC message or bundle.
    """
    if len(data) > MAX_DATAGRAM:
        raise DatagramError(f"datagram of {len(data)} bytes is too large")
    out: list[tuple[str, list[Any]]] = []
    _decode_into(bytes(data), out, 0)
    return out


# python-osc reports most problems as ParseError; a few malformed inputs surface as the
# underlying decoding errors, which are converted here (the cause is kept with `from`).
_DECODE_ERRORS = (
    ParseError, osc_message.ParseError, IndexError, struct.error, UnicodeDecodeError, ValueError,
    TypeError, OverflowError,
)


_BUNDLE_HEADER = b"#bundle\0"


def _bundle_elements(data: bytes) -> list[bytes]:
    """Split a bundle ("#bundle\\0", 8-byte time tag, then size-prefixed elements)."""
    if len(data) < 16 or len(data) % 4:
        raise DatagramError("bundle too short or not a multiple of 4 bytes")
    elements, pos = [], 16
    while pos < len(data):
        if pos + 4 > len(data):
            raise DatagramError("bundle element size is cut off")
        (size,) = struct.unpack(">i", data[pos : pos + 4])
        pos += 4
        if size <= 0 or size % 4 or pos + size > len(data):
            raise DatagramError(f"bundle element of {size} bytes does not fit the datagram")
        elements.append(data[pos : pos + size])
        pos += size
    return elements


def _decode_into(data: bytes, out: list[tuple[str, list[Any]]], depth: int) -> None:
    if depth > MAX_BUNDLE_DEPTH:
        raise DatagramError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
    if data.startswith(_BUNDLE_HEADER):
        for element in _bundle_elements(data):
            _decode_into(element, out, depth + 1)
        return
    if not data.startswith(b"/"):
        raise DatagramError("not an OSC message (no leading '/') or bundle ('#bundle')")
    if len(out) >= MAX_MESSAGES:
        raise DatagramError(f"more than {MAX_MESSAGES} messages in one datagram")
    try:
        msg = OscMessage(data)
        out.append((msg.address, list(msg.params)))
    except _DECODE_ERRORS as exc:
        raise DatagramError(f"not valid OSC: {exc}") from exc


def encode_message(address: str, args: Sequence[OscArg]) -> bytes:
    """Build one OSC message datagram (str -> s, int -> i, float -> f, bytes -> b).

    Text that is not Unicode (a lone surrogate from a client's own input, echoed in an error)
    goes out with that character written as ``\\udXXX`` rather than failing the whole reply.
    """
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(escape_surrogates(arg) if isinstance(arg, str) else arg)
    return builder.build().dgram


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OscTransport:
    """A UDP socket serving the ``/stembridge/*`` address space.

    Args:
        handler: ``handler(address, args, origin)``, normally ``OscRouter.handle_message``.
        host: address to bind; anything but loopback needs ``allow_remote``.
        port: UDP port (0 picks a free one; see :attr:`port`).
        reply_port: send replies to the sender's host on this port instead of the sender's port.
        allow_remote: accept a non-loopback ``host``.
    """

    def __init__(
        self,
        handler: Callable[[str, Sequence[Any], Origin], None],
        *,
        host: str = "127.0.0.1",
        port: int = 9000,
        reply_port: int | None = None,
        allow_remote: bool = False,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"binding to {host} would let other machines send requests; use 127.0.0.1, or pass "
                "--allow-remote together with --token"
            )
        self._handler = handler
        self._reply_port = reply_port
        self._trusted = not allow_remote
        self._limiter = LogLimiter(log, "malformed datagrams")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortBusyError(
                    exc.errno,
                    f"UDP port {port} on {host} is already in use (another stembridge bridge or OSC "
                    f"program is running); stop it or start with --osc-port <another port>",
                ) from None
            raise
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # absorb bursts
        self._sock.settimeout(0.25)
        self.host, self.port = host, self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stembridge-osc", daemon=True)
        self.received = 0
        self.malformed = 0

    def start(self) -> None:
        """Start receiving."""
        self._thread.start()
        log.info("OSC listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        """Stop receiving (replies can still be sent until :meth:`close`); returns once the thread has ended."""
        self._stop.set()
        join_thread(self._thread, "OSC receive")

    def close(self) -> None:
        """Stop receiving and close the socket; logs how many datagrams came and how many were malformed."""
        self.stop()
        self._sock.close()
        log.info("OSC closed after %d datagrams (%d malformed)", self.received, self.malformed)

    def send(self, target: str, address: str, args: Sequence[OscArg]) -> None:
        """Send one message to ``target`` (``"osc:host:port"``); other targets are ignored."""
        if not target.startswith("osc:"):
            return
        host, _, port = target[4:].rpartition(":")
        try:
            data = encode_message(address, args)
            self._sock.sendto(data, (host, int(port)))
        except (OSError, BuildError, ValueError) as exc:
            log.warning("could not send %s to %s: %s", address, target, exc)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(MAX_DATAGRAM + 1)
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                log.warning("OSC receive failed: %s", exc)
                continue
            self.received += 1
            self.handle_datagram(data, addr)

    def handle_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Decode one datagram from ``addr`` and dispatch its messages."""
        host, port = addr[0], addr[1]
        reply = f"osc:{host}:{self._reply_port or port}"
        origin = Origin(source="osc", reply=reply, trusted=self._trusted)
        try:
            messages = decode_datagram(data)
        except DatagramError as exc:
            self.malformed += 1
            self._limiter.log(logging.WARNING, "malformed OSC datagram (%d bytes) from %s:%s: %s", len(data), host, port, exc)
            self.send(reply, PREFIX + "error", ["", "malformed", f"the datagram is not valid OSC: {exc}"[:500]])
            return
        for address, args in messages:
            # The receive thread's boundary: if it died, the bridge would stop hearing anyone. A
            # handler failure is logged with its traceback and answered, and the next message is read.
            try:
                self._handler(address, args, origin)
            except Exception as exc:
                log.exception("internal error while handling %s from %s:%s", address, host, port)
                self.send(reply, PREFIX + "error", ["", "internal", f"the bridge failed on {address}: {type(exc).__name__}: {exc}"[:500]])

"""Minimal OSC 1.0 message encoding/decoding (python-osc is not available inside Live).

Supports the argument types stembridge uses: ``s`` (str), ``i`` (int32), ``f`` (float32),
``d`` (float64), ``h`` (int64), ``b`` (blob), ``T``/``F`` (bools) and ``N`` (None); bundles are
unpacked into their messages on decoding.
"""

from __future__ import annotations

import struct
from typing import List, Tuple, Union

OscArg = Union[str, int, float, bool, bytes, None]
OscMessage = Tuple[str, List[OscArg]]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class OscError(ValueError):
    """A datagram that is not valid OSC, or an argument OSC cannot carry."""


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (4 - len(data) % 4)


def _pad_blob(data: bytes) -> bytes:
    return data + b"\0" * ((4 - len(data) % 4) % 4)


def encode_message(address: str, args: "List[OscArg] | Tuple[OscArg, ...]" = ()) -> bytes:
    """Encode one OSC message.

    Args:
        address: OSC address starting with "/", e.g. "/stembridge/generate".
        args: str, int (int32, or int64 when larger), float (float32), bool, bytes or None.

    Raises:
        OscError: bad address or an argument type OSC cannot carry.
    """
    if not address.startswith("/"):
        raise OscError(f"OSC address {address!r} must start with '/'")
    tags = ","
    payload = b""
    for arg in args:
        if arg is None:
            tags += "N"
        elif isinstance(arg, bool):
            tags += "T" if arg else "F"
        elif isinstance(arg, int):
            if _INT32_MIN <= arg <= _INT32_MAX:
                tags += "i"
                payload += struct.pack(">i", arg)
            else:
                tags += "h"
                payload += struct.pack(">q", arg)
        elif isinstance(arg, float):
            tags += "f"
            payload += struct.pack(">f", arg)
        elif isinstance(arg, str):
            tags += "s"
            payload += _pad(arg.encode("utf-8"))
        elif isinstance(arg, (bytes, bytearray)):
            tags += "b"
            payload += struct.pack(">i", len(arg)) + _pad_blob(bytes(arg))
        else:
            raise OscError(f"cannot send {type(arg).__name__} over OSC")
    return _pad(address.encode("utf-8")) + _pad(tags.encode("ascii")) + payload


def _read_string(data: bytes, pos: int) -> Tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise OscError("OSC string is not terminated")
    text = data[pos:end].decode("utf-8", errors="replace")
    return text, end + 1 + (3 - (end - pos) % 4)


def _read(fmt: str, data: bytes, pos: int) -> Tuple[object, int]:
    size = struct.calcsize(fmt)
    if pos + size > len(data):
        raise OscError("OSC message is truncated")
    return struct.unpack(fmt, data[pos:pos + size])[0], pos + size


def decode_message(data: bytes) -> OscMessage:
    """Decode one OSC message (not a bundle) into ``(address, args)``.

    Raises:
        OscError: the datagram is not a valid OSC message.
    """
    if not data.startswith(b"/"):
        raise OscError("not an OSC message (no address)")
    address, pos = _read_string(data, 0)
    if pos >= len(data):
        return address, []
    tags, pos = _read_string(data, pos)
    if not tags.startswith(","):
        raise OscError("OSC type tags must start with ','")
    args: List[OscArg] = []
    for tag in tags[1:]:
        if tag == "i":
            value, pos = _read(">i", data, pos)
        elif tag == "h":
            value, pos = _read(">q", data, pos)
        elif tag == "f":
            value, pos = _read(">f", data, pos)
        elif tag == "d":
            value, pos = _read(">d", data, pos)
        elif tag == "s":
            value, pos = _read_string(data, pos)
        elif tag == "b":
            if pos + 4 > len(data):
                raise OscError("OSC blob is truncated")
            size = int(struct.unpack(">i", data[pos:pos + 4])[0])
            pos += 4
            if size < 0 or pos + size > len(data):
                raise OscError("OSC blob is truncated")
            value = data[pos:pos + size]
            pos += size + (4 - size % 4) % 4
        elif tag in "TF":
            value = tag == "T"
        elif tag == "N":
            value = None
        else:
            raise OscError(f"unsupported OSC type tag {tag!r}")
        args.append(value)  # type: ignore[arg-type]
    return address, args


def decode_packet(data: bytes) -> List[OscMessage]:
    """Decode a message or a (nested) bundle into a list of messages."""
    if not data.startswith(b"#bundle\0"):
        return [decode_message(data)]
    messages: List[OscMessage] = []
    pos = 16  # "#bundle\0" + 8-byte time tag
    while pos + 4 <= len(data):
        size = struct.unpack(">i", data[pos:pos + 4])[0]
        pos += 4
        if size < 0 or pos + size > len(data):
            raise OscError("OSC bundle element is truncated")
        messages.extend(decode_packet(data[pos:pos + size]))
        pos += size
    return messages

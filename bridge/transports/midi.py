"""MIDI controller triggers: a note or CC on a named input port runs a bridge action.

Mapping file (TOML, default ``<project>/stembridge/midi.toml``)::

    [[binding]]
    port = "nanoKONTROL"   # part of the input port's name, case-insensitive ("" = any port)
    type = "note"          # "note" or "cc"
    number = 36            # note or controller number 0-127
    channel = 10           # 1-16; leave out for any channel
    action = "generate"    # generate | regenerate | variation | cancel

Actions (see :class:`bridge.server.controller.ControllerActions`):

- ``generate``: queue the project's most recent request again as it is; its MIDI/audio files are
  read afresh, so re-exported material from the DAW is used, with the same seed.
- ``regenerate``: queue the most recent bar-range regeneration again with a new seed (another take
  of the last range).
- ``variation``: queue the most recent request again with a new seed (another take).
- ``cancel``: cancel the running job, or else the newest queued one.

A press is a note-on with velocity above 0 (a velocity-0 note-on is a note-off) or a CC value
rising through 64. Presses of one binding within :data:`DEBOUNCE_S` count once. MIDI callbacks
run on the port's thread, so the action only hands work to the intake thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mido

from bridge.server.controller import ACTIONS
from conditioning.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.3
#: A MIDI press: (kind "note"/"cc", channel 1-16, number 0-127).
Press = tuple[str, int, int]


@dataclass(frozen=True)
class Binding:
    """One controller button bound to an action.

    Attributes:
        port: part of the input port's name (case-insensitive); "" matches any port.
        kind: "note" or "cc".
        number: note number or controller number, 0-127.
        channel: MIDI channel 1-16, or None for any.
        action: one of :data:`ACTIONS`.
    """

    port: str
    kind: str
    number: int
    channel: int | None
    action: str

    def matches(self, port_name: str, press: Press) -> bool:
        """True if ``press`` on ``port_name`` is this binding's button."""
        kind, channel, number = press
        return (
            self.port.lower() in port_name.lower()
            and self.kind == kind
            and self.number == number
            and (self.channel is None or self.channel == channel)
        )


def _binding_from(obj: Any, where: str) -> Binding:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a table with port, type, number and action")
    unknown = sorted(set(obj) - {"port", "type", "number", "channel", "action"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; allowed: port, type, number, channel, action")
    kind, number, action = obj.get("type"), obj.get("number"), obj.get("action")
    channel, port = obj.get("channel"), obj.get("port", "")
    if kind not in ("note", "cc"):
        raise ValueError(f'{where}.type must be "note" or "cc", got {kind!r}')
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
        raise ValueError(f"{where}.number must be 0-127, got {number!r}")
    if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16):
        raise ValueError(f"{where}.channel must be 1-16 (or left out for any), got {channel!r}")
    if action not in ACTIONS:
        raise ValueError(f"{where}.action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not isinstance(port, str):
        raise ValueError(f"{where}.port must be text (part of the port name)")
    return Binding(port=port, kind=kind, number=number, channel=channel, action=action)


def parse_mapping(text: str, where: str = "the MIDI mapping") -> list[Binding]:
    """Bindings from mapping TOML text.

    Raises:
        ValueError: invalid TOML or an invalid binding (the message names it).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where} is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"binding"})
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}; use [[binding]] tables")
    items = data.get("binding", [])
    if not isinstance(items, list):
        raise ValueError(f"{where}: 'binding' must be written as [[binding]] tables")
    return [_binding_from(item, f"{where}: binding {i + 1}") for i, item in enumerate(items)]


def load_mapping(path: Path) -> list[Binding]:
    """Bindings from a mapping file (an absent file means no bindings).

    Raises:
        ValueError: the file is unreadable, not UTF-8 or not a valid mapping; the message names
            the file, what is wrong in it and how to fix it.
    """
    if not path.is_file():
        return []
    fix = "fix it, or move it away and bind again with `stembridge midi learn ACTION`"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"MIDI mapping {path} is not UTF-8 text; {fix}") from None
    except OSError as exc:
        raise ValueError(f"cannot read MIDI mapping {path} ({exc.strerror or exc}); {fix}") from None
    try:
        return parse_mapping(text, f"MIDI mapping {path}")
    except ValueError as exc:
        raise ValueError(f"{exc}; {fix}") from None


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_mapping(bindings: Iterable[Binding]) -> str:
    """Mapping TOML text for ``bindings`` (round-trips through :func:`parse_mapping`)."""
    parts = ["# stembridge MIDI triggers; edit freely or use `stembridge midi learn ACTION`\n"]
    for b in bindings:
        lines = ["[[binding]]", f"port = {_toml_string(b.port)}", f'type = "{b.kind}"', f"number = {b.number}"]
        if b.channel is not None:
            lines.append(f"channel = {b.channel}")
        lines.append(f'action = "{b.action}"')
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def save_binding(path: Path, binding: Binding) -> list[Binding]:
    """Add ``binding`` to the mapping file, replacing any binding of the same button."""
    kept = [
        b for b in load_mapping(path)
        if not (b.port == binding.port and b.kind == binding.kind and b.number == binding.number
                and b.channel == binding.channel)
    ]
    bindings = [*kept, binding]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dump_mapping(bindings), overwrite=True)
    return bindings


class EdgeDetector:
    """Turns raw MIDI messages into presses (note-on > 0, CC rising through 64)."""

    def __init__(self) -> None:
        self._cc_high: set[tuple[str, int, int]] = set()

    def press(self, port_name: str, msg: mido.Message) -> Press | None:
        """The press ``msg`` is, or None (note-offs, velocity-0 note-ons, CC releases, others)."""
        if msg.type == "note_on" and msg.velocity > 0:
            return ("note", msg.channel + 1, msg.note)
        if msg.type == "control_change":
            key = (port_name, msg.channel, msg.control)
            if msg.value >= 64:
                if key in self._cc_high:
                    return None
                self._cc_high.add(key)
                return ("cc", msg.channel + 1, msg.control)
            self._cc_high.discard(key)
        return None


class TriggerRouter:
    """Matches presses against bindings, debounces them, and fires actions.

    Args:
        bindings: the mapping.
        fire: called with the action name; must return quickly (hand work elsewhere).
        debounce_s: presses of one binding closer together than this count once.
        clock: monotonic clock in seconds (injected by tests).
    """

    def __init__(
        self,
        bindings: Iterable[Binding],
        fire: Callable[[str], None],
        *,
        debounce_s: float = DEBOUNCE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bindings = list(bindings)
        self._fire = fire
        self._debounce = debounce_s
        self._clock = clock
        self._edges = EdgeDetector()
        self._last: dict[Binding, float] = {}
        self._lock = threading.Lock()

    def feed(self, port_name: str, msg: mido.Message) -> str | None:
        """Handle one message from ``port_name``; returns the action fired, or None."""
        with self._lock:
            press = self._edges.press(port_name, msg)
            if press is None:
                return None
            binding = next((b for b in self.bindings if b.matches(port_name, press)), None)
            if binding is None:
                return None
            now = self._clock()
            last = self._last.get(binding)
            if last is not None and now - last < self._debounce:
                log.debug("debounced %s on %s", binding.action, port_name)
                return None
            self._last[binding] = now
        log.info("MIDI %s %d (channel %d) on %s -> %s", press[0], press[2], press[1], port_name, binding.action)
        self._fire(binding.action)
        return binding.action


class InputPort(Protocol):
    """An open MIDI input (mido ports and :class:`InMemoryInput` both fit)."""

    name: str

    def close(self) -> None:
        """Close the port."""


#: Opens the input ``name`` delivering messages to a callback.
PortOpener = Callable[[str, Callable[[mido.Message], None]], InputPort]


class InMemoryInput:
    """An input port living in memory: :meth:`send` delivers a message to the callback."""

    def __init__(self, name: str, callback: Callable[[mido.Message], None]) -> None:
        self.name = name
        self._callback: Callable[[mido.Message], None] | None = callback

    def send(self, msg: mido.Message) -> None:
        """Deliver ``msg`` as the hardware would (ignored once closed)."""
        if self._callback is not None:
            self._callback(msg)

    def close(self) -> None:
        """Stop delivering."""
        self._callback = None


def mido_opener(name: str, callback: Callable[[mido.Message], None]) -> InputPort:
    """Open a real input port with mido's rtmidi backend."""
    return mido.open_input(name, callback=callback)  # type: ignore[no-any-return]


def list_input_ports() -> list[str]:
    """Names of the MIDI input ports on this machine.

    The MIDI system (rtmidi, ALSA) prints its own error lines straight to file descriptor 2;
    during the query (milliseconds) that descriptor goes to a temporary file instead, whose
    text is logged at debug level and, on failure, folded into the error, so a caller shows
    one clear line.

    Raises:
        OSError: the MIDI system cannot be opened (e.g. no ALSA sequencer); the message
            carries the system's own reason.
    """
    import os
    import re
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    failure: OSError | None = None
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            names = list(mido.get_input_names())
        except OSError as exc:
            failure = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        said = sink.read().decode("utf-8", errors="replace").strip()
    if said:
        log.debug("the MIDI system said: %s", said)
    if failure is not None:
        # "ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed: ..." -> the reason
        reasons = [re.sub(r"^ALSA lib \S+:\d+:\(\w+\)\s*", "", line).strip() for line in said.splitlines()]
        detail = "; ".join(r for r in reasons if r)
        raise OSError(f"{failure}" + (f" ({detail})" if detail else "")) from failure
    return names


def _feeder(router: TriggerRouter, name: str) -> Callable[[mido.Message], None]:
    def feed(msg: mido.Message) -> None:
        router.feed(name, msg)

    return feed


def open_bound_ports(
    router: TriggerRouter,
    port_names: Iterable[str],
    opener: PortOpener = mido_opener,
) -> list[InputPort]:
    """Open every port some binding refers to, feeding ``router``; unmatched names are skipped."""
    opened: list[InputPort] = []
    for name in port_names:
        if not any(b.port.lower() in name.lower() for b in router.bindings):
            continue
        try:
            opened.append(opener(name, _feeder(router, name)))
            log.info("MIDI triggers listening on %r", name)
        except OSError as exc:
            log.warning("could not open MIDI input %r: %s", name, exc)
    wanted = {b.port for b in router.bindings}
    for pattern in sorted(wanted):
        if not any(pattern.lower() in p.name.lower() for p in opened):
            log.warning("no MIDI input port matches %r; its bindings are inactive", pattern)
    return opened


def learn(
    action: str,
    port_names: Iterable[str],
    *,
    opener: PortOpener = mido_opener,
    timeout_s: float = 30.0,
) -> Binding | None:
    """Wait for the next press on any of ``port_names`` and return a binding of it to ``action``.

    Returns None if nothing was pressed within ``timeout_s`` seconds.

    Raises:
        ValueError: ``action`` is not one of :data:`ACTIONS`, or there are no ports.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    names = list(port_names)
    if not names:
        raise ValueError("there are no MIDI input ports; connect the controller and try again")
    presses: queue.Queue[tuple[str, Press]] = queue.Queue()
    edges = EdgeDetector()
    lock = threading.Lock()

    def on_message(name: str, msg: mido.Message) -> None:
        with lock:
            press = edges.press(name, msg)
        if press is not None:
            presses.put((name, press))

    def listener(name: str) -> Callable[[mido.Message], None]:
        return lambda msg: on_message(name, msg)

    ports = [opener(n, listener(n)) for n in names]
    try:
        name, (kind, channel, number) = presses.get(timeout=timeout_s)
    except queue.Empty:
        return None
    finally:
        for port in ports:
            port.close()
    return Binding(port=name, kind=kind, number=number, channel=channel, action=action)

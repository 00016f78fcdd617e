"""The ControlSurface Live loads: wires Live's timer, log and status bar to StemBridgeCore.

Subclasses ``ableton.v2.control_surface.ControlSurface`` (Live 11 and 12). That class has no
``log_message`` (only the old ``_Framework`` class had it): Live's v2 scripts log through the
``logging`` module, which Live writes to Log.txt. ``song`` and ``application`` are properties.
"""

from __future__ import annotations

import logging
from typing import Any

from ableton.v2.control_surface import ControlSurface

from .core import StemBridgeCore
from .settings import load_settings
from .transport import UdpTransport

logger = logging.getLogger("stembridge_live")


def log_line(message: str) -> None:
    """Write one line to Live's Log.txt (errors as warnings, so they are never filtered out)."""
    if message.startswith("StemBridge error") or "could not start" in message:
        logger.warning(message)
    else:
        logger.info(message)


class StemBridgeSurface(ControlSurface):  # type: ignore[misc]
    """StemBridge as a control surface: no controls, just a timer hook and OSC."""

    def __init__(self, c_instance: Any) -> None:
        ControlSurface.__init__(self, c_instance)
        self._core = None
        try:
            settings = load_settings()
            self._transport = UdpTransport(settings.bridge_host, settings.bridge_port,
                                           settings.reply_port, on_bad_packet=log_line)
        except (OSError, ValueError) as exc:
            log_line(f"StemBridge could not start: {exc}")
            self.show_message(f"StemBridge could not start: {exc}")
            return
        self._core = StemBridgeCore(self.song, self.application, self._transport,
                                    settings, log_line, self.show_message)
        log_line(f"StemBridge listening on 127.0.0.1:{self._transport.local_port}")

    def update_display(self) -> None:
        """Live's ~100 ms timer: poll OSC and act on it."""
        ControlSurface.update_display(self)
        if self._core is not None:
            self._core.tick()

    def disconnect(self) -> None:
        """Release the UDP port when Live unloads the script."""
        if self._core is not None:
            self._transport.close()
        ControlSurface.disconnect(self)

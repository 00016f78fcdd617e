"""The ControlSurface Live loads: wires Live's timer, log and status bar to StemBridgeCore."""

from __future__ import annotations

from typing import Any

import Live

try:  # Live 10-12
    from ableton.v2.control_surface import ControlSurface
except ImportError:  # older Live
    from _Framework.ControlSurface import ControlSurface

from .core import StemBridgeCore
from .settings import load_settings
from .transport import UdpTransport


class StemBridgeSurface(ControlSurface):  # type: ignore[misc]
    """StemBridge as a control surface: no controls, just a timer hook and OSC."""

    def __init__(self, c_instance: Any) -> None:
        ControlSurface.__init__(self, c_instance)
        self._core = None
        try:
            settings = load_settings()
            self._transport = UdpTransport(settings.bridge_host, settings.bridge_port,
                                           settings.reply_port, on_bad_packet=self.log_message)
        except (OSError, ValueError) as exc:
            self.log_message(f"StemBridge could not start: {exc}")
            self.show_message(f"StemBridge could not start: {exc}")
            return
        song = self.song() if callable(self.song) else self.song
        self._core = StemBridgeCore(song, Live.Application.get_application(), self._transport,
                                    settings, self.log_message, self.show_message)
        self.log_message(f"StemBridge listening on 127.0.0.1:{self._transport.local_port}")

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

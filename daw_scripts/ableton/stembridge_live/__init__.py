"""StemBridge MIDI Remote Script for Ableton Live.

Copy the ``stembridge_live`` folder into Live's "Remote Scripts" folder and pick
"stembridge_live" as a Control Surface in Settings > Link, Tempo & MIDI. See daw_scripts/README.md.
"""

from __future__ import annotations

from typing import Any


def create_instance(c_instance: Any) -> Any:
    """Live's entry point: build the control surface."""
    from .surface import StemBridgeSurface

    return StemBridgeSurface(c_instance)

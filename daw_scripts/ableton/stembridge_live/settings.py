"""Settings of the Live Remote Script, read from ``settings.json`` beside this package."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

SETTINGS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.json")


@dataclass
class Settings:
    """What the script needs that Live's API does not tell it.

    Attributes:
        bridge_host: where ``stembridge serve`` listens (local only by default).
        bridge_port: its OSC port.
        reply_port: the port this script listens on for replies and triggers.
        sample_rate: Hz; Live's API does not expose the audio engine's rate, so set yours here.
        project_dir: folder for requests and stems when the set is unsaved ("" = the set's folder).
        prompt: style prompt sent with Generate (a trigger may send its own).
        stems: stems to ask for.
        model: generator name in the bridge's registry.
        seed: seed of the first generation.
        accept_timeout_s: seconds to wait for /stembridge/accepted before saying the bridge is down.
    """

    bridge_host: str = "127.0.0.1"
    bridge_port: int = 9000
    reply_port: int = 9001
    sample_rate: int = 48000
    project_dir: str = ""
    prompt: str = ""
    stems: List[str] = field(default_factory=lambda: ["drums", "bass", "keys", "lead"])
    model: str = "arranger"
    seed: int = 1
    accept_timeout_s: float = 5.0


def settings_from_dict(data: Dict[str, Any]) -> Settings:
    """Build settings from a JSON object, checking names and types.

    Raises:
        ValueError: an unknown key or a value of the wrong type; the message names it.
    """
    defaults = Settings()
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"settings.json has unknown key(s) {unknown}; known keys: {sorted(known)}")
    values: Dict[str, Any] = {}
    for name, value in data.items():
        expected = type(getattr(defaults, name))
        ok = isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if expected is list:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not ok:
            raise ValueError(f"settings.json: {name} must be {expected.__name__}, got {value!r}")
        values[name] = value
    return Settings(**values)


def load_settings(path: Optional[str] = None) -> Settings:
    """Settings from ``path`` (default: settings.json beside this package), or the defaults
    when the file does not exist.

    Raises:
        ValueError: the file is not valid JSON or has wrong keys/values.
    """
    if path is None:
        path = SETTINGS_FILE
    if not os.path.isfile(path):
        return Settings()
    with open(path, encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return settings_from_dict(data)

"""Import third-party modules that print to stdout on import.

pyfluidsynth (imported by pretty_midi too) prints where it found libfluidsynth whenever the
``CI`` environment variable is set; on stdout that corrupts the CLI's ``--json`` output.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from types import ModuleType


def import_quietly(name: str) -> ModuleType:
    """Import module ``name`` with anything it prints to stdout discarded."""
    with contextlib.redirect_stdout(io.StringIO()):
        return importlib.import_module(name)

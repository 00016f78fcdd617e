"""The example session: copy its material into a project folder and build its request.

The session (``session.toml`` and the material it names) ships as package data in
``bridge/cli/demo_session/`` and is read through :mod:`importlib.resources`, so an installed
wheel runs the demo without the source tree. ``examples/`` holds the scripts that make it.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from conditioning.io.atomic import write_bytes_atomic

SESSION_FILE = "session.toml"
#: The package folder holding the example session.
DEMO_SESSION_DIR = "demo_session"


def bundled_session() -> Traversable:
    """The example session folder shipped inside the ``bridge.cli`` package."""
    return files("bridge.cli").joinpath(DEMO_SESSION_DIR)


def _material_paths(inputs: dict[str, Any]) -> list[str]:
    return [src[k] for src in inputs.values() if isinstance(src, dict) for k in ("midi", "audio") if k in src]


def prepare_demo(examples_dir: Traversable | Path, out_dir: Path) -> tuple[dict[str, Any], Path]:
    """Read ``examples_dir/session.toml``, copy its material into ``out_dir`` and build request v1.

    Files already in ``out_dir`` are kept; a different file of the same name is an error (the
    musician's files are never overwritten).

    Args:
        examples_dir: the session folder (:func:`bundled_session` or any folder laid out alike).
        out_dir: the project folder to create or reuse.

    Returns:
        (request JSON object, absolute project folder).

    Raises:
        ValueError: no session file, missing material, or a conflicting file in ``out_dir``.
    """
    session_path = examples_dir.joinpath(SESSION_FILE)
    if not session_path.is_file():
        raise ValueError(f"no {SESSION_FILE} in {examples_dir}; pass --examples pointing at a session folder")
    try:
        session = tomllib.loads(session_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{session_path} is not valid TOML: {exc}") from None
    out_dir = out_dir.expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for rel in _material_paths(session.get("inputs", {})):
        src, dst = examples_dir.joinpath(rel), out_dir / rel
        if not src.is_file():
            raise ValueError(f"the example session names {rel}, which is missing from {examples_dir}")
        data = src.read_bytes()
        if dst.exists():
            if not dst.is_file() or dst.read_bytes() != data:
                raise ValueError(f"{dst} exists and differs from the example's {rel}; choose another --out folder")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(dst, data)
    request = {"version": 1, **session}
    request["project"] = {**session.get("project", {}), "dir": str(out_dir)}
    return request, out_dir

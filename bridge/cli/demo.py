"""The example session: copy its material into a project folder and build its request."""

from __future__ import annotations

import filecmp
import shutil
import tomllib
from pathlib import Path
from typing import Any

SESSION_FILE = "session.toml"


def _material_paths(inputs: dict[str, Any]) -> list[str]:
    return [src[k] for src in inputs.values() if isinstance(src, dict) for k in ("midi", "audio") if k in src]


def prepare_demo(examples_dir: Path, out_dir: Path) -> tuple[dict[str, Any], Path]:
    """Read ``examples_dir/session.toml``, copy its material into ``out_dir`` and build request v1.

    Files already in ``out_dir`` are kept; a different file of the same name is an error (the
    musician's files are never overwritten).

    Returns:
        (request JSON object, absolute project folder).

    Raises:
        ValueError: no session file, missing material, or a conflicting file in ``out_dir``.
    """
    session_path = examples_dir / SESSION_FILE
    if not session_path.is_file():
        raise ValueError(f"no {SESSION_FILE} in {examples_dir}; pass --examples pointing at the examples/ folder")
    try:
        session = tomllib.loads(session_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{session_path} is not valid TOML: {exc}") from None
    out_dir = out_dir.expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for rel in _material_paths(session.get("inputs", {})):
        src, dst = examples_dir / rel, out_dir / rel
        if not src.is_file():
            raise ValueError(f"the example session names {rel}, which is missing from {examples_dir}")
        if dst.exists():
            if not filecmp.cmp(src, dst, shallow=False):
                raise ValueError(f"{dst} exists and differs from the example's {rel}; choose another --out folder")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    request = {"version": 1, **session}
    request["project"] = {**session.get("project", {}), "dir": str(out_dir)}
    return request, out_dir

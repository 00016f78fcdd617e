"""``stembridge models``: which generators can run here, as one compact table plus one how-to."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

#: What to do about missing weights; printed once under the table, whatever the model.
WEIGHTS_HOW_TO = (
    "weights: on a machine with internet run `huggingface-cli download REPO` for each repository "
    "named above (the files land in ~/.cache/huggingface; copy that folder to an offline machine), "
    "or pass `--model-path DIR` to `stembridge generate`/`demo` with a MusicGen folder saved by "
    "save_pretrained. Every MusicGen model splits its stems with Demucs htdemucs "
    "(adefossez/HTDemucs)."
)


@dataclass(frozen=True)
class ModelRow:
    """One generator as ``stembridge models`` shows it.

    Attributes:
        name: the name a request uses (``"model": name``).
        ready: whether it can run here now (packages installed and weights present).
        detail: what is missing, or where the weights are.
        description: one line saying what it is.
        install_hint: what installs the missing packages ("" when none are missing).
    """

    name: str
    ready: bool
    detail: str
    description: str
    install_hint: str = ""


def model_rows(*, model_path: str | None = None, adapter: str | None = None) -> list[ModelRow]:
    """Every registered generator, sorted by name, checked without network access or torch imports.

    Args:
        model_path: a local weights folder given with ``--model-path`` (checked for the models
            whose weight check takes it).
        adapter: a Coco-Mulla adapter file given with ``--adapter``.
    """
    from models.registry import MODELS, missing_requirements, weights_status

    rows = []
    for name, spec in sorted(MODELS.items()):
        missing = missing_requirements(name)
        if missing:
            rows.append(ModelRow(name, False, f"packages missing: {', '.join(missing)}", spec.description,
                                 spec.install_hint or "pip install 'stembridge[neural]'"))
            continue
        present, detail = weights_status(name, model_path=model_path, adapter=adapter)
        rows.append(ModelRow(name, present, detail, spec.description))
    return rows


def how_to(rows: list[ModelRow]) -> list[str]:
    """The lines that say how to make the rows that are not ready ready (each said once)."""
    lines = []
    for hint in dict.fromkeys(r.install_hint for r in rows if r.install_hint):
        lines.append(f"packages: {hint}")
    if any(not r.ready and not r.install_hint for r in rows):
        lines.append(WEIGHTS_HOW_TO)
    return lines


def models_json(rows: list[ModelRow]) -> str:
    """The rows as a JSON list (``stembridge models --json``)."""
    return json.dumps([asdict(r) for r in rows], indent=2)


def print_models(rows: list[ModelRow], console: Any) -> None:
    """Print the table, then the how-to once, on a rich ``console``."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="stembridge generators", title_justify="left")
    for col in ("model", "ready", "what is missing / where the weights are", "what it is"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(escape(r.name), "yes" if r.ready else "no", escape(r.detail), escape(r.description))
    console.print(table)
    lines = how_to(rows)
    if lines:
        console.print("To make a model ready:")
        for line in lines:
            console.print(f"  {escape(line)}")

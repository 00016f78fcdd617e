"""Coco-Mulla: chords, piano roll and drums as content conditions for MusicGen (transformers).

The public contract is :func:`load_adapter`, :func:`adapter_logits` and :class:`CocoMullaAdapter`.
They are imported on first use, so importing this package (for example for the registry's
weight check) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.cocomulla.adapter import CocoMullaAdapter
    from models.cocomulla.checkpoint import load_adapter
    from models.cocomulla.logits import adapter_logits

__all__ = ["CocoMullaAdapter", "adapter_logits", "load_adapter"]

_HOMES = {
    "CocoMullaAdapter": "models.cocomulla.adapter",
    "load_adapter": "models.cocomulla.checkpoint",
    "adapter_logits": "models.cocomulla.logits",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'models.cocomulla' has no attribute {name!r}")

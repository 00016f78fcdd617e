"""Coco-Mulla adapter checkpoints in the authors' key format, checked strictly.

The authors save ``CPTransformer.state_dict()`` minus the frozen layers and load it with
``strict=False``. Here the key set and every shape are checked against the base decoder, and a
mismatch is an error naming the keys. Files are read with ``torch.load(weights_only=True)`` and
written through a temporary file and a rename.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from conditioning.io.atomic import atomic_output
from models.cocomulla.adapter import CHORD_DIM, MAX_FRAMES, PIANO_DIM, CocoMullaAdapter


def expected_shapes(num_layers: int, hidden_size: int, latent_dim: int = 12,
                    max_frames: int = MAX_FRAMES) -> dict[str, tuple[int, ...]]:
    """Checkpoint keys and shapes for an adapter over ``num_layers`` layers of width ``hidden_size``."""
    shapes: dict[str, tuple[int, ...]] = {
        "pos_emb": (num_layers + 1, max_frames, hidden_size),
        "masked_embedding": (num_layers, max_frames, 2 * latent_dim),
        "encodec_emb.weight": (latent_dim, hidden_size),
        "gates": (num_layers,),
    }
    for i in range(num_layers):
        shapes[f"merge_linear.{i}.weight"] = (hidden_size, CHORD_DIM + 2 * latent_dim)
        shapes[f"piano_roll_emb.{i}.weight"] = (latent_dim, PIANO_DIM)
    return shapes


def _names(keys: set[str], limit: int = 8) -> str:
    ordered = sorted(keys)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def load_adapter(state_dict: Mapping[str, torch.Tensor], decoder: Any) -> CocoMullaAdapter:
    """Build the adapter for ``decoder`` from a checkpoint's state dict.

    The number of adapted layers comes from ``gates`` (the last that many decoder layers are
    adapted), the latent width from ``encodec_emb.weight``; every key and shape is then checked.
    The adapter is created in float32 on the decoder's device.

    Args:
        state_dict: the authors' checkpoint keys (``pos_emb``, ``masked_embedding``,
            ``encodec_emb.weight``, ``merge_linear.{i}.weight``, ``piano_roll_emb.{i}.weight``, ``gates``).
        decoder: the base ``MusicgenForCausalLM``.

    Raises:
        ValueError: keys missing or unexpected (named), or a shape that does not fit the decoder.
    """
    for key in ("gates", "encodec_emb.weight", "pos_emb"):
        if key not in state_dict:
            raise ValueError(f"not a Coco-Mulla adapter checkpoint: key {key!r} is missing")
    hidden = int(decoder.config.hidden_size)
    decoder_layers = int(decoder.config.num_hidden_layers)
    gates = state_dict["gates"]
    if gates.ndim != 1 or not 1 <= gates.shape[0] <= decoder_layers:
        raise ValueError(
            f"checkpoint 'gates' has shape {tuple(gates.shape)}; expected (n,) with 1 <= n <= {decoder_layers} "
            "(the decoder's layer count)"
        )
    num_layers = int(gates.shape[0])
    latent = int(state_dict["encodec_emb.weight"].shape[0])
    max_frames = int(state_dict["pos_emb"].shape[1]) if state_dict["pos_emb"].ndim == 3 else MAX_FRAMES
    shapes = expected_shapes(num_layers, hidden, latent, max_frames)
    missing = set(shapes) - set(state_dict)
    extra = set(state_dict) - set(shapes)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if extra:
            parts.append(f"unexpected keys: {_names(extra)}")
        raise ValueError(
            f"adapter checkpoint does not match a {num_layers}-layer adapter: {'; '.join(parts)}"
        )
    for key, shape in shapes.items():
        got = tuple(state_dict[key].shape)
        if got != shape:
            raise ValueError(
                f"adapter checkpoint key {key!r} has shape {got}, but the base model (width {hidden}, "
                f"{decoder_layers} layers) needs {shape}"
            )
    device = next(decoder.parameters()).device
    adapter = CocoMullaAdapter(
        num_layers=num_layers, start_layer=decoder_layers - num_layers, hidden_size=hidden,
        latent_dim=latent, max_frames=max_frames,
    ).to(device)
    adapter.load_state_dict({k: v.to(device=device, dtype=torch.float32) for k, v in state_dict.items()}, strict=True)
    return adapter


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read an adapter checkpoint file with ``torch.load(weights_only=True)`` on the CPU.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a tensor dictionary.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"adapter checkpoint {file} does not exist; pass --adapter with the .pth file")
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"cannot read adapter checkpoint {file}: {exc}") from exc
    if isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"adapter checkpoint {file} is not a dictionary of tensors")
    return {str(k): v for k, v in data.items()}


def save_checkpoint(adapter: CocoMullaAdapter, path: str | os.PathLike[str]) -> Path:
    """Write ``adapter`` in the authors' key format, atomically (temp file + rename).

    Raises:
        FileExistsError: ``path`` exists (nothing is overwritten).
    """
    file = Path(path).expanduser()
    if file.exists():
        raise FileExistsError(f"{file} exists; choose another --out (existing files are never overwritten)")
    file.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in adapter.state_dict().items()}
    with atomic_output(file) as tmp:  # refuses if someone created the file meanwhile
        torch.save(state, tmp)
    return file

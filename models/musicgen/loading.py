"""Load MusicGen models: from a hub id or a local directory, or the in-memory debug models.

Weight checks (:func:`small_weights` etc.) and loading look only at the local HuggingFace cache
or the given directory and never touch the network: weights are fetched beforehand with
``huggingface-cli download``. The checks are the ``ModelSpec.weights`` hooks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.base import ModelUnavailableError
from models.musicgen.configs import CHROMA_HOP, build_random_model
from models.separation.demucs import htdemucs_weights, pick_device

log = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


@dataclass(frozen=True)
class LoadedMusicGen:
    """A ready model with what the generator needs to drive it.

    Attributes:
        model: a ``MusicgenForConditionalGeneration`` or ``MusicgenMelodyForConditionalGeneration``.
        tokenizer: the text tokenizer.
        melody: whether the model takes chroma conditioning.
        sample_rate: codec sample rate in Hz (32000 for the official models).
        frame_rate: codec frames (tokens) per second (50).
        hop: codec samples per frame.
        chroma_rate: chroma frames per second for melody models (32000 / 4096).
        device: torch device string.
        source: where it came from (hub id, folder, or "debug").
    """

    model: Any
    tokenizer: Any
    melody: bool
    sample_rate: int
    frame_rate: float
    hop: int
    chroma_rate: float
    device: str
    source: str


def _hint(source: str) -> str:
    if Path(source).expanduser().is_absolute() or source.startswith((".", "~")) or source.count("/") != 1:
        return (
            f"the folder {source} should hold a MusicGen model saved by save_pretrained "
            "(config.json, model.safetensors, tokenizer files); fill it with `huggingface-cli "
            f"download facebook/musicgen-small --local-dir {source}` on a machine with internet"
        )
    return (
        f"run `huggingface-cli download {source}` on a machine with internet (it fills the "
        "HuggingFace cache, ~/.cache/huggingface), or pass --model-path DIR with a folder saved "
        "by save_pretrained"
    )


def _locate(source: str) -> tuple[Path | None, str]:
    """The local folder holding ``source``'s files, looked up without any network access.

    Args:
        source: a folder saved by ``save_pretrained`` or a hub id ("facebook/musicgen-small"),
            which is looked up in the local HuggingFace cache only.

    Returns:
        (folder, detail): the folder (None when the weights are not here) and a short line
        saying where they are or what is missing (:func:`_hint` says how to get them).
    """
    folder = Path(source).expanduser()
    if folder.is_dir():
        names = {p.name for p in folder.iterdir()}
        if "config.json" in names and names & set(_WEIGHT_FILES):
            return folder, f"model folder {folder}"
        return None, f"{folder} has no config.json and model weights"
    if folder.is_absolute() or source.startswith((".", "~")) or source.count("/") != 1:
        return None, f"model folder {folder} does not exist"
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(source, "config.json")
    if not isinstance(config, str):
        return None, f"{source} is not downloaded"
    for name in _WEIGHT_FILES:
        found = try_to_load_from_cache(source, name)
        if not isinstance(found, str):
            continue
        if name.endswith(".index.json"):
            shards = set(json.loads(Path(found).read_text())["weight_map"].values())
            if not all(isinstance(try_to_load_from_cache(source, s), str) for s in shards):
                return None, f"{source} is only partly downloaded"
        snapshot = Path(found).parent
        return snapshot, f"{source} in the HuggingFace cache ({snapshot})"
    return None, f"{source} has a config but no weights in the cache"


def weights_present(source: str) -> tuple[bool, str]:
    """Whether MusicGen weights for ``source`` (hub id or folder) are on this machine.

    Returns:
        (present, detail) without any network access; the detail is one short line for
        ``stembridge models`` (where the weights are, or what is missing).
    """
    folder, detail = _locate(source)
    return folder is not None, detail


def _with_separator(lm: tuple[bool, str]) -> tuple[bool, str]:
    sep = htdemucs_weights()
    return lm[0] and sep[0], f"{lm[1]}; {sep[1]}"


def small_weights() -> tuple[bool, str]:
    """Weights check for musicgen-small (and the htdemucs separator it uses)."""
    return _with_separator(weights_present("facebook/musicgen-small"))


def medium_weights() -> tuple[bool, str]:
    """Weights check for musicgen-medium (and the htdemucs separator it uses)."""
    return _with_separator(weights_present("facebook/musicgen-medium"))


def large_weights() -> tuple[bool, str]:
    """Weights check for musicgen-large (and the htdemucs separator it uses)."""
    return _with_separator(weights_present("facebook/musicgen-large"))


def melody_weights() -> tuple[bool, str]:
    """Weights check for musicgen-melody (and the htdemucs separator it uses)."""
    return _with_separator(weights_present("facebook/musicgen-melody"))


def debug_weights() -> tuple[bool, str]:
    """The debug models are built in memory: always present."""
    return True, "tiny random weights built in memory"


def pick_dtype(device: str, dtype: str | None = None) -> Any:
    """float32 on CPU; bfloat16 on CUDA when supported, else float16; float16 on MPS."""
    import torch

    if dtype:
        try:
            return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
        except KeyError:
            raise ValueError(f"dtype {dtype!r} is not one of float32, float16, bfloat16") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def codec_hop(model: Any) -> int:
    """Audio samples per codec frame of a MusicGen model (640 for the 32 kHz EnCodec: 50 frames/s)."""
    hop = 1
    for r in model.config.audio_encoder.upsampling_ratios:
        hop *= int(r)
    return hop


def _wrap(model: Any, tokenizer: Any, device: str, source: str) -> LoadedMusicGen:
    melody = hasattr(model.config, "num_chroma")
    codec = model.config.audio_encoder
    hop = codec_hop(model)
    return LoadedMusicGen(
        model=model.eval(), tokenizer=tokenizer, melody=melody, sample_rate=int(codec.sampling_rate),
        frame_rate=codec.sampling_rate / hop, hop=hop, chroma_rate=codec.sampling_rate / CHROMA_HOP,
        device=device, source=source,
    )


def load_debug(*, melody: bool, device: str | None = None, seed: int = 0) -> LoadedMusicGen:
    """Build the tiny random-weight debug model (``musicgen-debug`` / ``musicgen-melody-debug``)."""
    import torch

    from models.musicgen.tokenizer import VOCAB_SIZE, build_debug_tokenizer

    dev = pick_device(device)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_random_model("debug", melody=melody, text_vocab_size=VOCAB_SIZE)
    return _wrap(model.to(dev), build_debug_tokenizer(), dev, "debug")


def load_pretrained(source: str, *, device: str | None = None, dtype: str | None = None) -> LoadedMusicGen:
    """Load a MusicGen or MusicGen-melody model and its tokenizer.

    Args:
        source: a hub id ("facebook/musicgen-small") or a folder saved with ``save_pretrained``
            (model and tokenizer).
        device: "cuda", "mps", "cpu" or None to pick the best available.
        dtype: "float32", "float16", "bfloat16" or None (half precision on GPU).

    Raises:
        ModelUnavailableError: the weights are not here (the message says how to get them).
    """
    # Only local files: a hub id is looked up in the HuggingFace cache first (before torch and
    # transformers are even imported), so missing weights fail at once with one message instead
    # of minutes of hub retries and repeated warnings.
    folder, detail = _locate(source)
    if folder is None:
        raise ModelUnavailableError(f"{detail}; {_hint(source)}")
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    classes: dict[str, Any] = {
        "musicgen": MusicgenForConditionalGeneration,
        "musicgen_melody": MusicgenMelodyForConditionalGeneration,
    }
    dev = pick_device(device)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        cls = classes.get(config.model_type)
        if cls is None:
            raise ModelUnavailableError(
                f"{source} holds a {config.model_type!r} model, not MusicGen or MusicGen-melody"
            )
        model = cls.from_pretrained(folder, dtype=pick_dtype(dev, dtype), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:  # missing or broken files surface as OSError/ValueError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(
            f"MusicGen weights {source!r} could not be loaded here ({reason}); {_hint(source)}"
        ) from exc
    log.info("loaded %s on %s", source, dev)
    return _wrap(model.to(dev), tokenizer, dev, str(source))

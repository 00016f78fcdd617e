"""Demucs source separation (htdemucs) behind a small interface.

The real model is the pretrained ``htdemucs`` bag, loaded from the local HuggingFace cache only
(``adefossez/HTDemucs``, the files demucs 4.1 downloads; never the network) or from a local demucs
model repository directory.
``demucs-debug`` is a tiny random-weight HTDemucs built in memory for tests. torch and demucs are
imported inside the functions only.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from conditioning.io.audio import resample
from conditioning.types import Audio
from models.base import ModelUnavailableError
from models.separation.stems import SOURCES

log = logging.getLogger(__name__)

HF_REPO = "adefossez/HTDemucs"
DEBUG_NAME = "demucs-debug"
#: The one way the Demucs weights are named in messages, ``stembridge models`` and the README.
DOWNLOAD_COMMAND = "huggingface-cli download adefossez/HTDemucs"
_FETCH_HINT = f"run `{DOWNLOAD_COMMAND}` on a machine with internet (it fills the HuggingFace cache)"


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else cuda, then mps, then cpu, whichever torch can use here."""
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _cached_bag(name: str = "htdemucs") -> tuple[list[Path] | None, str]:
    """The cached files of the pretrained Demucs bag ``name``, found without network access.

    Returns:
        (files, detail): the bag's yaml followed by its safetensors files, or None; the detail
        is one short line saying where they are or what is missing.
    """
    from huggingface_hub import try_to_load_from_cache

    # demucs' naming of its hub repositories: htdemucs -> HTDemucs, htdemucs_ft -> HTDemucs-ft
    if name == "htdemucs":
        repo = HF_REPO
    elif name.startswith("htdemucs_"):
        repo = f"{HF_REPO}-{name.removeprefix('htdemucs_')}"
    else:
        repo = f"adefossez/Demucs-{name}"
    bag_file = try_to_load_from_cache(repo, f"{name}.yaml")
    if not isinstance(bag_file, str):
        return None, f"Demucs {name} ({repo}) is not downloaded"
    import yaml

    with open(bag_file, encoding="utf-8") as fh:
        signatures = list(yaml.safe_load(fh).get("models", []))
    files = [Path(bag_file)]
    for sig in signatures:
        found = try_to_load_from_cache(repo, f"{sig}.safetensors")
        if not isinstance(found, str):
            return None, f"Demucs {name} ({repo}) is only partly downloaded ({sig} is missing)"
        files.append(Path(found))
    return files, f"Demucs {name} in the HuggingFace cache ({Path(bag_file).parent})"


def htdemucs_weights() -> tuple[bool, str]:
    """Whether the pretrained htdemucs files are in the HuggingFace cache (no network)."""
    files, detail = _cached_bag("htdemucs")
    return files is not None, detail


def _debug_model(seed: int) -> Any:
    import torch
    from demucs.htdemucs import HTDemucs

    fork = torch.random.fork_rng()
    with fork:
        torch.manual_seed(seed)
        model = HTDemucs(
            sources=list(SOURCES), channels=8, depth=4, t_layers=1, nfft=1024, segment=2,
            bottom_channels=0,
        )
    return model


def _pretrained_model(name: str, path: str | None) -> Any:
    """Load a pretrained Demucs model (a bag) by name from ``path`` or the hub cache."""
    if path is not None:
        from demucs.pretrained import get_model
        from demucs.repo import ModelLoadingError

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ModelUnavailableError(f"separator folder {folder} does not exist; {_FETCH_HINT}")
        try:
            return get_model(name, repo=folder)
        except (ModelLoadingError, OSError) as exc:
            raise ModelUnavailableError(f"could not load Demucs {name!r} from {folder}: {exc}") from exc
    # the HuggingFace cache only: missing weights fail at once instead of retrying the hub
    files, detail = _cached_bag(name)
    if files is None:
        raise ModelUnavailableError(f"{detail}; {_FETCH_HINT}")
    import yaml
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    with open(files[0], encoding="utf-8") as fh:
        bag = yaml.safe_load(fh)
    try:
        models = [load_safetensors_model(f) for f in files[1:]]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(f"Demucs {name!r} files in {files[0].parent} are damaged ({exc}); {_FETCH_HINT}") from exc
    return BagOfModels(models, bag.get("weights"), bag.get("segment"))


class DemucsSeparator:
    """Splits a mix into Demucs' sources (drums, bass, other, vocals).

    Args:
        name: ``"htdemucs"`` (pretrained) or ``"demucs-debug"`` (tiny random model).
        path: a local demucs model folder for pretrained models, or None for the hub cache.
        device: "cuda", "mps", "cpu" or None to pick.
        seed: weight seed of the debug model.

    Raises:
        ModelUnavailableError: the pretrained weights are not present (the message says how to get them).
    """

    def __init__(self, name: str = "htdemucs", *, path: str | None = None, device: str | None = None, seed: int = 0) -> None:
        self.name = name
        self.device = pick_device(device)
        model = _debug_model(seed) if name == DEBUG_NAME else _pretrained_model(name, path)
        if list(model.sources) != list(SOURCES):
            raise ModelUnavailableError(
                f"Demucs model {name!r} separates {model.sources}; stembridge needs {list(SOURCES)}"
            )
        self._model = model.to(self.device).eval()
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        """The rate the model works at, in Hz (44100 for htdemucs)."""
        return int(self._model.samplerate)

    def separate(self, mix: Audio) -> dict[str, Audio]:
        """Separate ``mix`` into the four sources.

        Args:
            mix: audio at any rate, mono or stereo.

        Returns:
            source name -> stereo audio at ``mix``'s rate and exactly its length.
        """
        import torch
        from demucs.apply import apply_model

        x = resample(mix, self.sample_rate).samples
        if x.shape[0] == 1:
            x = np.repeat(x, 2, axis=0)
        elif x.shape[0] > 2:
            raise ValueError(f"Demucs separates mono or stereo audio, got {x.shape[0]} channels")
        ref = x.mean(axis=0)
        mean, std = float(ref.mean()), float(ref.std())
        scale = std if std > 1e-8 else 1.0
        wav = torch.from_numpy((x - mean) / scale).float()[None]
        with self._lock, torch.inference_mode():
            out = apply_model(
                self._model, wav, shifts=0, split=True, overlap=0.25, progress=False,
                device=self.device,
            )
        est = out[0].float().cpu().numpy() * scale + mean / len(SOURCES)
        result: dict[str, Audio] = {}
        for i, src in enumerate(self._model.sources):
            back = resample(Audio(est[i], self.sample_rate), mix.sample_rate)
            samples = back.samples[:, : mix.num_samples]
            if samples.shape[1] < mix.num_samples:
                samples = np.pad(samples, ((0, 0), (0, mix.num_samples - samples.shape[1])))
            result[src] = Audio(samples, mix.sample_rate)
        return result

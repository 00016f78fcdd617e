"""``stembridge cocomulla train``: fine-tune an adapter on a folder of songs and save it.

The saved file uses the authors' key format, so ``--adapter FILE`` loads it. Training state
is kept in ``FILE.resume`` after every epoch; running the same command again resumes there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conditioning.io.audio import resample
from conditioning.types import Audio
from models.cocomulla.checkpoint import load_adapter, read_checkpoint, save_checkpoint
from models.cocomulla.dataset import dataset_windows
from models.cocomulla.generator import debug_adapter
from models.cocomulla.training import TrainOptions, train_adapter
from models.cocomulla.weights import BASE_MODEL
from models.musicgen.loading import load_debug, load_pretrained
from models.musicgen.sampling import encode_prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSummary:
    """What a training run did."""

    out: Path
    songs: int
    train_windows: int
    held_out_windows: int
    held_out_losses: tuple[float, ...]
    first_loss: float
    last_loss: float
    dropout: dict[str, float | int]


def run_training(
    *, data: str, out: str, model_path: str | None = None, debug: bool = False, init: str | None = None,
    epochs: int = 10, lr: float = 1e-4, clip: float = 0.1, held_out_songs: int = 1, device: str | None = None,
    separator: str = "htdemucs", drop_conditions: float = 0.2, drop_text: float = 0.1, seed: int = 0,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainSummary:
    """Train an adapter on ``data`` and save it to ``out`` (never overwritten).

    Args:
        data: folder of song folders (see :mod:`models.cocomulla.dataset`).
        out: the adapter file to write.
        model_path: local base model folder (default: musicgen-large from the HF cache).
        debug: train on the tiny random debug model (tests).
        init: an adapter checkpoint to start from (default: a fresh random adapter with its gates
            at zero, so training starts from the base model).
        epochs, lr, clip: optimiser settings.
        held_out_songs: songs kept out of training and scored each epoch.
        device: torch device or None to pick.
        separator: Demucs model for songs whose MIDI has no drums.
        drop_conditions: per example, probability that the piano roll is masked, and (drawn
            apart) that the drums are masked.
        drop_text: per example, probability that the text is the empty (unconditional) prompt.
        seed: seed of the shuffling and the condition dropout (same seed, same run).

    Raises:
        ValueError: a probability outside 0..1, or a bad data folder.
        FileExistsError: ``out`` exists.
    """
    from models.render import render_part
    from models.separation.demucs import DemucsSeparator

    options = TrainOptions(
        epochs=epochs, lr=lr, clip=clip, seed=seed, drop_conditions=drop_conditions, drop_text=drop_text
    )  # checked before anything loads
    target = Path(out).expanduser()
    if target.exists():
        raise FileExistsError(f"{target} exists; choose another --out (existing files are never overwritten)")
    lm = load_debug(melody=False, device=device) if debug else load_pretrained(model_path or BASE_MODEL, device=device)
    decoder = lm.model.decoder
    if init is not None:
        adapter = load_adapter(read_checkpoint(init), decoder)
    else:
        adapter = debug_adapter(decoder, gate=0.0)  # gate 0: training starts from the base model
    sep: list[Any] = []

    def encode(audio: np.ndarray) -> np.ndarray:
        return encode_prompt(lm, audio[None]).cpu().numpy().astype(np.int64)  # type: ignore[no-any-return]

    def drums_audio(midi: Any, mix: Audio) -> np.ndarray:
        if any(t.is_drum for t in midi.tracks):
            tm = midi.tempo_map
            end = tm.seconds_to_beat(mix.num_samples / mix.sample_rate)
            audio = render_part(midi.drum_notes, 0, tm, 0.0, end, lm.sample_rate, drums=True)
            return audio.samples.mean(axis=0)  # type: ignore[no-any-return]
        if not sep:
            sep.append(DemucsSeparator("demucs-debug" if debug else separator, device=lm.device))
        drums = sep[0].separate(mix)["drums"]
        return resample(drums, lm.sample_rate).samples.mean(axis=0)  # type: ignore[no-any-return]

    songs = dataset_windows(
        Path(data).expanduser(), sample_rate=lm.sample_rate, frame_rate=lm.frame_rate, encode=encode,
        drums_audio=drums_audio,
    )
    names = sorted(songs)
    keep = min(held_out_songs, len(names) - 1) if len(names) > 1 else 0
    held = [w for name in names[len(names) - keep :] for w in songs[name]]
    train = [w for name in names[: len(names) - keep] for w in songs[name]]
    report = train_adapter(
        lm, adapter, train, held, options=options,
        resume=target.with_name(target.name + ".resume"), on_step=on_step, on_epoch=on_epoch,
    )
    save_checkpoint(adapter, target)
    losses = report.step_losses or [float("nan")]
    return TrainSummary(
        target, len(names), len(train), len(held), tuple(report.held_out), losses[0], losses[-1],
        options.dropout,
    )

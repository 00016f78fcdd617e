"""Fine-tune only the Coco-Mulla adapter on songs (codes of the mix + their content frames).

The base MusicGen stays frozen; the loss is MusicGen's per-codebook cross-entropy over the
delay pattern, with the adapter active (the authors' recipe: AdamW, weight decay 0.02,
gradient clipping, cosine schedule). Examples are one window each: ``T`` codec frames of
the mix, ``T + 1`` condition frames (the adapter's layout), at most 1,000 frames.

Pattern layout (as transformers' MusicGen): step 0 is the start token; codebook ``k`` at step
``s`` holds frame ``s - 1 - k``; the logits at step ``s`` for codebook ``k`` predict frame ``s - k``.

Condition dropout (classifier-free guidance and missing material): per example and step, the
piano roll and the drums are each masked with probability ``drop_conditions`` (the same
``cond_mask`` the generator sets where the song has no such material; the authors' README
reports rates 0.2 and 0.4), and the text is replaced with probability ``drop_text`` by the
empty prompt exactly as the unconditional guidance branch sees it (T5 states zeroed, attention
mask 0). The draws come from ``seed``, so the same seed gives the same run, resumed or not.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from conditioning.io.atomic import atomic_output
from models.cocomulla.adapter import CocoMullaAdapter
from models.cocomulla.features import ContentFrames
from models.cocomulla.logits import adapter_logits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainExample:
    """One training window.

    Attributes:
        codes: (K, T) int64 EnCodec codes of the mix.
        content: T + 1 frames of content conditions.
        text: the text prompt.
    """

    codes: np.ndarray
    content: ContentFrames
    text: str

    def __post_init__(self) -> None:
        if self.codes.ndim != 2 or self.content.frames != self.codes.shape[1] + 1:
            raise ValueError(
                f"a training window needs (K, T) codes and T + 1 content frames; got codes "
                f"{self.codes.shape} and {self.content.frames} frames"
            )


@dataclass(frozen=True)
class TrainOptions:
    """Optimiser settings.

    Attributes:
        epochs: passes over the training examples.
        lr: peak learning rate (cosine decay to 0 over all steps).
        weight_decay: AdamW weight decay.
        clip: gradient-norm clip.
        seed: seed of the shuffling and of the condition dropout.
        drop_conditions: probability (0..1) that an example's piano roll is masked, and
            (drawn apart) that its drums are masked.
        drop_text: probability (0..1) that an example's text is the empty (unconditional) prompt.
    """

    epochs: int = 10
    lr: float = 1e-4
    weight_decay: float = 0.02
    clip: float = 0.1
    seed: int = 0
    drop_conditions: float = 0.2
    drop_text: float = 0.1

    def __post_init__(self) -> None:
        for name in ("drop_conditions", "drop_text"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value} must be a probability from 0 to 1")

    @property
    def dropout(self) -> dict[str, float | int]:
        """The condition-dropout settings (recorded in the resume file)."""
        return {"drop_conditions": self.drop_conditions, "drop_text": self.drop_text, "seed": self.seed}


@dataclass(frozen=True)
class Dropped:
    """Which conditions one training step drops."""

    piano: bool = False
    drums: bool = False
    text: bool = False


def dropout_plan(options: TrainOptions, examples: int) -> list[list[Dropped]]:
    """Per epoch and example (in training-set order), the conditions dropped, from ``options.seed``."""
    draws = np.random.default_rng((options.seed, 1)).random((options.epochs, examples, 3))
    cond, text = options.drop_conditions, options.drop_text
    return [[Dropped(bool(d[0] < cond), bool(d[1] < cond), bool(d[2] < text)) for d in epoch] for epoch in draws]


def with_dropped(example: TrainExample, dropped: Dropped) -> TrainExample:
    """``example`` with the dropped piano roll / drums masked (their ``present`` flags off)."""
    c = example.content
    if not (dropped.piano or dropped.drums):
        return example
    off = np.zeros(c.frames, bool)
    content = ContentFrames(
        c.chords, c.piano_roll, c.drum_codes, off if dropped.piano else c.piano_present,
        off if dropped.drums else c.drums_present,
    )
    return TrainExample(example.codes, content, example.text)


@dataclass
class TrainReport:
    """Losses seen during training (nats per code)."""

    step_losses: list[float] = field(default_factory=list)
    held_out: list[float] = field(default_factory=list)
    epochs_done: int = 0


def pattern_batch(codes: torch.Tensor, start_token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Delay-pattern inputs and targets for codes (B, K, T).

    Returns:
        input_ids (B * K, T + 1) and targets (B, K, T + 1) with -100 where no frame is predicted.
    """
    batch, books, frames = codes.shape
    steps = frames + 1
    ids = torch.full((batch, books, steps), start_token, dtype=torch.long, device=codes.device)
    targets = torch.full((batch, books, steps), -100, dtype=torch.long, device=codes.device)
    for k in range(books):
        if steps - k - 1 > 0:
            ids[:, k, k + 1 :] = codes[:, k, : steps - k - 1]
        targets[:, k, k : k + frames] = codes[:, k, : steps - k]
    return ids.reshape(batch * books, steps), targets


def text_states(lm: Any, texts: Sequence[str], *, null: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected T5 states and mask of ``texts`` for the decoder's cross-attention.

    With ``null`` the states are zeros and the mask 0: the unconditional branch of
    classifier-free guidance (what the decoders feed for "no text").
    """
    model = lm.model
    tok = lm.tokenizer(list(texts), return_tensors="pt", padding=True)
    ids, mask = tok["input_ids"].to(lm.device), tok["attention_mask"].to(lm.device)
    with torch.no_grad():
        hidden = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        if getattr(model, "enc_to_dec_proj", None) is not None:
            hidden = model.enc_to_dec_proj(hidden)
    if null:
        mask = torch.zeros_like(mask)
    return hidden * mask[..., None].to(hidden.dtype), mask


def example_loss(lm: Any, adapter: CocoMullaAdapter, example: TrainExample, *, null_text: bool = False) -> torch.Tensor:
    """Mean cross-entropy (nats per code) of the base model + adapter on one window.

    Args:
        null_text: feed the unconditional (empty) text instead of ``example.text``.
    """
    decoder = lm.model.decoder
    device = adapter.pos_emb.device
    codes = torch.from_numpy(example.codes)[None].to(device)
    ids, targets = pattern_batch(codes, int(decoder.config.bos_token_id))
    hidden, mask = text_states(lm, [example.text], null=null_text)
    c = example.content
    logits = adapter_logits(
        decoder, adapter, input_ids=ids, encoder_hidden_states=hidden, encoder_attention_mask=mask,
        chords=torch.from_numpy(c.chords)[None].to(device),
        piano_roll=torch.from_numpy(c.piano_roll)[None].to(device),
        drum_codes=torch.from_numpy(c.drum_codes)[None].to(device),
        cond_mask=torch.from_numpy(np.stack([c.piano_present, c.drums_present]).astype(np.float32))[None].to(device),
    )
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def held_out_loss(lm: Any, adapter: CocoMullaAdapter, examples: Sequence[TrainExample]) -> float:
    """Mean loss over ``examples`` without gradients (nan when there are none)."""
    if not examples:
        return math.nan
    with torch.no_grad():
        return float(np.mean([float(example_loss(lm, adapter, e)) for e in examples]))


def _save_atomic(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp:  # the resume file is ours to replace
        torch.save(state, tmp)


def train_adapter(
    lm: Any, adapter: CocoMullaAdapter, train: Sequence[TrainExample], held_out: Sequence[TrainExample] = (),
    *, options: TrainOptions = TrainOptions(), resume: str | os.PathLike[str] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainReport:
    """Train ``adapter`` in place; the base model's weights never change.

    Args:
        lm: the loaded MusicGen (``LoadedMusicGen``), frozen.
        adapter: the adapter to train.
        train: training windows.
        held_out: windows scored after every epoch.
        options: optimiser settings.
        resume: a resume file: loaded when it exists, rewritten (temp + rename) after each epoch.
        on_step: called with (step, total steps, loss) after each step.
        on_epoch: called with (epoch, held-out loss) after each epoch.

    Returns:
        Per-step training losses and per-epoch held-out losses.
    """
    if not train:
        raise ValueError("no training windows; give at least one song")
    lm.model.requires_grad_(False)
    adapter.train().requires_grad_(True)
    opt = torch.optim.AdamW(adapter.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    total = options.epochs * len(train)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    report = TrainReport()
    resume_path = Path(resume).expanduser() if resume is not None else None
    if resume_path is not None and resume_path.is_file():
        saved = torch.load(resume_path, map_location="cpu", weights_only=True)
        recorded = saved.get("dropout", options.dropout)
        if recorded != options.dropout:
            raise ValueError(
                f"resume file {resume_path} was trained with {recorded}, not {options.dropout}; pass the "
                "same --drop-conditions, --drop-text and seed, or delete the resume file to start over"
            )
        adapter.load_state_dict(saved["adapter"], strict=True)
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        report.epochs_done = int(saved["epoch"])
        report.held_out = [float(x) for x in saved["held_out"]]
        log.info("resumed from %s after epoch %d", resume_path, report.epochs_done)
    rng = np.random.default_rng(options.seed)
    orders = [rng.permutation(len(train)) for _ in range(options.epochs)]
    drops = dropout_plan(options, len(train))
    step = report.epochs_done * len(train)
    for epoch in range(report.epochs_done, options.epochs):
        for i in orders[epoch]:
            dropped = drops[epoch][int(i)]
            loss = example_loss(lm, adapter, with_dropped(train[int(i)], dropped), null_text=dropped.text)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(adapter.parameters(), options.clip)
            opt.step()
            sched.step()
            step += 1
            value = float(loss.detach())
            report.step_losses.append(value)
            if on_step is not None:
                on_step(step, total, value)
        adapter.eval()
        report.held_out.append(held_out_loss(lm, adapter, held_out))
        adapter.train()
        report.epochs_done = epoch + 1
        log.info("epoch %d: held-out loss %.4f", epoch + 1, report.held_out[-1])
        if on_epoch is not None:
            on_epoch(epoch + 1, report.held_out[-1])
        if resume_path is not None:
            _save_atomic({
                "adapter": adapter.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "epoch": report.epochs_done, "held_out": report.held_out, "dropout": options.dropout,
            }, resume_path)
    adapter.eval().requires_grad_(False)
    return report

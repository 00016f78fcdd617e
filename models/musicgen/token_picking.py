"""Pick the next MusicGen codes from logits on the device: CFG mixing, temperature, top-k, sampling.

The maths follows transformers' stock ``generate()`` for MusicGen step for step, so the same
logits give the same codes:

1. classifier-free guidance: the logits rows are ``[conditional; unconditional]`` halves and mix
   as ``uncond + (cond - uncond) * guidance_scale`` (``ClassifierFreeGuidanceLogitsProcessor``);
2. temperature (only when sampling and not 1), then top-k (only when sampling): every logit
   below the k-th largest becomes ``-inf``;
3. greedy takes the argmax; sampling draws from ``softmax``. Stock draws with
   ``torch.multinomial(probs, 1)``, which PyTorch computes as ``argmax(probs / q)`` with
   ``q ~ Exp(1)`` drawn by ``exponential_`` on the same generator. We draw it that way directly:
   the random stream is the same, and it needs no host synchronisation (multinomial checks its
   input with ``.item()``) so it can sit inside a CUDA graph.

Variations decoded as one batch keep their own seeds: with one ``torch.Generator`` per item,
each item's ``(codebooks, vocab)`` block of ``q`` is drawn from its own generator, which is
exactly the draw a batch of one makes from the global generator seeded the same way.

Nothing here imports torch at module level; tensors are ``torch.Tensor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PickOptions:
    """How codes are chosen from logits.

    Attributes:
        guidance_scale: classifier-free guidance scale; at most 1 means no guidance (logits hold
            only conditional rows).
        top_k: sample among the k most likely codes (0: all codes).
        temperature: logits are divided by this before top-k (sampling only).
        greedy: take the most likely code instead of sampling.
    """

    guidance_scale: float = 3.0
    top_k: int = 250
    temperature: float = 1.0
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be 0 (all codes) or a positive number of codes")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature} must be above 0")

    @property
    def cfg(self) -> bool:
        """Whether the logits carry an unconditional half to mix in."""
        return self.guidance_scale > 1


def mix_guidance(logits: Any, guidance_scale: float) -> Any:
    """Classifier-free guidance over ``(2N, vocab)`` float logits ``[cond; uncond]`` -> ``(N, vocab)``."""
    cond, uncond = logits.split(logits.shape[0] // 2, dim=0)
    return uncond + (cond - uncond) * guidance_scale


def pick(logits: Any, options: PickOptions, generators: Sequence[Any] | None = None) -> Any:
    """Next codes from one step's logits.

    Args:
        logits: ``(rows, vocab)`` logits (any float dtype; cast to float32 as stock does), rows
            ordered ``[cond; uncond]`` when ``options.cfg``.
        options: how to choose.
        generators: one ``torch.Generator`` per batch item (the picked rows split into equal
            item-major blocks, one block per generator), or None for torch's global generator.

    Returns:
        LongTensor ``(rows // 2,)`` with guidance, else ``(rows,)``.

    Raises:
        ValueError: the picked rows do not split into one equal block per generator.
    """
    import torch

    scores = logits.float()
    if options.cfg:
        scores = mix_guidance(scores, options.guidance_scale)
    if options.greedy:
        return torch.argmax(scores, dim=-1)
    if options.temperature != 1.0:
        scores = scores / options.temperature
    if options.top_k:
        k = min(options.top_k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    probs = torch.softmax(scores, dim=-1)
    if generators:
        if probs.shape[0] % len(generators):
            raise ValueError(f"{probs.shape[0]} rows do not split into {len(generators)} equal items")
        block = probs.shape[0] // len(generators)
        if len(generators) == 1:  # one item: its draw, without a copy through cat
            q = torch.empty_like(probs).exponential_(1, generator=generators[0])
        else:
            q = torch.cat([
                torch.empty_like(probs[:block]).exponential_(1, generator=g) for g in generators
            ])
    else:
        q = torch.empty_like(probs).exponential_(1)
    return torch.argmax(probs / q, dim=-1)

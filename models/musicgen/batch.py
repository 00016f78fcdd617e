"""Several sections or variations of one request decoded together as one batch (fast decoder).

One decode of ``B`` items costs little more than one item on a GPU (the step is bound by
reading the weights), so sections that do not continue from each other, or several takes of
one section, are cheaper made together. The generator does not batch sections yet; this is
the entry point for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from models.base import CancelToken
from models.musicgen.loading import LoadedMusicGen
from models.musicgen.sampling import SamplingOptions, encode_prompt


def generate_batch(
    lm: LoadedMusicGen,
    texts: Sequence[str],
    new_frames: int,
    *,
    prompts: Sequence[np.ndarray] | None = None,
    chromas: Sequence[np.ndarray] | None = None,
    options: SamplingOptions,
    cancel: CancelToken,
    on_step: Callable[[int], None] = lambda step: None,
) -> np.ndarray:
    """Continue each prompt (or start fresh) by ``new_frames`` codec frames, all in one batch.

    Args:
        lm: the loaded model.
        texts: one text prompt per item (repeat a text for variations of it).
        new_frames: codec frames to add to every item.
        prompts: per item ``(channels, samples)`` audio at the model rate, a whole number of
            frames and the same length for all items; or None.
        chromas: per item ``(frames, 12)`` chroma of one length (melody models), or None.
        options: sampling settings (``decoder`` is ignored: batches use the fast decoder).
        cancel: stops generation between steps.
        on_step: called with the step number after each step.

    Returns:
        ``(items, channels, samples)`` float32: each item's prompt audio then its new audio.

    Raises:
        ValueError: no texts, or prompts / chromas of a different count or of unequal lengths.
    """
    import torch

    from models.musicgen.fast_decode import FastMusicGenDecoder
    from models.musicgen.token_picking import PickOptions

    if not texts:
        raise ValueError("generate_batch needs at least one text prompt")
    for name, items in (("prompts", prompts), ("chromas", chromas)):
        if items is not None and len(items) != len(texts):
            raise ValueError(f"{len(items)} {name} for {len(texts)} texts; give one per text or none")
        if items is not None and len({item.shape for item in items}) > 1:
            raise ValueError(f"the {name} of one batch must all have one shape; trim them to the shortest")
    inputs = lm.tokenizer(list(texts), return_tensors="pt", padding=True)
    codes = None
    if prompts is not None:
        codes = torch.cat([encode_prompt(lm, p) for p in prompts], dim=0)
    chroma = None
    if chromas is not None and lm.melody:
        dtype = next(lm.model.parameters()).dtype
        chroma = torch.from_numpy(np.stack(chromas)).to(lm.device, dtype)
    delay = int(lm.model.config.decoder.num_codebooks // lm.model.config.decoder.audio_channels) - 1

    def step(n: int) -> None:
        cancel.check()
        on_step(n)

    fast = FastMusicGenDecoder(lm.model)
    out = fast.generate_codes(
        inputs["input_ids"].to(lm.device), inputs["attention_mask"].to(lm.device),
        max_new_tokens=new_frames + delay,
        options=PickOptions(guidance_scale=options.guidance_scale, top_k=options.top_k),
        prompt_codes=codes, chroma=chroma, on_step=step,
    )
    cancel.check()
    return np.asarray(fast.decode_audio(out).float().cpu().numpy())

"""Several sections or variations of one request decoded together as one batch (fast decoder).

One decode of ``B`` items costs little more than one item on a GPU (the step is bound by
reading the weights), so several takes of one section, or sections that do not continue from
each other, are cheaper made together. :func:`continue_audio_batch` makes the variations of one
section (every window of them) as one batch; :func:`generate_batch` is one such window.

Seeds stay exact: each item samples from its own ``torch.Generator`` seeded with its seed
(:mod:`models.musicgen.token_picking`), and each item's codes are decoded to audio on their
own (EnCodec's batched convolutions round differently in the last bit), so item ``i`` is the
audio :func:`~models.musicgen.sampling.continue_audio` makes with seed ``seeds[i]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.base import CancelToken, ProgressCallback
from models.musicgen.loading import LoadedMusicGen
from models.musicgen.sampling import (
    GLOBAL_RNG_LOCK,
    ChromaFn,
    SamplingOptions,
    encode_prompt,
    generate_window,
    run_windows,
)


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
    generators: Sequence[Any] | None = None,
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
        generators: one ``torch.Generator`` per item (on the model's device), or None for
            torch's global generator.

    Returns:
        ``(items, channels, samples)`` float32: each item's prompt audio then its new audio,
        each decoded on its own.

    Raises:
        ValueError: no texts, or prompts / chromas / generators of a different count, or
            prompts / chromas of unequal lengths.
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
        prompt_codes=codes, chroma=chroma, on_step=step, generators=generators,
    )
    cancel.check()
    audio = [fast.decode_audio(out[i : i + 1])[0].float().cpu().numpy() for i in range(int(out.shape[0]))]
    return np.stack(audio)


def continue_audio_batch(
    lm: LoadedMusicGen,
    text: str,
    duration_s: float,
    *,
    seeds: Sequence[int],
    start_s: float,
    prompt: np.ndarray | None,
    chroma_for: ChromaFn,
    options: SamplingOptions,
    cancel: CancelToken,
    progress: ProgressCallback,
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> tuple[list[np.ndarray], int]:
    """:func:`~models.musicgen.sampling.continue_audio` for several seeds, decoded as one batch.

    Every variation continues the same ``prompt`` through the same windows; each window of all
    of them is one decode of the fast decoder (whatever ``options.decoder`` says). Variation
    ``i`` is exactly what ``continue_audio(..., seed=seeds[i])`` makes on a CPU, where both run
    the same kernels: its random draws come from its own generator seeded with ``seeds[i]``.
    A window of fewer than ``codebooks - 1`` new frames, which ``continue_audio`` makes on the
    stock loop, is made here the same way, one variation at a time, with torch's random state
    swapped for the variation's own.

    Args:
        lm: the loaded model.
        text: the text prompt (the same for every variation).
        duration_s: seconds of new audio per variation.
        seeds: one random seed per variation.
        start_s: song time (seconds) where the new audio starts, for the chroma.
        prompt: ``(channels, samples)`` audio at the model rate just before ``start_s``, or None.
        chroma_for: gives the chroma of a song span (and a variation's prompt audio inside it).
        options: sampling settings.
        cancel: checked between steps.
        progress: progress callback; fractions run over ``progress_span``.
        progress_span: the (start, end) fractions this call reports across.

    Returns:
        (per seed the new audio ``(channels, samples)`` at the model rate, windows used).

    Raises:
        ValueError: no seeds.
    """
    import torch

    if not seeds:
        raise ValueError("continue_audio_batch needs at least one seed")
    generators = [torch.Generator(device=lm.device).manual_seed(int(s)) for s in seeds]
    per_channel = int(lm.model.config.decoder.num_codebooks // lm.model.config.decoder.audio_channels)

    def window(new: int, contexts: list[np.ndarray | None], chromas: list[np.ndarray | None],
               on_step: Callable[[int], None]) -> list[np.ndarray]:
        if new < per_channel - 1:
            return [stock_window(lm, text, new, c, m, g, options, cancel, on_step)
                    for c, m, g in zip(contexts, chromas, generators, strict=True)]
        prompts = None if contexts[0] is None else [c for c in contexts if c is not None]
        have = None if chromas[0] is None else [m for m in chromas if m is not None]
        return list(generate_batch(
            lm, [text] * len(seeds), new, prompts=prompts, chromas=have, options=options, cancel=cancel,
            on_step=on_step, generators=generators,
        ))

    return run_windows(
        lm, len(seeds), duration_s, start_s=start_s, prompt=prompt, chroma_for=chroma_for, options=options,
        cancel=cancel, progress=progress, progress_span=progress_span, window_hook=None, make_window=window,
    )


def stock_window(
    lm: LoadedMusicGen, text: str, new: int, context: np.ndarray | None, chroma: np.ndarray | None,
    generator: Any, options: SamplingOptions, cancel: CancelToken, on_step: Callable[[int], None],
) -> np.ndarray:
    """One variation's too-short window on the stock loop, drawing from ``generator``'s stream."""
    return drawing_from(generator, lambda: generate_window(
        lm, text, new, prompt=context, chroma=chroma, options=options, cancel=cancel, on_step=on_step,
    ))


def drawing_from(generator: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``make()`` with torch's global random state swapped for ``generator``'s (and back after).

    For stock code that draws from the global stream: ``generator`` ends in the state ``make``
    left the stream in, so a variation's draws continue across calls as on the fast decoder.
    """
    import torch

    cuda = generator.device.type == "cuda"
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[generator.device] if cuda else []):
        if cuda:
            torch.cuda.set_rng_state(generator.get_state(), generator.device)
        else:
            torch.set_rng_state(generator.get_state())
        out = make()
        generator.set_state(torch.cuda.get_rng_state(generator.device) if cuda else torch.get_rng_state())
    return out

"""Generation with the Coco-Mulla adapter: per-window content conditions, fast or stock decoding.

MusicGen's window schedule (:func:`models.musicgen.sampling.run_windows`) makes the windows
and the continuity. :class:`ConditionedWindows` is its window hook: for each window it builds
the content conditions of the window's frames and runs the condition stream once.
:func:`continue_with_content` then makes each window of every take:

* **fast** (the default): one :class:`~models.cocomulla.fast.CocoMullaFastDecoder` decode for
  all takes, the condition states repeated per take and per classifier-free-guidance branch;
  take ``i`` samples from its own ``torch.Generator`` seeded with ``seeds[i]``, so it is the
  take a batch of one makes with that seed (on a CPU exactly; on a GPU batched matrix products
  may round differently). Windows too short for the delay pattern run on the stock loop, one
  take at a time, with torch's random state swapped for the take's own.
* **stock**: transformers' ``generate()`` with the condition attention attached to the
  decoder's modules (:func:`~models.cocomulla.adapter.attached`), one take, torch's global
  random generator seeded with the seed (the codes the fast path gives too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import torch

from models.base import CancelToken, ProgressCallback
from models.cocomulla.adapter import CocoMullaAdapter, ConditionStates, attached, condition_states
from models.cocomulla.features import ContentFrames
from models.musicgen.batch import drawing_from
from models.musicgen.loading import LoadedMusicGen
from models.musicgen.sampling import (
    GLOBAL_RNG_LOCK,
    SamplingOptions,
    encode_prompt,
    generate_window,
    pick_decoder,
    run_windows,
)

#: Content of a window: ``(start_s, frames) -> ContentFrames``.
ContentFn = Callable[[float, int], ContentFrames]


def states_for(decoder: Any, adapter: CocoMullaAdapter, content: ContentFrames, *, query_frames: int) -> ConditionStates:
    """Condition states of one window (batch 1) from numpy content frames."""
    device = adapter.pos_emb.device
    with torch.inference_mode():
        return condition_states(
            decoder, adapter,
            chords=torch.from_numpy(content.chords)[None].to(device),
            piano_roll=torch.from_numpy(content.piano_roll)[None].to(device),
            drum_codes=torch.from_numpy(content.drum_codes)[None].to(device),
            cond_mask=torch.from_numpy(
                np.stack([content.piano_present, content.drums_present]).astype(np.float32)
            )[None].to(device),
            query_frames=query_frames,
        )


class ConditionedWindows:
    """Window hook for ``run_windows``: the window's condition states, while the window is made.

    Args:
        decoder: the model's ``MusicgenForCausalLM``.
        adapter: the adapter.
        content: gives the content frames of a span of song time.

    A window of F audio frames gets F + 1 condition frames (the adapter's layout: steps
    0..F, step 0 the start token); steps from F on use the query of frame F - 1, as the
    authors' generation does. Inside the context :attr:`current` holds the states (batch 1).
    """

    def __init__(self, decoder: Any, adapter: CocoMullaAdapter, content: ContentFn) -> None:
        self.decoder = decoder
        self.adapter = adapter
        self.content = content
        self.windows: list[tuple[float, int]] = []
        self._current: ConditionStates | None = None

    @property
    def current(self) -> ConditionStates:
        """The states of the window being made.

        Raises:
            RuntimeError: outside a window.
        """
        if self._current is None:
            raise RuntimeError("no Coco-Mulla window is open; make windows inside the hook's context")
        return self._current

    def __call__(self, start_s: float, frames: int) -> Any:
        if frames + 1 > self.adapter.max_frames:
            raise ValueError(
                f"a window of {frames} frames needs {frames + 1} condition frames; the adapter covers "
                f"{self.adapter.max_frames} (use window_s <= {(self.adapter.max_frames - 1) / 50:g})"
            )
        self.windows.append((start_s, frames))
        return self._open(start_s, frames)

    @contextmanager
    def _open(self, start_s: float, frames: int) -> Iterator[ConditionStates]:
        content = self.content(start_s, frames + 1)
        self._current = states_for(self.decoder, self.adapter, content, query_frames=frames)
        try:
            yield self._current
        finally:
            self._current = None


def continue_with_content(
    lm: LoadedMusicGen,
    windows: ConditionedWindows,
    text: str,
    duration_s: float,
    *,
    seeds: Sequence[int],
    start_s: float,
    prompt: np.ndarray | None,
    options: SamplingOptions,
    cancel: CancelToken,
    progress: ProgressCallback,
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> tuple[list[np.ndarray], int]:
    """``duration_s`` seconds of new audio per seed, continuing ``prompt``, content-conditioned.

    Args:
        lm: the loaded base model (plain MusicGen).
        windows: the content hook of the section.
        text: the text prompt.
        duration_s: seconds of new audio per take.
        seeds: one random seed per take (several need the fast decoder).
        start_s: song time (seconds) where the new audio starts.
        prompt: ``(channels, samples)`` audio at the model rate just before ``start_s``, or None.
        options: sampling settings (``decoder`` picks fast or stock).
        cancel: checked between steps.
        progress: progress callback; fractions run over ``progress_span``.
        progress_span: the (start, end) fractions this call reports across.

    Returns:
        (per seed the new audio ``(channels, samples)`` at the model rate, windows used).

    Raises:
        ValueError: no seeds, or several with the stock decoder.
    """
    if not seeds:
        raise ValueError("continue_with_content needs at least one seed")
    fast = pick_decoder(options.decoder, lm.device) == "fast"
    if not fast and len(seeds) > 1:
        raise ValueError("takes decode as one batch only on the fast decoder; make stock takes one at a time")
    stock = dataclasses.replace(options, decoder="stock")
    branches = 2 if options.guidance_scale > 1 else 1
    delay = int(lm.model.config.decoder.num_codebooks // lm.model.config.decoder.audio_channels) - 1
    generators = [torch.Generator(device=lm.device).manual_seed(int(s)) for s in seeds] if fast else None

    def window(new: int, contexts: list[np.ndarray | None], chromas: list[np.ndarray | None],
               on_step: Callable[[int], None]) -> list[np.ndarray]:
        states = windows.current
        if generators is None:  # stock, torch's global generator (seeded below)
            with attached(lm.model.decoder, states.repeated(branches)):
                return [generate_window(lm, text, new, prompt=contexts[0], chroma=None, options=stock,
                                        cancel=cancel, on_step=on_step)]
        if new < delay:  # too short for the fast loop: stock, one take at a time
            with attached(lm.model.decoder, states.repeated(branches)):
                return [drawing_from(g, partial(
                    generate_window, lm, text, new, prompt=c, chroma=None, options=stock, cancel=cancel,
                    on_step=on_step,
                )) for c, g in zip(contexts, generators, strict=True)]
        return _fast_takes(lm, states, text, new + delay, contexts, options, generators, cancel, on_step)

    def run() -> tuple[list[np.ndarray], int]:
        return run_windows(
            lm, len(seeds), duration_s, start_s=start_s, prompt=prompt, chroma_for=lambda a, b, p: None,
            options=options, cancel=cancel, progress=progress, progress_span=progress_span,
            window_hook=windows, make_window=window,
        )

    if fast:
        return run()
    with GLOBAL_RNG_LOCK:
        torch.manual_seed(int(seeds[0]))
        return run()


def _fast_takes(
    lm: LoadedMusicGen, states: ConditionStates, text: str, steps: int, contexts: list[np.ndarray | None],
    options: SamplingOptions, generators: Sequence[Any], cancel: CancelToken, on_step: Callable[[int], None],
) -> list[np.ndarray]:
    """One window of every take as one fast decode; each take's codes decoded to audio on their own."""
    from models.cocomulla.fast import CocoMullaFastDecoder
    from models.musicgen.token_picking import PickOptions

    inputs = lm.tokenizer([text] * len(generators), return_tensors="pt", padding=True)
    codes = None
    if contexts[0] is not None:
        codes = torch.cat([encode_prompt(lm, c) for c in contexts if c is not None], dim=0)

    def step(n: int) -> None:
        cancel.check()
        on_step(n)

    fast = CocoMullaFastDecoder(lm.model, states)
    out = fast.generate_codes(
        inputs["input_ids"], inputs["attention_mask"], max_new_tokens=steps,
        options=PickOptions(guidance_scale=options.guidance_scale, top_k=options.top_k),
        prompt_codes=codes, on_step=step, generators=generators,
    )
    cancel.check()
    return [fast.decode_audio(out[i : i + 1])[0].float().cpu().numpy() for i in range(int(out.shape[0]))]


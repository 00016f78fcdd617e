"""Generation with the Coco-Mulla adapter: per-window conditions attached to MusicGen's decoder.

MusicGen's own sampling loop (:func:`models.musicgen.sampling.continue_audio`) makes the
windows and the continuity; :class:`ConditionedWindows` is its window hook. For each window
it builds the content conditions of the window's frames, runs the condition stream once, and
attaches the condition attention to the decoder while transformers' ``generate`` decodes
incrementally with its KV cache. Under classifier-free guidance the states are repeated so
both branches ([text; no text]) see the same content conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import torch

from models.cocomulla.adapter import CocoMullaAdapter, ConditionStates, attached, condition_states
from models.cocomulla.features import ContentFrames

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
    """Window hook for ``continue_audio``: attach the window's content conditions.

    Args:
        decoder: the model's ``MusicgenForCausalLM``.
        adapter: the adapter.
        content: gives the content frames of a span of song time.
        guidance_scale: the sampling CFG scale (> 1 doubles the batch).

    A window of F audio frames gets F + 1 condition frames (the adapter's layout: steps
    0..F, step 0 the start token); steps from F on use the query of frame F - 1, as the
    authors' generation does.
    """

    def __init__(self, decoder: Any, adapter: CocoMullaAdapter, content: ContentFn, *, guidance_scale: float) -> None:
        self.decoder = decoder
        self.adapter = adapter
        self.content = content
        self.branches = 2 if guidance_scale > 1 else 1
        self.windows: list[tuple[float, int]] = []

    def __call__(self, start_s: float, frames: int) -> AbstractContextManager[None]:
        if frames + 1 > self.adapter.max_frames:
            raise ValueError(
                f"a window of {frames} frames needs {frames + 1} condition frames; the adapter covers "
                f"{self.adapter.max_frames} (use window_s <= {(self.adapter.max_frames - 1) / 50:g})"
            )
        self.windows.append((start_s, frames))
        return self._attach(start_s, frames)

    @contextmanager
    def _attach(self, start_s: float, frames: int) -> Iterator[None]:
        content = self.content(start_s, frames + 1)
        states = states_for(self.decoder, self.adapter, content, query_frames=frames)
        if self.branches > 1:
            states = states.repeated(self.branches)
        with attached(self.decoder, states):
            yield

"""Coco-Mulla generators: MusicGen's output path with chords, piano roll and drums as content.

:class:`CocoMullaGenerator` is a :class:`~models.musicgen.generator.MusicGenGenerator` whose
sampling windows carry the adapter's content conditions (see :mod:`models.cocomulla.generation`),
so continuity from the previous section, bar-range regeneration, grid conforming, loudness and
Demucs stems are MusicGen's own. Windows are at most 20 s (the adapter's 1,001 frames).

Decoding is the fast decoder with the adapter (:mod:`models.cocomulla.fast`) unless
``decoder="stock"``; on the fast decoder the takes of one section decode as one batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch

from conditioning.types import SectionConditioning
from models.base import (
    CancelToken,
    Generation,
    GenerationContext,
    Generator,
    ModelUnavailableError,
    ProgressCallback,
)
from models.cocomulla.adapter import CocoMullaAdapter
from models.cocomulla.checkpoint import load_adapter, read_checkpoint
from models.cocomulla.features import content_frames
from models.cocomulla.generation import ConditionedWindows, continue_with_content
from models.cocomulla.weights import ADAPTER_HINT, BASE_MODEL, adapter_path
from models.musicgen.generator import MusicGenGenerator
from models.musicgen.sampling import encode_prompt, pick_decoder

log = logging.getLogger(__name__)

#: Longest window in seconds: 1,000 audio frames + 1 condition frame at 50 Hz.
MAX_WINDOW_S = 20.0


def debug_adapter(decoder: Any, *, seed: int = 0, gate: float = 0.5) -> CocoMullaAdapter:
    """A random adapter over every layer of ``decoder`` (for ``cocomulla-debug``)."""
    adapter = CocoMullaAdapter(
        num_layers=int(decoder.config.num_hidden_layers), start_layer=0,
        hidden_size=int(decoder.config.hidden_size),
    ).to(next(decoder.parameters()).device)
    adapter.reset_random(torch.Generator().manual_seed(seed), gate=gate)
    return adapter


class CocoMullaGenerator(MusicGenGenerator):
    """MusicGen with the Coco-Mulla adapter.

    Args:
        adapter: the adapter checkpoint (.pth, the authors' key format); with ``debug`` and no
            file, a random adapter is built in memory.
        debug: tiny random base model (CPU tests).
        model: hub id of the base model (musicgen-large for the released adapter).
        window_s: seconds per generate() call, at most 20.
        soundfont: SoundFont for rendering the drum MIDI (None: pretty_midi's).
        adapter_seed: seed of the debug adapter.
        **options: everything else :class:`MusicGenGenerator` takes (model_path, device,
            dtype, separator, context_s, guidance_scale, ...).

    Raises:
        ModelUnavailableError: base model or adapter missing, unreadable or not fitting the base
            model (the message says what to do).
        ValueError: a window longer than 20 s.
    """

    name: ClassVar[str] = "cocomulla"

    def __init__(
        self, *, adapter: str | None = None, debug: bool = False, model: str = BASE_MODEL,
        window_s: float = MAX_WINDOW_S, soundfont: str | None = None, adapter_seed: int = 0,
        **options: Any,
    ) -> None:
        if not 0 < window_s <= MAX_WINDOW_S:
            raise ValueError(f"window_s={window_s} must be in (0, {MAX_WINDOW_S:g}] seconds (the adapter covers 20 s)")
        path = adapter_path(adapter)
        if not debug and path is None:
            raise ModelUnavailableError(f"cocomulla needs an adapter checkpoint: {ADAPTER_HINT}")
        try:
            state = read_checkpoint(path) if path is not None else None  # fail before the big load
        except (FileNotFoundError, ValueError) as exc:
            raise ModelUnavailableError(f"{exc}; {ADAPTER_HINT}") from exc
        options.pop("melody", None)
        super().__init__(model=model, debug=debug, melody=False, window_s=window_s, **options)
        if self.lm.melody:
            raise ValueError("Coco-Mulla adapts plain MusicGen (musicgen-large), not MusicGen-melody")
        decoder = self.lm.model.decoder
        try:
            self.adapter = (
                load_adapter(state, decoder) if state is not None else debug_adapter(decoder, seed=adapter_seed)
            )
        except ValueError as exc:
            raise ModelUnavailableError(f"adapter {path} does not fit the base model {self.lm.source}: {exc}") from exc
        self.adapter.eval().requires_grad_(False)
        self.adapter_source = str(path) if path is not None else "debug (random, in memory)"
        self.soundfont = soundfont

    def _render_drums(self, conditioning: SectionConditioning, start_s: float, samples: int, sample_rate: int) -> np.ndarray:
        """The song's drum MIDI from ``start_s``, mono, exactly ``samples`` long."""
        from models.render import render_part

        tm = conditioning.tempo_map
        notes = conditioning.drums.notes if conditioning.drums is not None else ()
        b0 = tm.seconds_to_beat(start_s)
        b1 = tm.seconds_to_beat(start_s + samples / sample_rate)
        audio = render_part(notes, 0, tm, b0, b1, sample_rate, drums=True, soundfont=self.soundfont)
        mono = audio.samples.mean(axis=0).astype(np.float32)
        out = np.zeros(samples, dtype=np.float32)
        out[: min(samples, mono.shape[0])] = mono[:samples]
        return out

    def _encode(self, audio: np.ndarray) -> np.ndarray:
        codes = encode_prompt(self.lm, audio[None])
        return codes.cpu().numpy().astype(np.int64)  # type: ignore[no-any-return]

    def _window_hook(self, conditioning: SectionConditioning) -> ConditionedWindows:
        content = partial(
            content_frames, conditioning, frame_rate=self.lm.frame_rate,
            codebooks=int(self.lm.model.config.decoder.num_codebooks),
            render_drums=partial(self._render_drums, conditioning), encode=self._encode,
            sample_rate=self.lm.sample_rate,
        )
        return ConditionedWindows(self.lm.model.decoder, self.adapter, content)

    def _continue(
        self, conditioning: SectionConditioning, plan: Any, seeds: Sequence[int], cancel: CancelToken,
        progress: ProgressCallback,
    ) -> tuple[list[np.ndarray], int]:
        """New model audio of the planned span, one per seed (all decoded as one batch)."""
        return continue_with_content(
            self.lm, self._window_hook(conditioning), conditioning.prompt, plan.gen_s + self.margin_s,
            seeds=seeds, start_s=plan.start_s, prompt=plan.prompt, options=self.options, cancel=cancel,
            progress=progress, progress_span=(0.0, 0.8),
        )

    def _generate(self, conditioning: SectionConditioning, ctx: GenerationContext) -> Generation:
        plan = self._plan(conditioning, ctx)
        ctx.progress(0.0, f"{conditioning.section.name}: Coco-Mulla starting")
        raws, windows = self._continue(conditioning, plan, [ctx.seed], ctx.cancel, ctx.progress)
        ctx.cancel.check()
        return self._described(conditioning, self._finish(conditioning, plan, raws[0], windows, ctx.progress))

    def _generate_variations(
        self, conditioning: SectionConditioning, ctxs: Sequence[GenerationContext], progress: ProgressCallback
    ) -> list[Generation]:
        """All takes of one section (every window of them) as one batch on the fast decoder.

        Take ``i`` is what :meth:`_generate` makes with ``ctxs[i].seed`` (exactly on a CPU; see
        :mod:`models.cocomulla.generation`). With the stock decoder, or a single take, the
        takes are made one by one.
        """
        if len(ctxs) == 1 or pick_decoder(self.options.decoder, self.lm.device) != "fast":
            return Generator._generate_variations(self, conditioning, ctxs, progress)
        first = ctxs[0]
        plan = self._plan(conditioning, first)  # the takes share base, range and previous audio
        progress(0.0, f"{conditioning.section.name}: Coco-Mulla starting {len(ctxs)} takes as one batch")
        raws, windows = self._continue(conditioning, plan, [c.seed for c in ctxs], first.cancel, progress)
        takes = self._finish_takes(conditioning, plan, raws, windows, first.cancel, progress)
        return [self._described(conditioning, made) for made in takes]

    def _described(self, conditioning: SectionConditioning, made: Generation) -> Generation:
        """``made`` with the Coco-Mulla backend, adapter and content in its info."""
        info = {
            **made.info, "backend": "cocomulla", "adapter": self.adapter_source,
            "content": {
                "chords": conditioning.chords is not None and bool(conditioning.chords.spans),
                "piano_roll": _piano_roll_source(conditioning),
                "drums": conditioning.drums is not None and bool(conditioning.drums.notes),
            },
        }
        return dataclasses.replace(made, info=info)


def _piano_roll_source(conditioning: SectionConditioning) -> str:
    """Where the piano roll came from, for the generation info."""
    chords = conditioning.chords
    if chords is not None and chords.notes is not None:
        return "from the chord notes"
    if chords is not None and chords.spans:
        return "from chord symbols"
    return "masked"


def build(**options: Any) -> CocoMullaGenerator:
    """Registry factory: ``CocoMullaGenerator(**options)``."""
    return CocoMullaGenerator(**options)

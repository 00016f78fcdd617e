"""MusicGen behind the Generator interface: text (+ melody/chord chroma) in, stems out.

One section: MusicGen makes a mono mix continuing from the previous section's tail (or, when
regenerating a bar range, from the audio just before the range); the mix is conformed to the
bar grid (:mod:`models.conform`), loudness-normalised, split by Demucs into the requested stems
(:mod:`models.separation.stems` documents the mapping) and returned at the project rate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from conditioning.io.audio import resample
from conditioning.types import Audio, SectionConditioning
from models.base import CancelToken, Generation, GenerationContext, Generator, ProgressCallback
from models.conform import apply_fades, conform_to_grid, loudness_lufs, normalize_loudness
from models.musicgen.batch import continue_audio_batch
from models.musicgen.chroma import audio_chroma, conditioning_chroma
from models.musicgen.coalesce import (
    DEFAULT_MAX_BATCH,
    DEFAULT_WAIT_S,
    WindowCoalescer,
    check_batching,
    continue_audio_coalesced,
)
from models.musicgen.loading import LoadedMusicGen, load_debug, load_pretrained
from models.musicgen.sampling import SamplingOptions, WindowHook, continue_audio, pick_decoder
from models.separation.demucs import DemucsSeparator
from models.separation.stems import stems_from_sources

log = logging.getLogger(__name__)

#: Integrated loudness targets per stem (LUFS); other stems use ``DEFAULT_STEM_LUFS``.
STEM_LUFS: dict[str, float] = {"drums": -16.0, "bass": -18.0, "vocals": -18.0, "lead": -19.0, "keys": -20.0}
DEFAULT_STEM_LUFS = -20.0


class MusicGenGenerator(Generator):
    """MusicGen / MusicGen-melody generator.

    Args:
        model: hub id of the weights (e.g. "facebook/musicgen-small"); ignored for debug models.
        model_path: a local folder saved with ``save_pretrained``; takes precedence over ``model``.
        debug: build the tiny random debug model instead of loading weights.
        melody: with ``debug``, build the melody (chroma-conditioned) variant.
        device: "cuda", "mps", "cpu" or None to pick.
        dtype: "float32", "float16", "bfloat16" or None (half precision on GPU).
        separator: Demucs model name ("htdemucs", or "demucs-debug").
        separator_path: a local demucs model folder for ``separator``.
        window_s: longest single generate() call in seconds (the model's 30 s window).
        context_s: seconds of earlier audio each window or section continues from.
        margin_s: extra seconds generated so tempo alignment can trim the start.
        guidance_scale: classifier-free guidance scale.
        top_k: top-k sampling.
        decoder: "auto", "stock" or "fast" decoding loop (:func:`~models.musicgen.sampling.pick_decoder`).
        mix_lufs: loudness of the mix before separation (LUFS).
        stem_lufs: per-stem loudness targets (LUFS), merged over :data:`STEM_LUFS`.
        max_stem_gain_db: most a stem is boosted towards its target (keeps separation residue quiet).
        melody_weight: weight of the melody pitch class in the chroma.
        chord_weight: weight of each chord tone in the chroma.
        coalesce: with the fast decoder, let calls running at once in different threads share
            each window's decode (:mod:`models.musicgen.coalesce`); every call still gets its
            seed's audio, and a call alone runs as it would without it.
        batch_wait_s: longest wait (seconds) of a window for other calls' windows.
        max_batch: most windows one shared decode holds.

    Raises:
        ModelUnavailableError: weights are missing; the message says how to get them.
    """

    name: ClassVar[str] = "musicgen"

    def __init__(
        self,
        *,
        model: str = "facebook/musicgen-small",
        model_path: str | None = None,
        debug: bool = False,
        melody: bool = False,
        device: str | None = None,
        dtype: str | None = None,
        separator: str = "htdemucs",
        separator_path: str | None = None,
        window_s: float = 30.0,
        context_s: float = 10.0,
        margin_s: float = 0.5,
        guidance_scale: float = 3.0,
        top_k: int = 250,
        decoder: str = "auto",
        mix_lufs: float = -14.0,
        stem_lufs: Mapping[str, float] | None = None,
        max_stem_gain_db: float = 6.0,
        melody_weight: float = 1.0,
        chord_weight: float = 0.5,
        coalesce: bool = True,
        batch_wait_s: float = DEFAULT_WAIT_S,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        check_batching(batch_wait_s, max_batch)
        self.options = SamplingOptions(
            window_s=window_s, context_s=context_s, guidance_scale=guidance_scale, top_k=top_k,
            decoder=decoder,
        )
        self.lm: LoadedMusicGen = (
            load_debug(melody=melody, device=device)
            if debug
            else load_pretrained(model_path or model, device=device, dtype=dtype)
        )
        self.separator = DemucsSeparator(separator, path=separator_path, device=self.lm.device)
        self.margin_s = margin_s
        self.mix_lufs = mix_lufs
        self.stem_lufs = {**STEM_LUFS, **(stem_lufs or {})}
        self.max_stem_gain_db = max_stem_gain_db
        self.melody_weight = melody_weight
        self.chord_weight = chord_weight
        #: Shares the windows of concurrent calls (None: each call decodes alone).
        self.coalescer = WindowCoalescer(self.lm, wait_s=batch_wait_s, max_batch=max_batch) if coalesce else None

    # -- helpers ----------------------------------------------------------------------------
    def _to_model(self, audio: Audio) -> np.ndarray:
        """``audio`` at the model's rate and channel count (mono, or stereo for stereo models)."""
        x = resample(audio, self.lm.sample_rate).samples
        channels = int(self.lm.model.config.decoder.audio_channels)
        if channels == 1:
            return x.mean(axis=0, keepdims=True)
        return x if x.shape[0] == channels else np.repeat(x[:1], channels, axis=0)

    def _chroma_fn(self, conditioning: SectionConditioning) -> Any:
        def chroma_for(start_s: float, end_s: float, prompt: np.ndarray | None) -> np.ndarray | None:
            rate = self.lm.chroma_rate
            if not self.lm.melody:
                return None
            p_s = 0.0 if prompt is None else prompt.shape[1] / self.lm.sample_rate
            new = conditioning_chroma(
                conditioning, start_s + p_s, end_s, rate,
                melody_weight=self.melody_weight, chord_weight=self.chord_weight,
            )
            if new is None:
                return None
            if prompt is None:
                return new
            heard = audio_chroma(Audio(prompt, self.lm.sample_rate), rate)
            return np.concatenate([heard, new], axis=0)

        return chroma_for

    def _window_hook(self, conditioning: SectionConditioning) -> WindowHook | None:
        """Per-window context for :func:`continue_audio` (None here; content-conditioned subclasses)."""
        return None

    def _stems(self, mix: Audio, stems: tuple[str, ...]) -> tuple[dict[str, Audio], dict[str, Any]]:
        sources = self.separator.separate(mix)
        split, notes = stems_from_sources(sources, stems)
        out: dict[str, Audio] = {}
        loud: dict[str, float] = {}
        for name, audio in split.items():
            target = self.stem_lufs.get(name, DEFAULT_STEM_LUFS)
            audio, _ = normalize_loudness(audio, target, max_gain_db=self.max_stem_gain_db)
            out[name] = apply_fades(audio)
            loud[name] = round(loudness_lufs(out[name]), 2)
        return out, {"stem_sources": notes, "stem_lufs": loud}

    # -- the backend hooks ------------------------------------------------------------------
    def _generate(self, conditioning: SectionConditioning, ctx: GenerationContext) -> Generation:
        plan = self._plan(conditioning, ctx)
        ctx.progress(0.0, f"{conditioning.section.name}: MusicGen starting")
        hook = self._window_hook(conditioning)
        if self.coalescer is not None and hook is None and pick_decoder(self.options.decoder, self.lm.device) == "fast":
            raw, windows = continue_audio_coalesced(
                self.lm, self.coalescer, conditioning.prompt, plan.gen_s + self.margin_s,
                start_s=plan.start_s, prompt=plan.prompt, chroma_for=self._chroma_fn(conditioning),
                options=self.options, seed=ctx.seed, cancel=ctx.cancel, progress=ctx.progress,
                progress_span=(0.0, 0.8),
            )
        else:
            raw, windows = continue_audio(
                self.lm, conditioning.prompt, plan.gen_s + self.margin_s,
                start_s=plan.start_s, prompt=plan.prompt, chroma_for=self._chroma_fn(conditioning),
                options=self.options, seed=ctx.seed, cancel=ctx.cancel, progress=ctx.progress,
                progress_span=(0.0, 0.8), window_hook=hook,
            )
        ctx.cancel.check()
        return self._finish(conditioning, plan, raw, windows, ctx.progress)

    def _generate_variations(
        self, conditioning: SectionConditioning, ctxs: Sequence[GenerationContext], progress: ProgressCallback
    ) -> list[Generation]:
        """All takes of one section (and every window of them) decoded as one batch.

        Take ``i`` is exactly the audio :meth:`_generate` makes with ``ctxs[i].seed`` on a CPU
        (:func:`~models.musicgen.batch.continue_audio_batch`: one random generator per take,
        each take's codes decoded on its own); on a GPU, batched matrix products may round
        differently from a batch of one, so a take can differ there in the last bits and the
        codes sampled from them. The takes share the section's prompt audio (the previous
        section's tail, or the audio before a regenerated range), which is why they can
        decode together.

        Sections of one request do not decode together: each continues from the previous
        section's finished mix (its first take, conformed, loudness-normalised and split into
        stems), so section ``k + 1``'s first step needs section ``k``'s last. Only a request's
        first section has no earlier audio, and nothing else in a request is free of that
        chain, so there is no second section to batch it with.

        Takes are made one by one, as the base class does, with the stock decoder (its random
        stream is torch's global one), for a single take, and for subclasses with a window
        hook (their per-window conditions are built for one item).
        """
        first = ctxs[0]
        if (len(ctxs) == 1 or pick_decoder(self.options.decoder, self.lm.device) != "fast"
                or self._window_hook(conditioning) is not None):
            return super()._generate_variations(conditioning, ctxs, progress)
        plan = self._plan(conditioning, first)  # the takes share base, range and previous audio
        progress(0.0, f"{conditioning.section.name}: MusicGen starting {len(ctxs)} takes as one batch")
        raws, windows = continue_audio_batch(
            self.lm, conditioning.prompt, plan.gen_s + self.margin_s, seeds=[c.seed for c in ctxs],
            start_s=plan.start_s, prompt=plan.prompt, chroma_for=self._chroma_fn(conditioning),
            options=self.options, cancel=first.cancel, progress=progress, progress_span=(0.0, 0.8),
        )
        return self._finish_takes(conditioning, plan, raws, windows, first.cancel, progress)

    def _finish_takes(
        self, conditioning: SectionConditioning, plan: _Plan, raws: list[np.ndarray], windows: int,
        cancel: CancelToken, progress: ProgressCallback,
    ) -> list[Generation]:
        """:meth:`_finish` for each take decoded together; their progress shares 0.8-1.0 in turn."""
        cancel.check()
        out: list[Generation] = []
        for i, raw in enumerate(raws):
            lo = 0.8 + 0.2 * i / len(raws)

            def share(fraction: float, message: str, lo: float = lo) -> None:
                progress(lo + 0.2 / len(raws) * max(0.0, fraction - 0.8) / 0.2, message)

            out.append(self._finish(conditioning, plan, raw, windows, share))
            cancel.check()
        return out

    def _plan(self, conditioning: SectionConditioning, ctx: GenerationContext) -> _Plan:
        """Where new audio goes in the section and what it continues from."""
        tm, sec, sr = conditioning.tempo_map, conditioning.section, conditioning.sample_rate
        n = conditioning.length_samples
        base_mix: np.ndarray | None = None
        if ctx.base is not None and ctx.range_beats is not None:
            # the base take's mix: its stems sum back to the separated mix
            base_mix = np.sum([ctx.base.stems[s].samples for s in conditioning.stems], axis=0)
            a = tm.beat_to_samples(ctx.range_beats[0], sr) - tm.beat_to_samples(sec.start_beat, sr)
            b = tm.beat_to_samples(ctx.range_beats[1], sr) - tm.beat_to_samples(sec.start_beat, sr)
            a, b = max(0, min(a, n)), max(0, min(b, n))
            # what plays before the range: the previous section's tail, then the base take's start
            before = [base_mix[:, :a]]
            if ctx.previous_audio is not None and ctx.previous_audio.sample_rate == sr:
                before.insert(0, ctx.previous_audio.samples)
            joined = np.concatenate(before, axis=1)
            prompt_audio = Audio(joined, sr) if joined.shape[1] > 0 else None
        else:
            a, b = 0, n
            prompt_audio = ctx.previous_audio
        prompt = None
        if prompt_audio is not None and prompt_audio.num_samples > 0:
            keep = int(self.options.context_s * prompt_audio.sample_rate)
            tail = prompt_audio.samples[:, max(0, prompt_audio.num_samples - keep) :]
            prompt = self._to_model(Audio(tail, prompt_audio.sample_rate))
        return _Plan(a, b, (b - a) / sr, sec.start_seconds(tm) + a / sr, prompt, base_mix)

    def _finish(
        self, conditioning: SectionConditioning, plan: _Plan, raw: np.ndarray, windows: int, progress: ProgressCallback
    ) -> Generation:
        """New model audio conformed to the bar grid, spliced, normalised and split into stems."""
        tm, sec, sr = conditioning.tempo_map, conditioning.section, conditioning.sample_rate
        target_bpm = 60.0 * sec.length_beats / sec.length_seconds(tm)
        made = resample(Audio(raw, self.lm.sample_rate), sr)
        if made.channels == 1:
            made = Audio(np.repeat(made.samples, 2, axis=0), sr)
        part, report = conform_to_grid(made, target_bpm, plan.b - plan.a, align_phase=plan.prompt is None)
        if plan.base_mix is not None:
            full = plan.base_mix.copy()
            full[:, plan.a : plan.b] = part.samples[: full.shape[0]]
            mix = Audio(full, sr)
        else:
            mix = part
        mix, _ = normalize_loudness(mix, self.mix_lufs)
        progress(0.85, f"{sec.name}: separating stems")
        stems, stem_info = self._stems(mix, conditioning.stems)
        prompt = plan.prompt
        info: dict[str, Any] = {
            "backend": "musicgen-melody" if self.lm.melody else "musicgen",
            "weights": self.lm.source,
            "windows": windows,
            "continued_from_s": 0.0 if prompt is None else round(prompt.shape[1] / self.lm.sample_rate, 3),
            "regenerated": plan.base_mix is not None,
            "separator": self.separator.name,
            **report.as_info(),
            **stem_info,
        }
        return Generation(stems=stems, info=info)


@dataclass(frozen=True, eq=False)
class _Plan:
    """One take's layout: new audio in samples ``[a, b)`` of the section (project rate).

    Attributes:
        a: first sample of the new audio in the section.
        b: end sample of the new audio.
        gen_s: seconds of new audio (``(b - a) / rate``).
        start_s: song time (seconds) of sample ``a``.
        prompt: ``(channels, samples)`` audio at the model rate the new audio continues, or None.
        base_mix: ``(2, samples)`` mix of the take being regenerated, or None.
    """

    a: int
    b: int
    gen_s: float
    start_s: float
    prompt: np.ndarray | None
    base_mix: np.ndarray | None


def build(**options: Any) -> MusicGenGenerator:
    """Registry factory: ``MusicGenGenerator(**options)``."""
    return MusicGenGenerator(**options)

"""The one interface every generator implements.

Public calls (:meth:`Generator.generate`, :meth:`Generator.regenerate` and their
``*_variations`` forms, several takes of one section with one seed each) validate input and
funnel through one private path, :meth:`Generator._run`, which calls the backend hook
:meth:`Generator._generate_variations` (by default :meth:`Generator._generate` once per take;
a backend that can make the takes together, e.g. as one batch, overrides it). Regeneration is
spliced here, once for every backend, so a regenerated take is sample-identical to its base
outside the regenerated range.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from conditioning.types import Audio, Note, SectionConditioning

#: Called with (fraction in [0, 1], human-readable message).
ProgressCallback = Callable[[float, str], None]


class GenerationCancelled(Exception):
    """Raised between steps when a job is cancelled."""


class ModelUnavailableError(RuntimeError):
    """A generator cannot run here: a package or its weights are missing. The message says how to fix it."""


class CancelToken:
    """A thread-safe cancellation flag checked by generators between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running generation to stop at its next step."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`GenerationCancelled` if cancellation was requested."""
        if self._event.is_set():
            raise GenerationCancelled("the job was cancelled")


@dataclass(frozen=True, eq=False)
class Generation:
    """What a generator returns for one section.

    Attributes:
        stems: stem name -> audio of exactly the section's length at the project sample rate.
        parts: stem name -> the notes played (beats, absolute), for MIDI export; empty for
            backends that produce audio only.
        programs: stem name -> General MIDI program (0-127) used for the part; "drums" is
            rendered on the GM drum channel.
        info: backend facts worth writing to the manifest (e.g. measured tempo drift).
    """

    stems: Mapping[str, Audio]
    parts: Mapping[str, tuple[Note, ...]] = field(default_factory=dict)
    programs: Mapping[str, int] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationContext:
    """Per-call inputs to the backend hook.

    Attributes:
        seed: random seed; the same seed and inputs give the same output.
        progress: progress callback for this section (fractions 0-1).
        cancel: cancellation token, checked between steps.
        previous_audio: the end of the previous section's mix, for continuity, or None.
        base: the take being regenerated, or None for a fresh generation.
        range_beats: the (start, end) beats being regenerated, or None.
    """

    seed: int
    progress: ProgressCallback
    cancel: CancelToken
    previous_audio: Audio | None = None
    base: Generation | None = None
    range_beats: tuple[float, float] | None = None


def _no_progress(fraction: float, message: str) -> None:
    """Progress sink used when the caller gives none."""


def _contexts(
    seeds: Sequence[int],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    *,
    previous_audio: Audio | None,
    base: Generation | None = None,
    range_beats: tuple[float, float] | None = None,
) -> list[GenerationContext]:
    """One context per seed; take ``i`` reports fractions ``(i + f) / len(seeds)`` of ``progress``."""
    if not seeds:
        raise ValueError("give at least one seed (one take per seed)")
    sink = progress or _no_progress
    token = cancel or CancelToken()
    count = len(seeds)

    def share(i: int) -> ProgressCallback:
        if count == 1:
            return sink
        return lambda fraction, message: sink((i + fraction) / count, message)

    return [
        GenerationContext(seed=seed, progress=share(i), cancel=token, previous_audio=previous_audio, base=base,
                          range_beats=range_beats)
        for i, seed in enumerate(seeds)
    ]


class Generator(ABC):
    """Turns one section's conditioning into named stems.

    Subclasses set :attr:`name` and implement :meth:`_generate`.
    """

    name: ClassVar[str] = "generator"
    #: Beats of audio crossfaded at each edge inside a regenerated range.
    crossfade_beats: ClassVar[float] = 1.0

    def generate(
        self,
        conditioning: SectionConditioning,
        *,
        seed: int,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        previous_audio: Audio | None = None,
    ) -> Generation:
        """Generate every requested stem for ``conditioning.section``.

        Args:
            conditioning: the section and its conditioning.
            seed: random seed.
            progress: called with (fraction, message) as work proceeds.
            cancel: checked between steps; raises :class:`GenerationCancelled`.
            previous_audio: the previous section's mix tail for continuity, if any.

        Returns:
            Stems of exactly ``conditioning.length_samples`` samples each.
        """
        return self.generate_variations(
            conditioning, seeds=[seed], progress=progress, cancel=cancel, previous_audio=previous_audio
        )[0]

    def generate_variations(
        self,
        conditioning: SectionConditioning,
        *,
        seeds: Sequence[int],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        previous_audio: Audio | None = None,
    ) -> list[Generation]:
        """Several takes of ``conditioning.section``, one per seed, all continuing ``previous_audio``.

        Take ``i`` is what :meth:`generate` gives with ``seed=seeds[i]`` (backends that make
        the takes together keep each take's seed; see their docs for where floating-point
        results can differ).

        Args:
            conditioning: the section and its conditioning.
            seeds: one random seed per take.
            progress: called with (fraction, message) across all takes.
            cancel: checked between steps; raises :class:`GenerationCancelled`.
            previous_audio: the previous section's mix tail for continuity, if any.

        Returns:
            One generation per seed, in order.

        Raises:
            ValueError: no seeds.
        """
        return self._run(conditioning, _contexts(seeds, progress, cancel, previous_audio=previous_audio), progress)

    def regenerate(
        self,
        conditioning: SectionConditioning,
        *,
        base: Generation,
        start_beat: float,
        end_beat: float,
        seed: int,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        previous_audio: Audio | None = None,
    ) -> Generation:
        """Regenerate ``[start_beat, end_beat)`` of a section as a new take.

        The result covers the whole section; outside the range its samples equal ``base``'s,
        inside the range new material crossfades in and out over about one beat.
        ``previous_audio`` (the previous section's mix tail) lets a backend continue from what
        plays before the section when the range starts at the section start.

        Raises:
            ValueError: the range is empty or not inside the section, or ``base`` lacks a stem.
        """
        return self.regenerate_variations(
            conditioning, base=base, start_beat=start_beat, end_beat=end_beat, seeds=[seed], progress=progress,
            cancel=cancel, previous_audio=previous_audio,
        )[0]

    def regenerate_variations(
        self,
        conditioning: SectionConditioning,
        *,
        base: Generation,
        start_beat: float,
        end_beat: float,
        seeds: Sequence[int],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        previous_audio: Audio | None = None,
    ) -> list[Generation]:
        """:meth:`regenerate` for several seeds: take ``i`` is its take with ``seed=seeds[i]``.

        Raises:
            ValueError: no seeds, the range is empty or not inside the section, or ``base``
                lacks a stem.
        """
        sec = conditioning.section
        if end_beat <= start_beat:
            raise ValueError(
                f"regeneration range beats {start_beat:g}-{end_beat:g} is empty; "
                "select at least one bar"
            )
        if start_beat < sec.start_beat - 1e-6 or end_beat > sec.end_beat + 1e-6:
            raise ValueError(
                f"regeneration range (bars {conditioning.tempo_map.beat_to_bar(start_beat):g}-"
                f"{conditioning.tempo_map.beat_to_bar(end_beat):g}) is outside section "
                f"{sec.name!r} (bars {sec.start_bar:g}-{sec.end_bar:g}); select bars inside it"
            )
        missing = [s for s in conditioning.stems if s not in base.stems]
        if missing:
            raise ValueError(f"the base take has no {', '.join(missing)} stem(s) to regenerate")
        ctxs = _contexts(
            seeds, progress, cancel, previous_audio=previous_audio, base=base, range_beats=(start_beat, end_beat)
        )
        return self._run(conditioning, ctxs, progress)

    # -- the one private path -------------------------------------------------------------
    def _run(
        self, conditioning: SectionConditioning, ctxs: Sequence[GenerationContext], progress: ProgressCallback | None
    ) -> list[Generation]:
        cancel = ctxs[0].cancel
        cancel.check()
        results = self._generate_variations(conditioning, ctxs, progress or _no_progress)
        cancel.check()
        if len(results) != len(ctxs):
            raise RuntimeError(f"{self.name} made {len(results)} takes for {len(ctxs)} seeds")  # a backend bug
        n = conditioning.length_samples
        out: list[Generation] = []
        for ctx, result in zip(ctxs, results, strict=True):
            for stem, audio in result.stems.items():
                if audio.sample_rate != conditioning.sample_rate or audio.num_samples != n:
                    raise RuntimeError(  # a backend bug, not a caller mistake
                        f"{self.name} returned stem {stem!r} with {audio.num_samples} samples at "
                        f"{audio.sample_rate} Hz; expected {n} at {conditioning.sample_rate} Hz"
                    )
            if ctx.base is not None and ctx.range_beats is not None:
                result = splice_range(conditioning, ctx.base, result, ctx.range_beats, self.crossfade_beats)
            out.append(result)
        (progress or _no_progress)(1.0, f"{conditioning.section.name}: done")
        return out

    def _generate_variations(
        self, conditioning: SectionConditioning, ctxs: Sequence[GenerationContext], progress: ProgressCallback
    ) -> list[Generation]:
        """Backend hook for several takes: one :meth:`_generate` per context, in order.

        ``ctxs[i].progress`` reports take ``i``'s share of ``progress`` (the whole call); a
        backend that makes the takes together reports to ``progress`` itself.
        """
        out: list[Generation] = []
        for ctx in ctxs:
            ctx.cancel.check()
            out.append(self._generate(conditioning, ctx))
        return out

    @abstractmethod
    def _generate(self, conditioning: SectionConditioning, ctx: GenerationContext) -> Generation:
        """Backend hook: produce stems of exactly the section length at the project rate.

        For a regeneration (``ctx.range_beats`` set) the hook may generate the whole section or
        only the range; the base class keeps ``ctx.base`` outside the range either way.
        """


def splice_range(
    conditioning: SectionConditioning,
    base: Generation,
    new: Generation,
    range_beats: tuple[float, float],
    crossfade_beats: float,
) -> Generation:
    """Keep ``base`` outside ``range_beats`` and ``new`` inside, with equal-power crossfades.

    The crossfades lie inside the range, so samples outside it are identical to ``base``.
    Range edges at the section's own start or end get no fade (there is nothing to meet).

    Returns:
        A generation whose stems are the spliced audio and whose parts keep base notes outside
        the range and new notes inside it.
    """
    tm, sec, sr = conditioning.tempo_map, conditioning.section, conditioning.sample_rate
    origin = tm.beat_to_samples(sec.start_beat, sr)
    a = tm.beat_to_samples(range_beats[0], sr) - origin
    b = tm.beat_to_samples(range_beats[1], sr) - origin
    n = conditioning.length_samples
    a, b = max(0, min(a, n)), max(0, min(b, n))
    # about one beat, but never more than a third of the range
    beat_s = 60.0 / tm.bpm_at_beat(range_beats[0])
    fade = int(min(crossfade_beats * beat_s * sr, (b - a) / 3))
    stems: dict[str, Audio] = {}
    for name, audio in new.stems.items():
        old = base.stems[name].samples
        fresh = audio.samples
        out = old.copy()
        gain = np.ones(b - a, dtype=np.float64)
        if fade > 0:
            t = (np.arange(fade) + 0.5) / fade
            if a > 0:
                gain[:fade] = np.sin(t * np.pi / 2)
            if b < n:
                gain[-fade:] = np.minimum(gain[-fade:], np.cos(t * np.pi / 2))
        g_new = gain.astype(np.float32)
        g_old = np.sqrt(np.clip(1.0 - gain**2, 0.0, 1.0)).astype(np.float32)
        out[:, a:b] = fresh[:, a:b] * g_new + old[:, a:b] * g_old
        stems[name] = Audio(out, sr)
    lo, hi = range_beats
    parts: dict[str, tuple[Note, ...]] = {}
    for name in set(base.parts) | set(new.parts):
        kept = [n_ for n_ in base.parts.get(name, ()) if not lo <= n_.start_beat < hi]
        fresh_notes = [n_ for n_ in new.parts.get(name, ()) if lo <= n_.start_beat < hi]
        parts[name] = tuple(sorted(kept + fresh_notes, key=lambda n_: (n_.start_beat, n_.pitch)))
    return Generation(stems=stems, parts=parts, programs={**base.programs, **new.programs}, info=dict(new.info))

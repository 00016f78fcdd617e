"""The generation stage of a job: material -> conditioning -> generator -> takes, with no project I/O.

A job has three stages (:func:`bridge.job.pipeline.run_request` runs them):

1. :func:`resolve_bases` (on the musician's machine): for a bar-range regeneration, read the
   takes being regenerated and the take before them from the project's outbox and renders.
2. a :data:`GenerationStage` — :func:`run_generation` here, in the bridge's worker process, or
   the same function on a remote GPU worker (``stembridge worker``): read the material, build
   the conditioning, run the generator for every section to generate. It writes nothing; it
   returns a :class:`GenerationOutcome`, which is everything the third stage needs.
3. publishing (on the musician's machine): take numbers, stems, exports, report, manifest.

So the same stage runs locally or remotely, and stages 1 and 3 — everything that touches the
musician's project — always run where the project is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.job.layout import ProjectLayout
from bridge.job.material import Material, load_material
from bridge.job.placement import mix
from bridge.job.request import Request, RequestError
from bridge.job.takes import find_base_manifest, load_base_generation
from conditioning.build import build_conditioning
from conditioning.types import Audio, SectionConditioning
from models.base import CancelToken, Generation, Generator
from models.registry import build_generator

log = logging.getLogger(__name__)

#: Seconds of the previous section's mix handed to the next one for continuity.
CONTEXT_SECONDS = 10.0


class StagedProgress:
    """Maps each stage's own 0-1 progress into one overall fraction and forwards it.

    Args:
        sink: called with (overall fraction 0-1, message), or None to drop progress.
    """

    def __init__(self, sink: Callable[[float, str], None] | None) -> None:
        self._sink = sink

    def report(self, fraction: float, message: str) -> None:
        """Report an overall fraction (clamped to 0-1)."""
        if self._sink is not None:
            self._sink(max(0.0, min(1.0, fraction)), message)

    def stage(self, start: float, width: float) -> Callable[[float, str], None]:
        """A callback whose fractions 0-1 map onto ``start`` .. ``start + width`` overall."""
        return lambda f, msg: self.report(start + width * max(0.0, min(1.0, f)), msg)


@dataclass(frozen=True)
class BaseTake:
    """The take a bar-range regeneration of one section starts from.

    Attributes:
        job_id: the job that made it (the manifest's ``base_jobs`` value).
        generation: its stems (and MIDI parts) at the project sample rate.
    """

    job_id: str
    generation: Generation


@dataclass(frozen=True)
class Bases:
    """What the generation stage needs from the musician's project (empty for a fresh generation).

    Attributes:
        takes: section name -> the take regenerated, for every section the range touches.
        previous_mix: the mix of the newest take of the section just before the first
            regenerated one (continuity), or None.
    """

    takes: Mapping[str, BaseTake] = field(default_factory=dict)
    previous_mix: Audio | None = None


@dataclass(frozen=True)
class SectionTakes:
    """One section's new takes, in seed order (take ``v`` used ``seed + v``).

    Attributes:
        name: the section's name.
        generations: one per variation.
    """

    name: str
    generations: tuple[Generation, ...]


@dataclass(frozen=True)
class GenerationOutcome:
    """What the generation stage returns.

    Attributes:
        material: the song's material as read (chords, drums, melody, in project beats).
        sections: the sections generated, in song order.
        generator: the generator's name.
    """

    material: Material
    sections: tuple[SectionTakes, ...]
    generator: str


class GenerationStage(Protocol):
    """Runs stage 2 of a job (locally: :func:`run_generation`; remotely: a worker client)."""

    def __call__(
        self, request: Request, *, seed: int, bases: Bases, progress: StagedProgress, cancel: CancelToken
    ) -> GenerationOutcome:
        """Generate every section of ``request``; progress covers 0.0-0.9 of the job."""


#: Builds (or returns an already loaded) generator by model name.
GeneratorFactory = Callable[[str], Generator]


def _tail(audio: Audio | None, seconds: float) -> Audio | None:
    if audio is None:
        return None
    n = int(seconds * audio.sample_rate)
    return Audio(audio.samples[:, -n:], audio.sample_rate)


def resolve_bases(request: Request, layout: ProjectLayout) -> Bases:
    """Read what a bar-range regeneration starts from; an empty :class:`Bases` otherwise.

    Raises:
        RequestError: code "range" when a touched section has no earlier take (or ``base_job``
            did not make one), "input"/"path" when a base file is unreadable or misplaced.
    """
    if request.range_beats is None:
        return Bases()
    todo = request.sections_to_generate()
    takes: dict[str, BaseTake] = {}
    for sec in todo:
        manifest = find_base_manifest(layout, sec, request.base_job)
        takes[sec.name] = BaseTake(manifest.job_id, load_base_generation(layout, manifest, sec, request.sample_rate))
    previous_mix: Audio | None = None
    names = [s.name for s in request.sections]
    first = names.index(todo[0].name) if todo else 0
    if todo and first > 0:
        before = request.sections[first - 1]
        try:
            manifest = find_base_manifest(layout, before, None)
            previous_mix = mix(load_base_generation(layout, manifest, before, request.sample_rate))
        except RequestError as exc:
            log.info("no earlier take of %r to continue from: %s", before.name, exc)
    return Bases(takes=takes, previous_mix=previous_mix)


def conditioning_for(request: Request, material: Material) -> list[SectionConditioning]:
    """The conditioning of every section of the song (pure: the same inputs give the same values)."""
    return build_conditioning(
        sections=request.sections,
        tempo_map=request.tempo_map,
        sample_rate=request.sample_rate,
        stems=request.stems,
        prompt=request.prompt,
        section_prompts=request.section_prompts,
        chords=material.chords,
        drums=material.drums,
        melody=material.melody,
    )


def generate_sections(
    request: Request,
    generator: Generator,
    conds: list[SectionConditioning],
    *,
    seed: int,
    bases: Bases,
    progress: StagedProgress,
    cancel: CancelToken,
) -> list[SectionTakes]:
    """Generate (or regenerate) each section the request asks for.

    Variation ``v`` (0-based) of every section uses ``seed + v``; a section's variations are
    one :meth:`~models.base.Generator.generate_variations` call (a backend may batch them), all
    continuing from the previous section's first take. Progress covers 0.1-0.9 overall.
    """
    wanted = {s.name for s in request.sections_to_generate()}
    todo = [c for c in conds if c.section.name in wanted]
    total = max(1, len(todo) * request.variations)
    results: list[SectionTakes] = []
    previous_mix = bases.previous_mix
    seeds = [seed + v for v in range(request.variations)]
    many = len(seeds) > 1
    for step, cond in enumerate(todo):
        sec = cond.section
        cancel.check()
        on_progress = progress.stage(0.1 + 0.8 * step * len(seeds) / total, 0.8 * len(seeds) / total)
        label = sec.name + (f" ({len(seeds)} takes)" if many else "")
        on_progress(0.0, f"{label}: generating with {generator.name}")
        previous = _tail(previous_mix, CONTEXT_SECONDS)
        base = bases.takes.get(sec.name)
        if base is not None and request.range_beats is not None:
            lo = max(request.range_beats[0], sec.start_beat)
            hi = min(request.range_beats[1], sec.end_beat)
            gens = generator.regenerate_variations(
                cond, base=base.generation, start_beat=lo, end_beat=hi, seeds=seeds, progress=on_progress,
                cancel=cancel, previous_audio=previous,
            ) if many else [generator.regenerate(
                cond, base=base.generation, start_beat=lo, end_beat=hi, seed=seed, progress=on_progress,
                cancel=cancel, previous_audio=previous,
            )]
        else:
            gens = generator.generate_variations(
                cond, seeds=seeds, progress=on_progress, cancel=cancel, previous_audio=previous
            ) if many else [generator.generate(cond, seed=seed, progress=on_progress, cancel=cancel,
                                               previous_audio=previous)]
        results.append(SectionTakes(sec.name, tuple(gens)))
        previous_mix = mix(gens[0])
    return results


def run_generation(
    request: Request,
    *,
    seed: int,
    bases: Bases,
    progress: StagedProgress,
    cancel: CancelToken,
    generator_factory: GeneratorFactory | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> GenerationOutcome:
    """Stage 2 of a job, here: read the material, build the conditioning, generate.

    Args:
        request: the validated request (its input paths must exist where this runs).
        seed: the job's seed (take ``v`` uses ``seed + v``).
        bases: what a regeneration starts from (:func:`resolve_bases`).
        progress: the job's progress; this stage covers 0.0-0.9.
        cancel: checked between steps.
        generator_factory: builds the generator by model name (a worker passes one that keeps
            models loaded); None builds a fresh one with ``model_options``.
        model_options: keyword options for :func:`models.registry.build_generator`.

    Raises:
        RequestError: bad material; models.base.ModelUnavailableError; GenerationCancelled.
    """
    progress.report(0.0, "reading your material")
    material = load_material(request)
    cancel.check()
    progress.report(0.05, f"loading model {request.model}")
    options = dict(model_options or {})
    factory = generator_factory or (lambda name: build_generator(name, **options))
    generator = factory(request.model)
    conds = conditioning_for(request, material)
    sections = generate_sections(request, generator, conds, seed=seed, bases=bases, progress=progress, cancel=cancel)
    return GenerationOutcome(material=material, sections=tuple(sections), generator=generator.name)

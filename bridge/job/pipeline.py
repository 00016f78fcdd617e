"""Run one request v1 end to end: material -> conditioning -> generator -> files -> manifest.

This is the single code path used by ``stembridge generate``, ``stembridge demo`` and the
server's worker. Results are written into ``renders/<job_id>.partial/`` and published by
renaming that folder to ``renders/<job_id>/`` before the manifest is written, so a failed or
cancelled job leaves no partial files and nothing earlier is ever changed. Folders are made
only when the first file is written, and a failed job removes the ones it made, so a bad
request leaves nothing new in the musician's project.
"""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.export.dawproject import AudioClip, write_dawproject
from bridge.export.midi import write_arrangement_midi
from bridge.export.rpp import RppItem, write_rpp
from bridge.job.layout import (
    ProjectLayout,
    make_dirs,
    new_job_id,
    remove_empty_dirs,
    write_json_atomic,
)
from bridge.job.manifest import Manifest, Placement, SectionRecord, track_name
from bridge.job.material import load_material
from bridge.job.placement import mix, write_section_stems
from bridge.job.report import write_job_report
from bridge.job.request import MAX_SEED, MAX_VARIATIONS, Request, RequestError
from bridge.job.takes import find_base_manifest, load_base_generation
from conditioning.build import build_conditioning
from conditioning.timeline import Section
from conditioning.types import Audio, Note, SectionConditioning
from models.base import CancelToken, Generation, Generator
from models.registry import build_generator

log = logging.getLogger(__name__)

#: Seconds of the previous section's mix handed to the next one for continuity.
CONTEXT_SECONDS = 10.0


@dataclass(frozen=True)
class JobResult:
    """A finished job: its id, the manifest's absolute path and the manifest.

    Attributes:
        job_id: the job's id.
        manifest_path: absolute path of ``outbox/<job_id>.json``.
        record: the typed manifest.
        manifest: the manifest document as written (``record.to_json()``).
    """

    job_id: str
    manifest_path: Path
    record: Manifest
    manifest: dict[str, Any]


class _Progress:
    """Maps per-step progress into one overall fraction and forwards it."""

    def __init__(self, sink: Callable[[float, str], None] | None) -> None:
        self._sink = sink
        self.done = 0.0

    def report(self, fraction: float, message: str) -> None:
        if self._sink is not None:
            self._sink(max(0.0, min(1.0, fraction)), message)

    def stage(self, start: float, width: float) -> Callable[[float, str], None]:
        return lambda f, msg: self.report(start + width * max(0.0, min(1.0, f)), msg)


def _tail(audio: Audio | None, seconds: float) -> Audio | None:
    if audio is None:
        return None
    n = int(seconds * audio.sample_rate)
    return Audio(audio.samples[:, -n:], audio.sample_rate)


def _previous_take_mix(layout: ProjectLayout, previous: Section, sample_rate: int) -> Audio | None:
    """The mix of the newest take of the section before a regenerated one, if there is one."""
    try:
        manifest = find_base_manifest(layout, previous, None)
        return mix(load_base_generation(layout, manifest, previous, sample_rate))
    except RequestError as exc:
        log.info("no earlier take of %r to continue from: %s", previous.name, exc)
        return None


@dataclass
class _Section:
    """One section's result in this job."""

    cond: SectionConditioning
    generations: list[tuple[int, Generation]]


def new_seed() -> int:
    """A fresh random seed for a request that gives none (room is left for its variations' seed + v)."""
    return secrets.randbelow(MAX_SEED - MAX_VARIATIONS + 1)


def _generate_sections(
    request: Request,
    layout: ProjectLayout,
    generator: Generator,
    conds: list[SectionConditioning],
    progress: _Progress,
    cancel: CancelToken,
    seed: int,
) -> tuple[list[_Section], dict[str, str]]:
    """Generate (or regenerate) each section; returns results and base jobs by section name.

    Variation ``v`` (0-based) of every section uses ``seed + v``; a section's variations are
    one :meth:`~models.base.Generator.generate_variations` call, all continuing from the
    previous section's first take.
    """
    wanted = {s.name for s in request.sections_to_generate()}
    todo = [c for c in conds if c.section.name in wanted]
    total = len(todo) * request.variations
    results: list[_Section] = []
    base_jobs: dict[str, str] = {}
    previous_mix: Audio | None = None
    step = 0
    for cond in todo:
        sec = cond.section
        first_take = layout.next_take(sec.slug)
        entry = _Section(cond, [])
        base: Generation | None = None
        if request.range_beats is not None:
            manifest = find_base_manifest(layout, sec, request.base_job)
            base_jobs[sec.name] = manifest.job_id
            base = load_base_generation(layout, manifest, sec, request.sample_rate)
            if previous_mix is None and cond.previous is not None:
                previous_mix = _previous_take_mix(layout, cond.previous, request.sample_rate)
        # every take of the section in one call: a backend may make them together (MusicGen: one batch)
        cancel.check()
        seeds = [seed + v for v in range(request.variations)]
        many = len(seeds) > 1
        on_progress = progress.stage(0.1 + 0.8 * step / total, 0.8 * len(seeds) / total)
        label = f"{sec.name}" + (f" (takes {first_take}-{first_take + len(seeds) - 1})" if many else "")
        on_progress(0.0, f"{label}: generating with {generator.name}")
        previous = _tail(previous_mix, CONTEXT_SECONDS)
        if base is not None and request.range_beats is not None:
            lo = max(request.range_beats[0], sec.start_beat)
            hi = min(request.range_beats[1], sec.end_beat)
            gens = generator.regenerate_variations(
                cond, base=base, start_beat=lo, end_beat=hi, seeds=seeds, progress=on_progress, cancel=cancel,
                previous_audio=previous,
            ) if many else [generator.regenerate(
                cond, base=base, start_beat=lo, end_beat=hi, seed=seed, progress=on_progress, cancel=cancel,
                previous_audio=previous,
            )]
        else:
            gens = generator.generate_variations(
                cond, seeds=seeds, progress=on_progress, cancel=cancel, previous_audio=previous
            ) if many else [generator.generate(cond, seed=seed, progress=on_progress, cancel=cancel, previous_audio=previous)]
        entry.generations.extend((first_take + v, gen) for v, gen in enumerate(gens))
        step += len(seeds)
        previous_mix = mix(entry.generations[0][1])
        results.append(entry)
    return results, base_jobs


def _publish(
    request: Request,
    layout: ProjectLayout,
    job_id: str,
    staging: Path,
    results: list[_Section],
    seed: int,
) -> tuple[list[Placement], dict[str, str], dict[str, Audio]]:
    """Write stems, MIDI, RPP and the request as run (with ``seed``) into ``staging``.

    Returns:
        The placements, the export paths, and each stem file's audio by file name (what was
        written, kept so the session report need not read the files back).
    """
    rel = f"stembridge/renders/{job_id}"
    placements: list[Placement] = []
    parts: dict[str, list[Note]] = {}
    programs: dict[str, int] = {}
    rpp_items: list[RppItem] = []
    daw_clips: list[AudioClip] = []
    written: dict[str, Audio] = {}
    for entry in results:
        sec = entry.cond.section
        by_stem: dict[str, list[tuple[str, str]]] = {}
        for take, gen in entry.generations:
            for p in write_section_stems(gen, sec, take, staging, rel, request.tempo_map, request.sample_rate):
                placements.append(p)
                written[Path(p.file).name] = gen.stems[p.stem]
                by_stem.setdefault(p.stem, []).append((f"{sec.name} take {take}", Path(p.file).name))
                daw_clips.append(AudioClip(track_name(p.stem), sec, staging / Path(p.file).name,
                                           f"{sec.name} take {take}", active=take == entry.generations[-1][0]))
        first_gen = entry.generations[0][1]  # the take the manifest's info and the continuity audio use
        for stem, notes in first_gen.parts.items():
            parts.setdefault(stem, []).extend(notes)
        programs.update(first_gen.programs)
        start_s = request.tempo_map.beat_to_seconds(sec.start_beat)
        length_s = entry.cond.length_samples / request.sample_rate
        for stem, takes in by_stem.items():
            rpp_items.append(RppItem(track_name(stem), start_s, length_s, tuple(takes)))
    exports: dict[str, str] = {}
    sections = [e.cond.section for e in results]
    if any(parts.values()):
        write_arrangement_midi(staging / "arrangement.mid", request.tempo_map, sections, parts, programs)
        exports["midi"] = f"{rel}/arrangement.mid"
    write_rpp(staging / "arrangement.rpp", request.tempo_map, request.sections, rpp_items, request.sample_rate)
    exports["rpp"] = f"{rel}/arrangement.rpp"
    write_dawproject(staging / "arrangement.dawproject", request.tempo_map, request.sections, daw_clips, parts,
                     title=request.project_dir.name, comment=request.prompt)
    exports["dawproject"] = f"{rel}/arrangement.dawproject"
    write_json_atomic(staging / "request.json", {**request.raw, "seed": seed})
    exports["request"] = f"{rel}/request.json"
    return placements, exports, written


def run_request(
    request: Request,
    *,
    job_id: str | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> JobResult:
    """Run ``request`` and write its stems, exports and manifest into the project.

    Args:
        request: a validated request (see :func:`bridge.job.request.parse_request`). Without a
            seed, the job draws a new one (:func:`new_seed`); the manifest's ``seed`` and the
            job's ``request.json`` record it, so the take can be made again.
        job_id: the job's id (a new one when None). A job id whose manifest exists is refused.
        progress: called with (overall fraction 0-1, message).
        cancel: checked between steps.
        model_options: extra keyword options for the generator (e.g. ``model_path``).

    Returns:
        The job id, the manifest path and the manifest.

    Raises:
        RequestError: bad material, range or paths (nothing is written).
        models.base.ModelUnavailableError: the model cannot run here.
        models.base.GenerationCancelled: cancelled (nothing is written).
    """
    layout = ProjectLayout(request.project_dir)  # folders are made only when a file is written
    job_id = job_id or new_job_id()
    if layout.manifest_path(job_id).exists():
        raise RequestError("duplicate", f"job {job_id} has already run; its results are in the outbox")
    if layout.job_dir(job_id).exists():
        # published but never announced (the process died before the manifest): keep those
        # files aside, untouched, and run the job again
        aside = layout.renders / f"{job_id}.unannounced"
        suffix = 1
        while aside.exists():
            suffix += 1
            aside = layout.renders / f"{job_id}.unannounced-{suffix}"
        layout.job_dir(job_id).rename(aside)
        log.warning("job %s had results but no manifest; moved them to %s and running it again", job_id, aside)
    seed = request.seed if request.seed is not None else new_seed()
    if request.seed is None:
        log.info("job %s: no seed given; this take uses seed %d", job_id, seed)
    cancel = cancel or CancelToken()
    prog = _Progress(progress)
    prog.report(0.0, "reading your material")
    material = load_material(request)
    cancel.check()
    prog.report(0.05, f"loading model {request.model}")
    generator = build_generator(request.model, **dict(model_options or {}))
    conds = build_conditioning(
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
    staging = layout.renders / f"{job_id}.partial"
    if staging.exists():  # left by a killed run of this same job: never published, safe to drop
        shutil.rmtree(staging)
    created: list[Path] = []
    try:
        results, base_jobs = _generate_sections(request, layout, generator, conds, prog, cancel, seed)
        prog.report(0.92, "writing stems")
        created = make_dirs(staging)
        placements, exports, written = _publish(request, layout, job_id, staging, results, seed)
        prog.report(0.95, "drawing the session report")
        key = results[0].cond.key.name if results and results[0].cond.key else None
        report_problem = write_job_report(request, job_id, material, placements, staging, key=key, seed=seed,
                                          audio=written)
        if report_problem is None:
            exports["report"] = f"stembridge/renders/{job_id}/report.html"
        cancel.check()
        staging.rename(layout.job_dir(job_id))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty_dirs(created[1:])  # staging is gone; its parents go if this job made them
        raise
    record = Manifest(
        job_id=job_id,
        status="done",
        model=request.model,
        seed=seed,
        sample_rate=request.sample_rate,
        tempo_map=tuple(request.tempo_map.to_json()),
        key=key,
        sections=tuple(SectionRecord.of(s) for s in request.sections),
        placements=tuple(placements),
        exports=exports,
        info={e.cond.section.name: dict(e.generations[0][1].info) for e in results if e.generations[0][1].info},
        range_bars=request.range_bars,
        base_jobs=base_jobs if request.range_bars is not None else {},
        warnings=(report_problem,) if report_problem else (),
    )
    manifest = record.to_json()
    path = write_json_atomic(layout.manifest_path(job_id), manifest)
    prog.report(1.0, f"done: {len(placements)} stems placed")
    log.info("job %s done: %d placements", job_id, len(placements))
    return JobResult(job_id=job_id, manifest_path=path, record=record, manifest=manifest)

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
from functools import partial
from pathlib import Path
from typing import Any

from bridge.export.dawproject import AudioClip, write_dawproject
from bridge.export.midi import write_arrangement_midi
from bridge.export.rpp import RppItem, write_rpp
from bridge.job.generation import (
    GenerationOutcome,
    GenerationStage,
    StagedProgress,
    conditioning_for,
    resolve_bases,
    run_generation,
)
from bridge.job.layout import (
    ProjectLayout,
    make_dirs,
    new_job_id,
    remove_empty_dirs,
    write_json_atomic,
)
from bridge.job.manifest import Manifest, Placement, SectionRecord, track_name
from bridge.job.placement import write_section_stems
from bridge.job.report import write_job_report
from bridge.job.request import MAX_SEED, MAX_VARIATIONS, Request, RequestError
from conditioning.types import Audio, Note, SectionConditioning
from models.base import CancelToken, Generation

log = logging.getLogger(__name__)

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


@dataclass
class _Section:
    """One section's result in this job: its conditioning and (take number, generation) pairs."""

    cond: SectionConditioning
    generations: list[tuple[int, Generation]]


def new_seed() -> int:
    """A fresh random seed for a request that gives none (room is left for its variations' seed + v)."""
    return secrets.randbelow(MAX_SEED - MAX_VARIATIONS + 1)


def _numbered(layout: ProjectLayout, request: Request, outcome: GenerationOutcome) -> list[_Section]:
    """Pair each generated section with its conditioning and give its takes their numbers here."""
    conds = {c.section.name: c for c in conditioning_for(request, outcome.material)}
    results: list[_Section] = []
    for entry in outcome.sections:
        cond = conds.get(entry.name)
        if cond is None or not entry.generations:
            raise RuntimeError(f"the generator returned no usable takes for section {entry.name!r}")
        first_take = layout.next_take(cond.section.slug)
        results.append(_Section(cond, [(first_take + v, g) for v, g in enumerate(entry.generations)]))
    return results


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
    stage: GenerationStage | None = None,
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
        stage: runs the generation stage (default :func:`~bridge.job.generation.run_generation`
            here, with ``model_options``); a remote worker's client is another.

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
    prog = StagedProgress(progress)
    bases = resolve_bases(request, layout)  # the takes a range regenerates: read before any work
    stage = stage or partial(run_generation, model_options=model_options)
    outcome = stage(request, seed=seed, bases=bases, progress=prog, cancel=cancel)
    cancel.check()
    results = _numbered(layout, request, outcome)
    base_jobs = {name: b.job_id for name, b in bases.takes.items()}
    staging = layout.renders / f"{job_id}.partial"
    if staging.exists():  # left by a killed run of this same job: never published, safe to drop
        shutil.rmtree(staging)
    created: list[Path] = []
    try:
        prog.report(0.92, "writing stems")
        created = make_dirs(staging)
        placements, exports, written = _publish(request, layout, job_id, staging, results, seed)
        prog.report(0.95, "drawing the session report")
        key = results[0].cond.key.name if results and results[0].cond.key else None
        report_problem = write_job_report(request, job_id, outcome.material, placements, staging, key=key, seed=seed,
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

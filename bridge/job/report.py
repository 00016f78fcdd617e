"""Gather a job's session report (what was understood, what was placed) and write it.

Used twice: by the pipeline, which writes ``report.html`` into every job's render folder from
what it has in memory, and by ``stembridge report JOB``, which rebuilds the same page later from
the job's manifest and saved request. A report is a by-product: when it cannot be drawn the
job still publishes its stems, and the reason is logged and written into the manifest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bridge.export.report import (
    PitchTrack,
    ReportData,
    StemView,
    free_report_name,
    pitch_track,
    write_report,
)
from bridge.job.layout import ProjectLayout
from bridge.job.manifest import Manifest, Placement
from bridge.job.material import Material, load_material
from bridge.job.request import Request, RequestError, parse_request
from conditioning.timeline import Section

log = logging.getLogger(__name__)

#: Files of a job folder linked from its report: (label, file name).
LINKED_EXPORTS = (
    ("DAWproject (Bitwig, Studio One, Cubase)", "arrangement.dawproject"),
    ("REAPER project", "arrangement.rpp"),
    ("arrangement MIDI", "arrangement.mid"),
    ("the request", "request.json"),
)


def hum_pitch_track(request: Request) -> tuple[PitchTrack | None, str | None]:
    """The hummed melody's pitch track in project seconds, or (None, why not)."""
    src = request.melody
    if src is None or src.kind != "audio" or src.path is None:
        return None, None
    from conditioning.io.audio import read_audio

    try:
        audio = read_audio(src.path)
        first = int(round(src.source_offset_s * audio.sample_rate))
        last = None if src.length_s is None else first + int(round(src.length_s * audio.sample_rate))
        audio = type(audio)(audio.samples[:, first:last], audio.sample_rate)
        return pitch_track(audio, offset_s=src.offset_s), None
    except ValueError as exc:
        return None, f"the hum's pitch track could not be read: {exc}"


def report_data(
    request: Request,
    job_id: str,
    material: Material,
    placements: Sequence[Placement],
    folder: Path,
    *,
    key: str | None,
    seed: int | None,
    audio: Mapping[str, Any] | None = None,
) -> ReportData:
    """Everything the report shows for one job.

    Args:
        request: the job's request.
        job_id: the job.
        material: the chords, drums and melody as understood.
        placements: the placed stems (files relative to the project).
        folder: the job's render folder (staging or published: stem files are read from it).
        key: the song key's name or None.
        seed: the seed the job ran with (a request without one draws it at run time).
        audio: file name -> :class:`~conditioning.types.Audio` already in memory (read from
            ``folder`` where missing).
    """
    from conditioning.io.audio import read_audio

    hum, why = hum_pitch_track(request)
    notes = [why] if why else []
    stems = []
    sections = {s.name: s for s in request.sections}
    for p in placements:
        name = Path(p.file).name
        samples = (audio or {}).get(name)
        if samples is None:
            try:
                samples = read_audio(folder / name)
            except ValueError as exc:
                notes.append(f"{name}: {exc}")
                continue
        section = sections.get(p.section) or Section.from_bars(p.section, p.start_bar, p.end_bar, request.tempo_map)
        stems.append(StemView(p.stem, section, p.take, name, samples))
    links = [(label, name) for label, name in LINKED_EXPORTS if (folder / name).exists()]
    links.append(("the job's manifest", f"../../outbox/{job_id}.json"))
    return ReportData(
        title=request.project_dir.name, job_id=job_id, tempo_map=request.tempo_map, sections=request.sections,
        model=request.model, seed=seed, key=key, chords=material.chords, drums=material.drums,
        melody=material.melody, hum=hum, stems=tuple(stems), links=tuple(links), notes=tuple(notes),
    )


def write_job_report(
    request: Request,
    job_id: str,
    material: Material,
    placements: Sequence[Placement],
    folder: Path,
    *,
    key: str | None,
    seed: int | None,
    audio: Mapping[str, Any] | None = None,
) -> str | None:
    """Write ``folder/report.html``; returns None, or why the report could not be written.

    Never raises for a drawing failure: the stems matter more than their pictures.
    """
    try:
        data = report_data(request, job_id, material, placements, folder, key=key, seed=seed, audio=audio)
        write_report(folder, data)
        return None
    # a broad catch on purpose: whatever breaks in plotting, the job's stems must still be
    # published; the full traceback goes to the log and the reason into the manifest
    except Exception as exc:
        log.exception("job %s: the session report could not be written", job_id)
        return f"session report not written: {type(exc).__name__}: {exc}"


def report_for_job(project_dir: Path, job_id: str) -> Path:
    """Render a finished job's report again (``stembridge report``), next to any earlier one.

    The page is ``report.html`` when the job has none yet, else ``report-2.html``, ... (earlier
    reports are never overwritten).

    Raises:
        RequestError: the project or job is unknown, or its files are unreadable (code "input").
    """
    layout = ProjectLayout(project_dir)
    manifest_path, folder = layout.manifest_path(job_id), layout.job_dir(job_id)
    if not manifest_path.is_file() or not folder.is_dir():
        raise RequestError(
            "input",
            f"no finished job {job_id!r} in {project_dir} (looked for {manifest_path} and {folder}); "
            "check the job id (the manifest's file name in stembridge/outbox) and --project-dir",
        )
    try:
        record = Manifest.from_json(json.loads(manifest_path.read_text(encoding="utf-8")))
        raw = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise RequestError("input", f"job {job_id}: cannot read its manifest or request.json ({exc})") from None
    if isinstance(raw.get("project"), dict):
        raw["project"]["dir"] = str(project_dir.resolve())  # the project may have moved since
    request = parse_request(raw)
    notes: list[str] = []
    try:
        material = load_material(request)
    except RequestError as exc:
        material = Material()
        notes.append(f"the job's material could not be read again: {exc}")
    data = report_data(request, job_id, material, list(record.placements), folder, key=record.key,
                       seed=record.seed)
    if notes:
        data = replace(data, notes=tuple(data.notes) + tuple(notes))
    return write_report(folder, data, free_report_name(folder))

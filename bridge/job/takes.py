"""Finding and loading the take a regeneration starts from."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bridge.job.layout import ProjectLayout
from bridge.job.manifest import Manifest, Placement
from bridge.job.request import RequestError
from conditioning.timeline import Section
from conditioning.types import Note
from models.base import Generation

log = logging.getLogger(__name__)


def read_manifest(path: Path) -> Manifest | None:
    """A manifest from the outbox, or None when it is unreadable or not a v1 job manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        log.warning("skipping unreadable manifest %s: %s", path, exc)
        return None
    try:
        return Manifest.from_json(data)
    except ValueError as exc:
        log.info("skipping %s: %s", path.name, exc)
        return None


def _section_placements(manifest: Manifest, section: Section) -> list[Placement]:
    """The newest take's placements of ``section`` in one manifest."""
    mine = [
        p for p in manifest.placements
        if p.section == section.name and abs(float(p.start_beat) - section.start_beat) < 1e-6
    ]
    if not mine:
        return []
    newest = max(p.take for p in mine)
    return [p for p in mine if p.take == newest]


def find_base_manifest(layout: ProjectLayout, section: Section, base_job: str | None) -> Manifest:
    """The manifest of the take to regenerate from.

    Args:
        layout: the project's folders.
        section: the section being regenerated.
        base_job: an explicit job id, or None for the newest finished job that placed the section.

    Raises:
        RequestError: code "range" when no earlier take of the section exists.
    """
    if base_job is not None:
        manifest = read_manifest(layout.manifest_path(base_job))
        if manifest is None or manifest.status != "done":
            raise RequestError("range", f"base_job {base_job!r} has no finished manifest in the outbox")
        if not _section_placements(manifest, section):
            raise RequestError("range", f"base_job {base_job!r} did not generate section {section.name!r}")
        return manifest
    candidates = sorted(layout.outbox.glob("*.json"), reverse=True) if layout.outbox.is_dir() else []
    for path in candidates:
        if path.name == "status.json":
            continue
        manifest = read_manifest(path)
        if manifest is not None and manifest.status == "done" and _section_placements(manifest, section):
            return manifest
    raise RequestError(
        "range",
        f"section {section.name!r} has not been generated yet, so there is no take to regenerate; "
        "generate the song first, then regenerate a bar range",
    )


def load_base_generation(layout: ProjectLayout, manifest: Manifest, section: Section, sample_rate: int) -> Generation:
    """Read the base take's stems (and its MIDI parts when the job wrote any) for ``section``.

    Raises:
        RequestError: a base stem file is missing or at another sample rate.
    """
    from conditioning.io.audio import read_audio

    stems = {}
    for p in _section_placements(manifest, section):
        path = (layout.project_dir / p.file).resolve()
        if not path.is_relative_to(layout.project_dir.resolve()):
            raise RequestError("path", f"base take file {p.file!r} is outside the project folder")
        try:
            audio = read_audio(path)
        except ValueError as exc:
            raise RequestError("input", f"the base take is unreadable: {exc}") from None
        if audio.sample_rate != sample_rate:
            raise RequestError(
                "input",
                f"the base take {p.file} is at {audio.sample_rate} Hz but the project is at {sample_rate} Hz; "
                "generate the section again at the project rate",
            )
        stems[p.stem] = audio
    parts: dict[str, tuple[Note, ...]] = {}
    midi_rel = manifest.exports.get("midi")
    if midi_rel:
        from conditioning.io.midi import read_midi

        try:
            midi = read_midi(layout.project_dir / midi_rel)
            for track in midi.tracks:
                parts[track.name] = tuple(n for n in track.notes if section.contains_beat(n.start_beat))
        except ValueError as exc:
            log.warning("base MIDI parts unavailable (%s); the new take's MIDI has only the new range", exc)
    return Generation(stems=stems, parts=parts)

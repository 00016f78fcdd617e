"""Placing generated stems on the timeline: one WAV per section, stem and take, and its placement."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.export.bwf import BextInfo, bext_chunk, stem_description
from bridge.job.layout import take_file_name
from bridge.job.manifest import Placement
from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio
from models.base import Generation


def write_section_stems(
    generation: Generation,
    section: Section,
    take: int,
    folder: Path,
    final_folder_rel: str,
    tempo_map: TempoMap,
    sample_rate: int,
) -> list[Placement]:
    """Write each stem of one section's take as a 32-bit float Broadcast WAV.

    Each file carries a ``bext`` chunk whose TimeReference is the section's start in samples
    from the project start, so a DAW's "move to original position" puts it at its bar.

    Args:
        generation: the generator's output (stems of exactly the section length).
        section: the section.
        take: take number.
        folder: where to write now (the job's staging folder).
        final_folder_rel: the folder's path relative to the project once the job is published
            (written into the placements); its last part (the job id) becomes the bext
            OriginatorReference.
        tempo_map: the song's tempo map (placements carry seconds; the bext TimeReference is the
            section's start in samples).
        sample_rate: the project's sample rate, Hz.

    Returns:
        The manifest placement of every file written.

    Raises:
        FileExistsError: a file of that name exists (never overwritten).
    """
    from conditioning.io.audio import write_wav

    placements = []
    for stem, audio in generation.stems.items():
        name = take_file_name(section.slug, stem, take)
        bext = BextInfo(
            time_reference=tempo_map.beat_to_samples(section.start_beat, audio.sample_rate),
            description=stem_description(section.name, stem, take),
            originator_reference=final_folder_rel.rsplit("/", 1)[-1],
        )
        write_wav(folder / name, audio, subtype="FLOAT", extra_chunks=[bext_chunk(bext)])
        placements.append(
            Placement.of(stem, section, f"{final_folder_rel}/{name}", take, audio.num_samples, tempo_map, sample_rate)
        )
    return placements


def mix(generation: Generation) -> Audio | None:
    """Sum of all stems (for continuity prompts), or None when there are none."""
    stems = list(generation.stems.values())
    if not stems:
        return None
    total = np.zeros_like(stems[0].samples)
    for s in stems:
        total += s.samples
    return Audio(total, stems[0].sample_rate)

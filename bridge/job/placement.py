"""Placing generated stems on the timeline: WAV files per section and take, manifest placements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge.export.bwf import BextInfo, bext_chunk, stem_description
from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio
from models.base import Generation

#: Track name per stem in the DAW ("SB Drums", ...); unknown stems get "SB <Stem>".
TRACK_PREFIX = "SB "


def track_name(stem: str) -> str:
    """The DAW track a stem goes on: ``"drums"`` -> ``"SB Drums"``."""
    return TRACK_PREFIX + stem.replace("_", " ").replace("-", " ").title()


def _bar_number(bar: float) -> float | int:
    """Whole bars as ints (as people read them), fractional bars as floats."""
    return int(round(bar)) if abs(bar - round(bar)) < 1e-9 else round(bar, 6)


@dataclass(frozen=True)
class Placement:
    """One stem file placed at a section's position.

    Attributes:
        stem: stem name.
        section: the section it covers.
        file: path of the WAV, relative to the project folder (forward slashes).
        take: take number (1-based, grows with every generation of the section).
        length_samples: exact length in samples.
    """

    stem: str
    section: Section
    file: str
    take: int
    length_samples: int

    def to_json(self, tempo_map: TempoMap, sample_rate: int) -> dict[str, Any]:
        """The manifest v1 placement object (positions in bars, beats and seconds)."""
        sec = self.section
        return {
            "stem": self.stem,
            "track": track_name(self.stem),
            "section": sec.name,
            "role": sec.role,
            "file": self.file,
            "start_bar": _bar_number(sec.start_bar),
            "end_bar": _bar_number(sec.end_bar),
            "start_beat": round(sec.start_beat, 9),
            "end_beat": round(sec.end_beat, 9),
            "start_s": round(tempo_map.beat_to_seconds(sec.start_beat), 6),
            "length_s": round(self.length_samples / sample_rate, 6),
            "length_samples": self.length_samples,
            "take": self.take,
        }


def stem_file_name(section: Section, stem: str, take: int) -> str:
    """``<section-slug>_<stem>_take<N>.wav``."""
    return f"{section.slug}_{stem}_take{take}.wav"


def write_section_stems(
    generation: Generation,
    section: Section,
    take: int,
    folder: Path,
    final_folder_rel: str,
    *,
    tempo_map: TempoMap,
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
        tempo_map: the project's tempo map (places the section in samples).

    Raises:
        FileExistsError: a file of that name exists (never overwritten).
    """
    from conditioning.io.audio import write_wav

    placements = []
    for stem, audio in generation.stems.items():
        name = stem_file_name(section, stem, take)
        bext = BextInfo(
            time_reference=tempo_map.beat_to_samples(section.start_beat, audio.sample_rate),
            description=stem_description(section.name, stem, take),
            originator_reference=final_folder_rel.rsplit("/", 1)[-1],
        )
        write_wav(folder / name, audio, subtype="FLOAT", extra_chunks=[bext_chunk(bext)])
        placements.append(Placement(stem, section, f"{final_folder_rel}/{name}", take, audio.num_samples))
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


def stem_peak_and_rms(audio: Audio) -> tuple[float, float]:
    """Peak absolute sample and RMS of ``audio`` (linear, full scale = 1.0)."""
    x = audio.samples
    return float(np.max(np.abs(x))) if x.size else 0.0, float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0

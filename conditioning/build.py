"""Assemble per-section conditioning from a song's material."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conditioning.prompts import section_prompt
from conditioning.timeline import Section, TempoMap
from conditioning.types import ChordProgression, DrumPattern, Key, Melody, SectionConditioning


def song_key(chords: ChordProgression | None, melody: Melody | None) -> Key | None:
    """The key of the song: the chord analysis's key, else one estimated from the melody."""
    if chords is not None and chords.key is not None:
        return chords.key
    if melody is not None and melody.notes:
        from conditioning.key import estimate_key

        return estimate_key(list(melody.notes))
    return None


def build_conditioning(
    *,
    sections: Sequence[Section],
    tempo_map: TempoMap,
    sample_rate: int,
    stems: Sequence[str],
    prompt: str = "",
    section_prompts: Mapping[str, str] | None = None,
    chords: ChordProgression | None = None,
    drums: DrumPattern | None = None,
    melody: Melody | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[SectionConditioning]:
    """One :class:`SectionConditioning` per section, in time order.

    Args:
        sections: the song's sections (validated, in time order).
        tempo_map: the project tempo map.
        sample_rate: project sample rate in Hz.
        stems: stem names to generate.
        prompt: the global text prompt.
        section_prompts: prompts by section name or role.
        chords: the whole song's chords, or None.
        drums: the whole song's drum pattern, or None.
        melody: the whole song's melody, or None.
        extra: backend options passed through.
    """
    key = song_key(chords, melody)
    ordered = sorted(sections, key=lambda s: s.start_beat)
    out = []
    for i, sec in enumerate(ordered):
        out.append(
            SectionConditioning(
                section=sec,
                tempo_map=tempo_map,
                sample_rate=sample_rate,
                prompt=section_prompt(prompt, sec, section_prompts or {}, tempo_map, key),
                stems=tuple(stems),
                chords=chords,
                drums=drums,
                melody=melody,
                key=key,
                previous=ordered[i - 1] if i > 0 else None,
                next=ordered[i + 1] if i + 1 < len(ordered) else None,
                extra=dict(extra or {}),
            )
        )
    return out

"""Assemble per-section conditioning from a song's material."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from conditioning.piano_roll import MAX_SUSTAIN_BEATS
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


def _section_chords(chords: ChordProgression | None, section: Section, previous: Section | None) -> ChordProgression | None:
    """The song's chords with the played chord notes cut to the section (and the one before it).

    The previous section is kept because a section continues from its audio (the generator's
    context window reaches back into it); beyond that the notes are unknown, so masked.
    """
    if chords is None or chords.notes is None:
        return chords
    start = previous.start_beat if previous is not None else section.start_beat
    notes = chords.notes.in_range(start, section.end_beat, sustain_beats=MAX_SUSTAIN_BEATS)
    return replace(chords, notes=notes)


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
        chords: the whole song's chords, or None; their played notes (``chords.notes``) are cut to
            each section and the one before it.
        drums: the whole song's drum pattern, or None.
        melody: the whole song's melody, or None.
        extra: backend options passed through.
    """
    key = song_key(chords, melody)
    ordered = sorted(sections, key=lambda s: s.start_beat)
    out = []
    for i, sec in enumerate(ordered):
        prev = ordered[i - 1] if i > 0 else None
        out.append(
            SectionConditioning(
                section=sec,
                tempo_map=tempo_map,
                sample_rate=sample_rate,
                prompt=section_prompt(prompt, sec, section_prompts or {}, tempo_map, key),
                stems=tuple(stems),
                chords=_section_chords(chords, sec, prev),
                drums=drums,
                melody=melody,
                key=key,
                previous=prev,
                next=ordered[i + 1] if i + 1 < len(ordered) else None,
                extra=dict(extra or {}),
            )
        )
    return out

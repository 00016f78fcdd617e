"""Text prompts per section: global prompt + the section's own + its role's character + tempo, key."""

from __future__ import annotations

from collections.abc import Mapping

from conditioning.timeline import Section, TempoMap
from conditioning.types import Key

#: How each section role should feel, in words a text-to-music model understands.
ROLE_CHARACTER: dict[str, str] = {
    "intro": "sparse intro, few instruments, building anticipation",
    "verse": "laid-back verse, steady groove, room for a vocal",
    "pre-chorus": "pre-chorus rising tension, building energy",
    "chorus": "full energetic chorus, all instruments, big memorable hook",
    "post-chorus": "post-chorus, still full, catchy riff",
    "bridge": "contrasting bridge, new colour, different feel",
    "breakdown": "stripped-down breakdown, minimal, half the instruments",
    "break": "short break, sparse, drums drop out",
    "drop": "heavy drop, maximum energy, driving bass",
    "build": "build-up, rising intensity, riser",
    "solo": "instrumental solo section, lead takes the spotlight",
    "interlude": "calm instrumental interlude",
    "outro": "outro, winding down, sparser, fading",
    "section": "",
}


def matching_section_prompt(section: Section, section_prompts: Mapping[str, str]) -> str:
    """The musician's prompt for ``section``.

    A key matches when it equals the section name (case-insensitive), or the name without its
    number ("Chorus" matches "Chorus 2"), or the section's role. The most specific match wins.
    """
    if not section_prompts:
        return ""
    lowered = {k.strip().lower(): v for k, v in section_prompts.items()}
    name = section.name.strip().lower()
    base = name.rstrip("0123456789 ").strip()
    for key in (name, base, section.role):
        if key and key in lowered:
            return lowered[key].strip()
    return ""


def section_prompt(
    global_prompt: str,
    section: Section,
    section_prompts: Mapping[str, str],
    tempo_map: TempoMap,
    key: Key | None,
) -> str:
    """Compose the full text prompt for one section.

    Example: ``"lo-fi funk, warm rhodes. full band, more energy. full energetic chorus, all
    instruments, big memorable hook. 92 bpm, 4/4, A minor"``.

    Args:
        global_prompt: the request's ``prompt``.
        section: the section.
        section_prompts: the request's ``section_prompts``.
        tempo_map: gives the tempo (quarter-note bpm) and metre at the section start.
        key: the song key, or None.
    """
    parts = [
        global_prompt.strip().rstrip("."),
        matching_section_prompt(section, section_prompts).rstrip("."),
        ROLE_CHARACTER.get(section.role, ""),
    ]
    point = tempo_map.point_at_beat(section.start_beat)
    facts = [f"{point.bpm:.0f} bpm", str(point.time_signature)]
    if key is not None:
        facts.append(key.name)
    parts.append(", ".join(facts))
    return ". ".join(p for p in parts if p)

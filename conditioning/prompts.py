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


def normalise_section_prompts(section_prompts: Mapping[str, str]) -> dict[str, str]:
    """Section-prompt keys folded to lower case (how they are matched), each prompt stripped.

    Raises:
        ValueError: two keys differ only in case or surrounding spaces ("Intro" and "intro"),
            so one of them would silently be ignored.
    """
    folded: dict[str, str] = {}
    original: dict[str, str] = {}
    for key, value in section_prompts.items():
        low = key.strip().lower()
        if low in folded:
            raise ValueError(
                f"section_prompts keys {original[low]!r} and {key!r} name the same section "
                "(keys ignore case); keep one of them"
            )
        folded[low], original[low] = value.strip(), key
    return folded


def matching_section_prompt(section: Section, section_prompts: Mapping[str, str]) -> str:
    """The musician's prompt for ``section``.

    A key matches when it equals the section name (case-insensitive), or the name without its
    number ("Chorus" matches "Chorus 2"), or the section's role. The most specific match wins.

    Raises:
        ValueError: two keys differ only in case (see :func:`normalise_section_prompts`).
    """
    if not section_prompts:
        return ""
    lowered = normalise_section_prompts(section_prompts)
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

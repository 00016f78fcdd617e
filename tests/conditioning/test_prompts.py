"""Per-section text prompts."""

from __future__ import annotations

import pytest

from conditioning.prompts import section_prompt
from conditioning.timeline import Section, TempoMap
from conditioning.types import Key


def test_prompt_composes_global_section_role_tempo_key() -> None:
    tm = TempoMap.constant(92)
    chorus = Section.from_bars("Chorus 2", 9, 17, tm)
    text = section_prompt("lo-fi funk, warm rhodes", chorus, {"Chorus": "full band, more energy"}, tm, Key(9, "minor"))
    assert text.startswith("lo-fi funk, warm rhodes. full band, more energy. full energetic chorus")
    assert text.endswith("92 bpm, 4/4, A minor")


def test_intro_is_sparser_than_chorus_and_exact_name_wins() -> None:
    tm = TempoMap.constant(120, (6, 8))
    intro = Section.from_bars("Intro 1", 1, 5, tm)
    prompts = {"intro": "just piano", "Intro 1": "only pads"}
    text = section_prompt("", intro, prompts, tm, None)
    assert "sparse" in text and "6/8" in text
    assert "only pads" in text and "just piano" not in text
    verse = Section.from_bars("Verse 1", 5, 9, tm)
    assert "just piano" not in section_prompt("", verse, prompts, tm, None)


def test_keys_differing_only_in_case_are_refused() -> None:
    tm = TempoMap.constant(120)
    intro = Section.from_bars("Intro", 1, 5, tm)
    with pytest.raises(ValueError, match="'intro' and 'Intro'.*keep one"):
        section_prompt("", intro, {"intro": "just piano", "Intro": "only pads"}, tm, None)

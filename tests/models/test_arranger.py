"""The arranger: lengths, determinism, styles, harmony, registers, role shaping, fills."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from conditioning.timeline import Section, TempoMap, TempoPoint, TimeSignature
from conditioning.types import (
    ChordProgression,
    ChordSpan,
    DrumHit,
    DrumPattern,
    Key,
    Melody,
    Note,
    SectionConditioning,
)
from models.arranger.drums import CRASH, KICK, RIDE, SNARE, TOMS
from models.arranger.generator import SUPPORTED_STEMS, ArrangerGenerator, arrange, section_rng
from models.arranger.grid import section_bars
from models.arranger.harmony import parse_chord
from models.arranger.lead import lead_range
from models.base import CancelToken, GenerationCancelled
from models.registry import build_generator

STEMS = ("drums", "bass", "keys", "lead")
PROGRESSION = ("A:min7", "F:maj7", "C:maj", "G:7/3")


def _chords(tm: TempoMap, bars: int, labels: Sequence[str] = PROGRESSION) -> ChordProgression:
    spans = tuple(
        ChordSpan(labels[i % len(labels)], tm.bar_to_beat(i + 1), tm.bar_to_beat(i + 2)) for i in range(bars)
    )
    return ChordProgression(spans, Key(9, "minor"))


def _cond(
    name: str = "Chorus 1",
    *,
    tm: TempoMap | None = None,
    bars: tuple[int, int] = (1, 5),
    prompt: str = "pop",
    sample_rate: int = 48000,
    stems: tuple[str, ...] = STEMS,
    chords: bool = True,
    melody: Melody | None = None,
    drums: DrumPattern | None = None,
    with_next: bool = True,
    key: Key | None = None,
) -> SectionConditioning:
    tm = tm or TempoMap.constant(120)
    sec = Section.from_bars(name, bars[0], bars[1], tm)
    nxt = Section.from_bars("Verse 9", bars[1], bars[1] + 4, tm) if with_next else None
    return SectionConditioning(
        section=sec,
        tempo_map=tm,
        sample_rate=sample_rate,
        prompt=prompt,
        stems=stems,
        chords=_chords(tm, bars[1] + 4) if chords else None,
        drums=drums,
        melody=melody,
        key=key,
        next=nxt,
    )


def _notes(cond: SectionConditioning, seed: int = 1, stem: str = "drums") -> tuple[Note, ...]:
    return arrange(cond, section_rng(seed, cond, None)).parts[stem]


# -- lengths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_stem_lengths_with_tempo_change_and_seven_eight(sample_rate: int) -> None:
    tm = TempoMap(
        [
            TempoPoint(0.0, 110.0),
            TempoPoint(6.0, 87.5),  # mid-bar tempo change inside the section
            TempoPoint(8.0, 132.0, TimeSignature(7, 8)),  # 7/8 from bar 3
        ]
    )
    cond = _cond("Verse 1", tm=tm, bars=(1, 7), sample_rate=sample_rate)
    gen = ArrangerGenerator().generate(cond, seed=3)
    assert set(gen.stems) == set(STEMS)
    for audio in gen.stems.values():
        assert audio.sample_rate == sample_rate
        assert audio.samples.shape == (2, cond.length_samples)
        assert audio.samples.dtype == np.float32
    assert gen.programs["keys"] == 0 and gen.programs["lead"] == 81


def test_rendered_stems_are_audible_and_do_not_clip() -> None:
    cond = _cond(prompt="funk with clavinet and sax")
    gen = ArrangerGenerator().generate(cond, seed=11)
    for name, audio in gen.stems.items():
        peak = float(np.abs(audio.samples).max())
        rms = float(np.sqrt(np.mean(audio.samples**2)))
        assert gen.parts[name], name
        assert 0.05 < peak <= 0.99 + 1e-6, (name, peak)
        assert rms > 0.005, (name, rms)


# -- validation, progress, cancellation -------------------------------------------------------


def test_unknown_stem_lists_supported_ones() -> None:
    cond = _cond(stems=("drums", "tuba"))
    with pytest.raises(ValueError, match="tuba.*drums, bass, keys, lead"):
        ArrangerGenerator().generate(cond, seed=1)


def test_progress_and_cancel() -> None:
    cond = _cond(bars=(1, 3))
    seen: list[float] = []
    ArrangerGenerator().generate(cond, seed=1, progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 5
    token = CancelToken()

    def cancel_after_drums(fraction: float, message: str) -> None:
        if "drums" in message:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        ArrangerGenerator().generate(cond, seed=1, progress=cancel_after_drums, cancel=token)


def test_registry_builds_the_arranger() -> None:
    assert isinstance(build_generator("arranger"), ArrangerGenerator)
    assert SUPPORTED_STEMS == STEMS


# -- determinism and variation ----------------------------------------------------------------


def test_same_seed_same_notes_and_audio() -> None:
    cond = _cond(bars=(1, 3))
    a = ArrangerGenerator().generate(cond, seed=5)
    b = ArrangerGenerator().generate(cond, seed=5)
    assert a.parts == b.parts
    for name in STEMS:
        np.testing.assert_array_equal(a.stems[name].samples, b.stems[name].samples)


def test_other_seed_gives_other_patterns_voicings_and_lines() -> None:
    cond = _cond(bars=(1, 9), prompt="funk")
    a = arrange(cond, section_rng(1, cond, None)).parts
    differing = [s for s in STEMS if any(arrange(cond, section_rng(seed, cond, None)).parts[s] != a[s] for seed in (2, 3))]
    assert set(differing) == set(STEMS)
    b = arrange(cond, section_rng(2, cond, None)).parts
    assert {(n.pitch, n.start_beat) for n in a["drums"]} != {(n.pitch, n.start_beat) for n in b["drums"]}


def test_regeneration_changes_only_the_range() -> None:
    cond = _cond(bars=(1, 5), with_next=False, prompt="jazz")
    gen = ArrangerGenerator()
    base = gen.generate(cond, seed=4)
    new = gen.regenerate(cond, base=base, start_beat=4.0, end_beat=12.0, seed=4)
    inside = [n for n in new.parts["keys"] if 4.0 <= n.start_beat < 12.0]
    base_inside = [n for n in base.parts["keys"] if 4.0 <= n.start_beat < 12.0]
    assert inside != base_inside
    a = cond.tempo_map.beat_to_samples(4.0, cond.sample_rate)
    b = cond.tempo_map.beat_to_samples(12.0, cond.sample_rate)
    for stem in STEMS:
        old, fresh = base.stems[stem].samples, new.stems[stem].samples
        np.testing.assert_array_equal(fresh[:, :a], old[:, :a])
        np.testing.assert_array_equal(fresh[:, b:], old[:, b:])
        # no click where the new take meets the old one: the joins move no more than the music does
        step = np.abs(np.diff(fresh, axis=1))
        typical = max(np.abs(np.diff(old, axis=1)).max(), step[:, a + 4800 : b - 4800].max())
        for edge in (a, b):
            assert step[:, edge - 240 : edge + 240].max() <= typical + 1e-6, (stem, edge)
    assert [n for n in new.parts["keys"] if not 4.0 <= n.start_beat < 12.0] == [
        n for n in base.parts["keys"] if not 4.0 <= n.start_beat < 12.0
    ]


# -- styles -----------------------------------------------------------------------------------


def _pitches_at(notes: Sequence[Note], pitch: int) -> list[float]:
    return sorted(n.start_beat for n in notes if n.pitch == pitch)


def test_styles_change_the_drum_pattern() -> None:
    techno = _notes(_cond("Verse 1", prompt="dark techno", with_next=False))
    assert _pitches_at(techno, KICK) == [float(b) for b in range(16)]  # four on the floor
    jazz = _notes(_cond("Verse 1", prompt="late-night jazz trio", with_next=False))
    rides = _pitches_at(jazz, RIDE)
    assert len(rides) >= 20
    assert any(abs(b % 1 - 2 / 3) < 1e-6 for b in rides)  # swung skip notes
    country = _notes(_cond("Verse 1", prompt="country train beat", with_next=False))
    assert len(_pitches_at(country, SNARE)) >= 4 * 16 - 1  # sixteenth-note snare
    reggae = _notes(_cond("Verse 1", prompt="roots reggae", with_next=False))
    assert 0.0 not in _pitches_at(reggae, KICK) and 2.0 in _pitches_at(reggae, KICK)  # one drop
    rock = _notes(_cond("Verse 1", prompt="rock", with_next=False))
    assert {4 * i + 1.0 for i in range(4)} <= set(_pitches_at(rock, SNARE))  # backbeat
    patterns = [frozenset((n.pitch, n.start_beat) for n in p) for p in (techno, jazz, country, reggae, rock)]
    assert len(set(patterns)) == 5


def test_prompt_instruments_pick_programs() -> None:
    progs = arrange(_cond(prompt="lo-fi, warm rhodes, tenor sax, upright bass"), section_rng(1, _cond(), None)).programs
    assert progs == {"drums": 0, "bass": 32, "keys": 4, "lead": 66}
    progs = arrange(_cond(prompt="house with organ and a synth lead"), section_rng(1, _cond(), None)).programs
    assert progs["keys"] == 16 and progs["lead"] == 81


@pytest.mark.parametrize("metre", [(3, 4), (6, 8), (7, 8)])
def test_grooves_follow_the_metre(metre: tuple[int, int]) -> None:
    tm = TempoMap.constant(100, metre)
    cond = _cond("Verse 1", tm=tm, with_next=False, prompt="pop")
    drums = _notes(cond)
    bars = section_bars(tm, cond.section.start_beat, cond.section.end_beat)
    assert len(bars) == 4
    for bar in bars:
        assert bar.length == pytest.approx(metre[0] * 4 / metre[1])
        assert bar.start in _pitches_at(drums, KICK)  # kick on every downbeat
    assert all(n.start_beat < cond.section.end_beat for n in drums)


# -- harmony, registers -----------------------------------------------------------------------


def test_bass_plays_chord_roots_and_slash_bass() -> None:
    cond = _cond("Verse 1", bars=(1, 9), prompt="rock")
    bass = _notes(cond, stem="bass")
    for span in cond.chords.in_range(cond.section.start_beat, cond.section.end_beat):  # type: ignore[union-attr]
        first = min((n for n in bass if n.start_beat >= span.start_beat - 1e-6), key=lambda n: n.start_beat)
        assert first.start_beat == pytest.approx(span.start_beat)
        assert first.pitch % 12 == parse_chord(span.label).bass
    assert {n.pitch % 12 for n in bass if n.start_beat == 12.0} == {11}  # G:7/3 -> B in the bass
    assert all(28 <= n.pitch <= 60 for n in bass)


def test_bass_locks_to_the_kick() -> None:
    cond = _cond("Verse 1", prompt="hip hop", with_next=False)
    parts = arrange(cond, section_rng(2, cond, None)).parts
    kicks = {round(b, 6) for b in _pitches_at(parts["drums"], KICK)}
    bass_onsets = {round(n.start_beat, 6) for n in parts["bass"]}
    assert len(kicks) >= 8 and kicks <= bass_onsets


def test_keys_voice_lead_in_a_middle_register() -> None:
    cond = _cond("Verse 1", bars=(1, 9), prompt="pop with strings")
    keys = _notes(cond, stem="keys")
    assert all(48 <= n.pitch <= 84 for n in keys)
    by_onset: dict[float, list[int]] = {}
    for n in keys:
        by_onset.setdefault(n.start_beat, []).append(n.pitch)
    chords = [sorted(v) for _, v in sorted(by_onset.items()) if len(v) >= 3]
    moves = [sum(abs(a - b) for a, b in zip(x, y, strict=False)) for x, y in zip(chords, chords[1:], strict=False) if len(x) == len(y)]
    assert moves and max(moves) <= 12  # smooth: no chord jumps by more than an octave in total


def test_lead_moves_melody_into_instrument_register() -> None:
    hum = Melody(tuple(Note(p, 2.0 * i, 2.0 * i + 1.5, 70) for i, p in enumerate([45, 47, 48, 50, 52, 50, 48, 47])), "audio")
    cond = _cond("Verse 1", prompt="flute", melody=hum)
    lead = _notes(cond, stem="lead")
    lo, hi = lead_range(73)
    assert all(lo <= n.pitch <= hi for n in lead)
    assert [n.pitch - h.pitch for n, h in zip(lead, hum.notes, strict=True)] == [lead[0].pitch - 45] * 8
    assert (lead[0].pitch - 45) % 12 == 0 and [n.start_beat for n in lead] == [n.start_beat for n in hum.notes]


def test_improvised_lead_stays_in_key_and_range() -> None:
    cond = _cond("Solo", bars=(1, 9), prompt="pop with trumpet", chords=False, key=Key(2, "major"))
    lead = _notes(cond, stem="lead")
    lo, hi = lead_range(56)
    assert len(lead) >= 8
    assert all(lo <= n.pitch <= hi for n in lead)
    assert {n.pitch % 12 for n in lead} <= set(Key(2, "major").scale)


def test_no_chords_uses_melody_or_key() -> None:
    cond = _cond("Verse 1", chords=False, key=Key(7, "major"), with_next=False)
    bass = _notes(cond, stem="bass")
    assert bass[0].pitch % 12 == 7  # default progression starts on the tonic
    tune = Melody(tuple(Note(p, float(b), b + 1.0) for b, p in enumerate([65, 69, 72, 69] * 4)))  # F major arpeggio
    cond = _cond("Verse 1", chords=False, melody=tune, with_next=False)
    arrangement = arrange(cond, section_rng(1, cond, None))
    assert arrangement.chords[0].chord.root == 5


def test_given_drum_track_is_played() -> None:
    hits = tuple(DrumHit(36 if b % 2 == 0 else 38, "kick" if b % 2 == 0 else "snare", float(b), 90) for b in range(32))
    notes = tuple(Note(h.pitch, h.beat, h.beat + 0.25, h.velocity) for h in hits)
    cond = _cond("Chorus 1", drums=DrumPattern(hits, notes), bars=(2, 4))
    drums = _notes(cond)
    assert [(n.pitch, n.start_beat) for n in drums] == [(h.pitch, h.beat) for h in hits if 4.0 <= h.beat < 12.0]


# -- role shaping, fills ----------------------------------------------------------------------


def test_fill_before_next_section_and_crash_on_chorus() -> None:
    with_fill = _notes(_cond("Verse 1", prompt="rock", with_next=True), seed=3)
    without = _notes(_cond("Verse 1", prompt="rock", with_next=False), seed=3)
    last_bar = 12.0

    def fill_notes(notes: Sequence[Note]) -> list[Note]:
        return [n for n in notes if n.start_beat >= last_bar + 2.0 and (n.pitch in TOMS or n.pitch == SNARE)]

    assert len(fill_notes(with_fill)) >= 4
    assert len(fill_notes(with_fill)) > len(fill_notes(without))
    assert [n for n in with_fill if n.start_beat < last_bar] == [n for n in without if n.start_beat < last_bar]
    chorus = _notes(_cond("Chorus 1", prompt="rock"))
    verse = _notes(_cond("Verse 1", prompt="rock"))
    # every section opens with a crash; the chorus's is the loud one
    crash = {name: [n.velocity for n in notes if n.pitch == CRASH and n.start_beat == 0.0]
             for name, notes in (("chorus", chorus), ("verse", verse))}
    assert crash["chorus"] and crash["verse"] and min(crash["chorus"]) > max(crash["verse"]) + 15


def test_roles_shape_density_and_loudness() -> None:
    def stats(name: str) -> tuple[int, float]:
        parts = arrange(_cond(name, prompt="funk"), section_rng(9, _cond(name), None)).parts
        notes = [n for p in parts.values() for n in p]
        return len(notes), float(np.mean([n.velocity for n in notes]))

    intro, chorus, brk = stats("Intro"), stats("Chorus 1"), stats("Break")
    assert chorus[0] > intro[0] and chorus[0] > brk[0]
    assert chorus[1] > intro[1] + 10 and chorus[1] > brk[1] + 10
    bridge = arrange(_cond("Bridge", prompt="pop"), section_rng(1, _cond(), None)).parts["keys"]
    verse = arrange(_cond("Verse 1", prompt="pop"), section_rng(1, _cond(), None)).parts["keys"]
    assert np.mean([n.pitch for n in bridge]) > np.mean([n.pitch for n in verse]) + 2  # bridge sits higher


@pytest.mark.parametrize("metre", [(4, 4), (3, 4), (6, 8), (7, 8)])
def test_improvised_lead_is_never_silent(metre: tuple[int, int]) -> None:
    """Every section gets a lead line, whatever the role, length, metre and seed."""
    tm = TempoMap.constant(100, metre)
    for name in ("Intro", "Build", "Break", "Outro", "Verse 1"):
        for bars in ((3, 4), (3, 5), (3, 7)):
            for seed in range(1, 5):
                cond = _cond(name, tm=tm, bars=bars, prompt="ballad", with_next=seed % 2 == 0)
                lead = _notes(cond, seed=seed, stem="lead")
                assert lead, (name, bars, seed)
                assert all(cond.section.start_beat <= n.start_beat < n.end_beat <= cond.section.end_beat for n in lead)


def test_prompt_words_match_whole_words_only() -> None:
    from models.arranger.style import style_from_prompt

    assert style_from_prompt("rapid funk groove").name == "funk"  # not "rap"
    assert style_from_prompt("slowly building rock").name == "rock"  # not "slow"
    assert style_from_prompt("funky, jazzy chords").name == "funk"  # endings still count
    assert style_from_prompt("soulful keys").name == "r&b"
    organic = style_from_prompt("organic lo-fi, chill vibes, sharp lead synth")
    assert (organic.keys_program, organic.lead_program) == (4, 81)  # no organ, vibraphone or harp
    assert style_from_prompt("jazz with a vibes solo").keys_program == 11
    assert style_from_prompt("orchestral ballad").keys_program == 48

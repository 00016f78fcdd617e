"""Tempo maps, bars/beats/seconds/samples and sections."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conditioning.timeline import (
    Section,
    TempoMap,
    TempoPoint,
    TimeSignature,
    role_from_name,
    validate_sections,
)


def test_constant_tempo_conversions() -> None:
    tm = TempoMap.constant(92)
    assert tm.bar_to_beat(9) == 32.0
    assert tm.beat_to_seconds(32.0) == pytest.approx(20.869565, abs=1e-6)
    assert tm.seconds_to_beat(20.869565217391305) == pytest.approx(32.0)
    assert tm.beat_to_samples(32.0, 48000) == round(32 * 60 / 92 * 48000)


@pytest.mark.parametrize(
    ("sig", "beats_per_bar"), [((4, 4), 4.0), ((3, 4), 3.0), ((6, 8), 3.0), ((7, 8), 3.5), ((5, 4), 5.0)]
)
def test_bar_lengths_by_metre(sig: tuple[int, int], beats_per_bar: float) -> None:
    tm = TempoMap.constant(120, sig)
    assert tm.bar_to_beat(2) == beats_per_bar
    assert tm.beats_per_bar_at(10) == beats_per_bar
    assert tm.beat_to_bar(beats_per_bar * 3) == pytest.approx(4.0)


def test_mid_song_tempo_and_metre_change() -> None:
    # 4 bars of 4/4 at 120, then 7/8 at 90 from beat 16, then 3/4 at 100 from bar 7
    tm = TempoMap.from_json(
        [
            {"beat": 0, "bpm": 120, "time_signature": [4, 4]},
            {"beat": 16, "bpm": 90, "time_signature": [7, 8]},
            {"beat": 23, "bpm": 100, "time_signature": [3, 4]},
        ]
    )
    assert tm.bar_to_beat(5) == 16.0
    assert tm.bar_to_beat(6) == 19.5
    assert tm.bar_to_beat(7) == 23.0
    assert tm.bar_to_beat(8) == 26.0
    # 16 beats at 120 = 8 s; 7 beats at 90 = 4.6667 s; 3 beats at 100 = 1.8 s
    assert tm.beat_to_seconds(tm.bar_to_beat(7)) == pytest.approx(8 + 7 * 60 / 90)
    assert tm.beat_to_seconds(tm.bar_to_beat(8)) == pytest.approx(8 + 7 * 60 / 90 + 1.8)
    assert tm.beat_to_bar(19.5) == pytest.approx(6.0)
    assert tm.time_signature_at_beat(20) == TimeSignature(7, 8)
    assert tm.bpm_at_beat(24) == 100


def test_tempo_change_inside_bar_keeps_bar_grid() -> None:
    tm = TempoMap([TempoPoint(0, 120), TempoPoint(2, 60)])
    assert tm.bar_to_beat(2) == 4.0
    assert tm.beat_to_seconds(4) == pytest.approx(1.0 + 2.0)


def test_metre_change_off_bar_line_is_refused() -> None:
    with pytest.raises(ValueError, match="not on a bar line"):
        TempoMap([TempoPoint(0, 120, TimeSignature(4, 4)), TempoPoint(6, 120, TimeSignature(3, 4))])


@pytest.mark.parametrize("bpm", [0, -10, float("nan"), float("inf")])
def test_unplayable_tempo_is_refused(bpm: float) -> None:
    with pytest.raises(ValueError, match="bpm"):
        TempoMap.constant(bpm)


def test_from_json_errors_name_the_point() -> None:
    with pytest.raises(ValueError, match=r"tempo_map\[1\]"):
        TempoMap.from_json([{"beat": 0, "bpm": 120}, {"beat": 4, "bpm": "fast"}])
    with pytest.raises(ValueError, match="unknown key"):
        TempoMap.from_json([{"beat": 0, "bpm": 120, "tempo": 3}])
    with pytest.raises(ValueError, match="denominator"):
        TempoMap.from_json([{"beat": 0, "bpm": 120, "time_signature": [4, 3]}])


@given(
    bpms=st.lists(st.floats(40, 240), min_size=1, max_size=5),
    beat=st.floats(0, 500),
)
def test_beat_seconds_round_trip(bpms: list[float], beat: float) -> None:
    tm = TempoMap([TempoPoint(i * 8.0, b) for i, b in enumerate(bpms)])
    assert tm.seconds_to_beat(tm.beat_to_seconds(beat)) == pytest.approx(beat, abs=1e-7)


@given(st.lists(st.sampled_from([(4, 4), (3, 4), (6, 8), (7, 8), (5, 4)]), min_size=1, max_size=4), st.integers(1, 60))
def test_bar_beat_round_trip(sigs: list[tuple[int, int]], bar: int) -> None:
    points, beat = [], 0.0
    for sig in sigs:
        points.append(TempoPoint(beat, 100, TimeSignature(*sig)))
        beat += 2 * TimeSignature(*sig).beats_per_bar
    tm = TempoMap(points)
    assert tm.beat_to_bar(tm.bar_to_beat(bar)) == pytest.approx(bar)
    start = tm.bar_to_beat(bar)
    assert any(abs(line - start) < 1e-6 for line in tm.bar_lines(start - 1, start + 1))


def test_sections_tile_exactly_in_samples() -> None:
    tm = TempoMap.from_json([{"beat": 0, "bpm": 92.7}, {"beat": 13, "bpm": 131.3}])
    secs = [Section.from_bars(f"S{i}", 1 + 3 * i, 4 + 3 * i, tm) for i in range(6)]
    total = sum(s.length_samples(tm, 44100) for s in secs)
    assert total == tm.beat_to_samples(secs[-1].end_beat, 44100)


def test_section_from_beats_and_bars_agree() -> None:
    tm = TempoMap.constant(100, (6, 8))
    a = Section.from_bars("Chorus 2", 3, 5, tm)
    b = Section.from_beats("Chorus 2", 6.0, 12.0, tm)
    assert (a.start_beat, a.end_beat) == (b.start_beat, b.end_beat)
    assert b.start_bar == 3 and b.end_bar == 5
    assert a.role == "chorus" and a.slug == "chorus-2"
    assert a.length_seconds(tm) == pytest.approx(6 * 60 / 100)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("Chorus 2", "chorus"), ("CHORUS", "chorus"), ("Chorus2", "chorus"), ("Pre-Chorus", "pre-chorus"),
        ("prechorus 1", "pre-chorus"), ("Post Chorus", "post-chorus"), ("Verse 1", "verse"), ("V2", "verse"),
        ("Intro", "intro"), ("Bridge", "bridge"), ("Middle 8", "bridge"), ("Break", "break"),
        ("Breakdown", "breakdown"), ("Drop", "drop"), ("Outro", "outro"), ("Refrain", "chorus"),
        ("Guitar Solo", "solo"), ("Interlude", "interlude"), ("Build-up", "build"), ("Section A", "section"),
    ],
)
def test_roles_from_names(name: str, role: str) -> None:
    assert role_from_name(name) == role


def test_backwards_and_overlapping_sections() -> None:
    tm = TempoMap.constant(120)
    with pytest.raises(ValueError, match="end bar must be after"):
        Section.from_bars("Verse", 9, 5, tm)
    with pytest.raises(ValueError, match="overlap"):
        validate_sections([Section.from_bars("A", 1, 9, tm), Section.from_bars("B", 8, 12, tm)])
    with pytest.raises(ValueError, match="bars are counted from 1"):
        Section.from_bars("A", 0, 4, tm)
    ordered = validate_sections([Section.from_bars("B", 9, 17, tm), Section.from_bars("A", 1, 9, tm)])
    assert [s.name for s in ordered] == ["A", "B"]


def test_bar_lines_in_mixed_metre() -> None:
    tm = TempoMap([TempoPoint(0, 120, TimeSignature(4, 4)), TempoPoint(8, 120, TimeSignature(7, 8))])
    assert tm.bar_lines(0, 16) == [0.0, 4.0, 8.0, 11.5, 15.0]
    assert math.isclose(tm.beat_to_seconds(tm.bar_to_beat(4)), 11.5 * 0.5)

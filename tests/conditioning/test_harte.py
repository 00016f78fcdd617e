"""Harte label parsing and formatting."""

from __future__ import annotations

import pytest

from conditioning.harte import (
    NO_CHORD,
    QUALITY_INTERVALS,
    format_harte,
    interval_semitones,
    is_valid_label,
    label_pitch_classes,
    parse_harte,
    parse_pitch_class,
)


@pytest.mark.parametrize(
    ("label", "root", "quality", "bass", "pcs"),
    [
        ("C:maj", 0, "maj", 0, {0, 4, 7}),
        ("A:min7", 9, "min7", 0, {9, 0, 4, 7}),
        ("G:7/3", 7, "7", 4, {7, 11, 2, 5}),
        ("F:maj/3", 5, "maj", 4, {5, 9, 0}),
        ("G:sus4", 7, "sus4", 0, {7, 0, 2}),
        ("G:sus4(b7)", 7, "sus4", 0, {7, 0, 2, 5}),
        ("B:hdim7", 11, "hdim7", 0, {11, 2, 5, 9}),
        ("C#:dim7", 1, "dim7", 0, {1, 4, 7, 10}),
        ("Eb:maj7/5", 3, "maj7", 7, {3, 7, 10, 2}),
        ("Bb:min/b3", 10, "min", 3, {10, 1, 5}),
        ("D", 2, "maj", 0, {2, 6, 9}),
        ("Cb:maj", 11, "maj", 0, {11, 3, 6}),
        ("C:maj(*5)", 0, "maj", 0, {0, 4}),
        ("C:maj/b7", 0, "maj", 10, {0, 4, 7, 10}),
    ],
)
def test_parse_labels(label: str, root: int, quality: str, bass: int, pcs: set[int]) -> None:
    chord = parse_harte(label)
    assert chord.root == root
    assert chord.quality == quality
    assert chord.bass == bass
    assert chord.pitch_classes == frozenset(pcs)
    assert label_pitch_classes(label) == frozenset(pcs)


def test_bare_interval_list() -> None:
    chord = parse_harte("C:(3,5)")
    assert chord.quality == ""
    assert chord.intervals == frozenset({0, 4, 7})
    assert chord.label == "C:(3,5)"


def test_no_chord() -> None:
    for label in ("N", "X"):
        chord = parse_harte(label)
        assert chord.is_no_chord
        assert chord.pitch_classes == frozenset()
        assert chord.bass_pitch_class is None
        assert chord.label == NO_CHORD
    assert format_harte(None) == "N"


@pytest.mark.parametrize("quality", sorted(QUALITY_INTERVALS))
def test_round_trip_every_quality_and_root(quality: str) -> None:
    for root in range(12):
        for bass in sorted(QUALITY_INTERVALS[quality]):
            label = format_harte(root, quality, bass)
            chord = parse_harte(label)
            assert (chord.root, chord.quality, chord.bass) == (root, quality, bass)
            assert chord.label == label
            assert parse_harte(chord.label).pitch_classes == chord.pitch_classes


def test_round_trip_with_mir_eval() -> None:
    mir_eval = pytest.importorskip("mir_eval")
    for label in ("C:maj", "A:min7", "G:7/3", "F:maj/3", "G:sus4(b7)", "F#:hdim7", "Bb:maj6/5"):
        root, bitmap, bass = mir_eval.chord.encode(label)
        chord = parse_harte(label)
        assert root == chord.root
        assert {i for i in range(12) if bitmap[i]} == set(chord.intervals)
        assert bass == chord.bass


def test_canonical_spelling() -> None:
    assert parse_harte("Gb:maj").label == "F#:maj"
    assert parse_harte("A#:min7/b7").label == "Bb:min7/b7"
    assert parse_harte("  E:min  ").label == "E:min"


@pytest.mark.parametrize("bad", ["H:maj", "C:major7", "C:", "C:maj/x", "c:maj", "C:maj(q)", "", "C:maj)"])
def test_bad_labels_raise_with_example(bad: str) -> None:
    with pytest.raises(ValueError, match="C:maj"):
        parse_harte(bad)
    assert not is_valid_label(bad)


def test_label_must_be_text() -> None:
    with pytest.raises(TypeError):
        parse_harte(5)  # type: ignore[arg-type]


def test_intervals_and_pitch_classes() -> None:
    assert interval_semitones("b7") == 10
    assert interval_semitones("#11") == 6
    assert interval_semitones("9") == 2
    assert interval_semitones("bb7") == 9
    assert parse_pitch_class("F#") == 6
    assert parse_pitch_class("Bb") == 10
    with pytest.raises(ValueError):
        interval_semitones("x3")
    with pytest.raises(ValueError):
        parse_pitch_class("Q")
    with pytest.raises(ValueError):
        format_harte(0, "weird")
    with pytest.raises(ValueError):
        format_harte(12, "maj")

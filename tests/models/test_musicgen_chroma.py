"""Chroma conditioning for MusicGen-melody (melody, chords, audio)."""

from __future__ import annotations

import numpy as np
import pytest

from conditioning.chords import chords_from_symbols
from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio, Melody, Note, SectionConditioning
from models.musicgen.chroma import audio_chroma, conditioning_chroma

RATE = 32000 / 4096  # MusicGen-melody's chroma frame rate


def cond(melody: Melody | None = None, chords: object = None) -> SectionConditioning:
    tm = TempoMap.constant(120)
    return SectionConditioning(
        section=Section.from_bars("Verse", 1, 3, tm), tempo_map=tm, sample_rate=48000,
        prompt="x", stems=("keys",), melody=melody, chords=chords,  # type: ignore[arg-type]
    )


def test_no_material_gives_none() -> None:
    assert conditioning_chroma(cond(), 0.0, 4.0, RATE) is None


def test_melody_one_hot_at_the_right_time() -> None:
    mel = Melody((Note(69, 0, 2), Note(64, 2, 4)))  # A for 1 s, then E for 1 s at 120 bpm
    c = conditioning_chroma(cond(melody=mel), 0.0, 2.0, RATE)
    assert c is not None and c.shape == (round(2.0 * RATE), 12)
    assert c[2, 9] == 1.0 and c[2].sum() == 1.0
    assert c[12, 4] == 1.0


def test_chords_multi_hot_and_combined_with_melody() -> None:
    prog = chords_from_symbols([["C:maj", 0, 4], ["A:min", 4, 8]])
    c = conditioning_chroma(cond(chords=prog), 0.0, 4.0, RATE)
    assert c is not None
    assert set(np.nonzero(c[3])[0]) == {0, 4, 7}
    assert set(np.nonzero(c[20])[0]) == {9, 0, 4}
    mel = Melody((Note(62, 0, 4),))  # D over C major: a non-chord tone stands out
    both = conditioning_chroma(cond(melody=mel, chords=prog), 0.0, 2.0, RATE)
    assert both is not None
    assert both[3, 2] == 1.0 and both[3, 0] == pytest.approx(0.5)


def test_span_before_song_start_is_silent() -> None:
    mel = Melody((Note(60, 0, 8),))
    c = conditioning_chroma(cond(melody=mel), -1.0, 1.0, RATE)
    assert c is not None and c.shape[0] == round(2 * RATE)
    assert c[: round(RATE) - 1].sum() == 0 and c[-2, 0] == 1.0


def test_audio_chroma_finds_the_pitch_class() -> None:
    sr = 32000
    t = np.arange(sr * 2) / sr
    tone = np.sin(2 * np.pi * 440 * t) * (t < 1) + np.sin(2 * np.pi * 261.63 * t) * (t >= 1)
    c = audio_chroma(Audio(tone[None].astype(np.float32), sr), RATE)
    assert c.shape == (round(2 * RATE), 12)
    assert c[3, 9] == 1.0  # A
    assert c[12, 0] == 1.0  # C
    assert audio_chroma(Audio(np.zeros((1, sr), np.float32), sr), RATE).sum() == 0

"""Drum roles, bar grids and onset frames."""

from __future__ import annotations

import numpy as np
import pytest

from conditioning.drums import (
    DRUM_ROLES,
    bar_onset_grid,
    drum_onset_frames,
    drum_role,
    drums_from_notes,
)
from conditioning.timeline import TempoMap, TempoPoint, TimeSignature
from conditioning.types import Note


def _hit(pitch: int, beat: float, vel: int = 100) -> Note:
    return Note(pitch, beat, beat + 0.1, vel)


def test_gm_roles() -> None:
    assert [drum_role(p) for p in (36, 38, 42, 46, 45, 49, 51, 56)] == [
        "kick", "snare", "hihat", "hihat", "tom", "cymbal", "cymbal", "percussion",
    ]


def test_bar_grid_in_4_4_and_7_8() -> None:
    notes = [_hit(36, 0), _hit(38, 1), _hit(42, 0.5, 60), _hit(36, 4.0)]
    pattern = drums_from_notes(notes)
    grid = bar_onset_grid(pattern, TempoMap.constant(100), 1)
    assert grid.shape == (len(DRUM_ROLES), 16)
    assert grid[DRUM_ROLES.index("kick"), 0] == pytest.approx(100 / 127)
    assert grid[DRUM_ROLES.index("snare"), 4] > 0
    assert grid[DRUM_ROLES.index("hihat"), 2] == pytest.approx(60 / 127)
    assert grid[DRUM_ROLES.index("kick")].sum() == pytest.approx(100 / 127)  # beat 4 is bar 2
    tm78 = TempoMap.constant(100, (7, 8))
    assert bar_onset_grid(pattern, tm78, 1).shape == (len(DRUM_ROLES), 14)
    assert bar_onset_grid(pattern, tm78, 2)[DRUM_ROLES.index("kick"), 2] > 0  # beat 4 = 3.5 + 0.5


def test_onset_frames_follow_tempo_changes() -> None:
    tm = TempoMap([TempoPoint(0, 120), TempoPoint(4, 60, TimeSignature(4, 4))])
    pattern = drums_from_notes([_hit(36, 0), _hit(36, 4), _hit(36, 5)])
    frames = drum_onset_frames(pattern, tm, 0, 8, frame_rate=10)
    assert frames.shape == (round((2 + 4) * 10), len(DRUM_ROLES))
    kick = np.nonzero(frames[:, 0])[0].tolist()
    assert kick == [0, 20, 30]  # 0 s, 2 s, 3 s
    assert drum_onset_frames(pattern, tm, 0, 8, frame_rate=50).shape[0] == 300


def test_empty_selection_is_an_error() -> None:
    with pytest.raises(ValueError, match="has no notes"):
        drums_from_notes([])

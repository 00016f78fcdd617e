"""Frame-aligned chord features."""

from __future__ import annotations

import numpy as np
import pytest

from conditioning.chord_features import (
    COCO_MULLA_DIM,
    chord_chroma,
    coco_mulla_frames,
    frame_labels,
)
from conditioning.chords import chords_from_symbols
from conditioning.timeline import TempoMap, TempoPoint

PROG = chords_from_symbols([["C:maj", 0, 4], ["A:min7", 4, 8], ["G:7/3", 8, 10], ["N", 10, 12]])
TM = TempoMap.constant(120.0)  # 0.5 s per beat


@pytest.mark.parametrize(("rate", "frames"), [(50.0, 300), (10.0, 60), (7.5, 45), (1.0, 6)])
def test_shapes_at_frame_rates(rate: float, frames: int) -> None:
    chroma = chord_chroma(PROG, TM, 0, 12, rate)
    coco = coco_mulla_frames(PROG, TM, 0, 12, rate)
    assert chroma.shape == (frames, 12)
    assert coco.shape == (frames, COCO_MULLA_DIM)
    assert chroma.dtype == np.float32 and coco.dtype == np.float32


def test_chroma_values() -> None:
    chroma = chord_chroma(PROG, TM, 0, 12, 50.0)
    # 50 fps, 0.5 s per beat: 25 frames per beat
    assert set(np.nonzero(chroma[0])[0]) == {0, 4, 7}
    assert set(np.nonzero(chroma[99])[0]) == {0, 4, 7}
    assert set(np.nonzero(chroma[100])[0]) == {9, 0, 4, 7}
    assert set(np.nonzero(chroma[200])[0]) == {7, 11, 2, 5}
    assert not chroma[250:].any()


def test_coco_mulla_layout() -> None:
    coco = coco_mulla_frames(PROG, TM, 0, 12, 50.0)
    c_maj, a_min7, g7_3, none = coco[10], coco[110], coco[210], coco[260]
    assert np.nonzero(c_maj[:12])[0].tolist() == [0]
    assert np.nonzero(c_maj[12:24])[0].tolist() == [0]
    assert np.nonzero(c_maj[24:36])[0].tolist() == [0, 4, 7]
    assert c_maj[36] == 0
    assert np.nonzero(a_min7[:12])[0].tolist() == [9]
    assert np.nonzero(a_min7[24:36])[0].tolist() == [0, 3, 7, 10]
    assert np.nonzero(g7_3[:12])[0].tolist() == [7]
    assert np.nonzero(g7_3[12:24])[0].tolist() == [4]
    assert np.nonzero(g7_3[24:36])[0].tolist() == [0, 4, 7, 10]
    assert none[36] == 1 and none[:36].sum() == 0
    # every frame is exactly one of: chord (root + bass one-hot) or N
    assert np.all(coco[:, :12].sum(axis=1) + coco[:, 36] == 1)


def test_tempo_change_moves_frame_boundaries() -> None:
    tm = TempoMap([TempoPoint(0.0, 120.0), TempoPoint(4.0, 60.0)])  # beats 0-4 = 2 s, 4-8 = 4 s
    prog = chords_from_symbols([["C:maj", 0, 4], ["F:maj", 4, 8]])
    labels = frame_labels(prog, tm, 0, 8, 10.0)
    assert len(labels) == 60
    assert labels[:20] == ["C:maj"] * 20
    assert labels[20:] == ["F:maj"] * 40


def test_sub_span_and_forced_frame_count() -> None:
    chroma = chord_chroma(PROG, TM, 3, 5, 4.0)  # 1 s -> 4 frames: C C Am Am
    assert chroma.shape == (4, 12)
    assert chroma[1, 4] == 1 and chroma[2, 9] == 1
    assert chord_chroma(PROG, TM, 0, 4, 50.0, num_frames=123).shape == (123, 12)
    # outside the progression there is no chord
    assert coco_mulla_frames(PROG, TM, 12, 16, 5.0)[:, 36].tolist() == [1.0] * 10


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="frame rate"):
        chord_chroma(PROG, TM, 0, 4, 0.0)
    with pytest.raises(ValueError, match="end must be after"):
        coco_mulla_frames(PROG, TM, 4, 4, 50.0)

"""Golden file: the example clip's conditioning against stored outputs (tests/resources/make_golden.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def _make_golden():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_golden", RESOURCES / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored() -> dict[str, np.ndarray]:
    return dict(np.load(RESOURCES / "golden_example.npz"))


@pytest.mark.slow
def test_melody_transcription_matches_golden(stored: dict[str, np.ndarray]) -> None:
    now = _make_golden().compute_melody()
    a, b = stored["melody_notes"], now["melody_notes"]
    assert a.shape == b.shape, f"{len(b)} notes now, {len(a)} in the golden file"
    np.testing.assert_array_equal(a[:, 2], b[:, 2])  # pitches
    np.testing.assert_allclose(a[:, :2], b[:, :2], atol=0.012)  # onsets/offsets within one model frame


def test_chord_and_drum_frames_match_golden(stored: dict[str, np.ndarray]) -> None:
    now = _make_golden().compute_frames()
    for key in ("coco_mulla_frames", "drum_frames"):
        assert stored[key].shape == now[key].shape, key
        np.testing.assert_allclose(stored[key], now[key], atol=1e-6, err_msg=key)
    # the example song is Am F C G: the first frame is rooted on A with a minor third
    first = stored["coco_mulla_frames"][0]
    assert first[9] == 1 and first[24 + 3] == 1 and first[36] == 0

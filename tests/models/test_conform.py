"""Conforming generated audio to the grid: tempo, stretch, length, loudness, fades."""

from __future__ import annotations

import numpy as np
import pytest

from conditioning.types import Audio
from models.conform import (
    apply_fades,
    conform_to_grid,
    estimate_tempo,
    fit_length,
    loudness_lufs,
    normalize_loudness,
    time_stretch,
)

pytest.importorskip("pyloudnorm")

SR = 44100


def click_track(bpm: float, seconds: float = 8.0, first_beat_s: float = 0.0, sr: int = SR) -> Audio:
    """Short decaying 2 kHz blips on every beat (stereo)."""
    x = np.zeros(int(seconds * sr), dtype=np.float32)
    blip = (np.sin(2 * np.pi * 2000 * np.arange(400) / sr) * np.exp(-np.arange(400) / 80)).astype(np.float32)
    t = first_beat_s
    while t < seconds - 0.01:
        i = int(round(t * sr))
        x[i : i + blip.size] += blip[: x.size - i]
        t += 60.0 / bpm
    return Audio(np.stack([x, x]) * 0.5, sr)


@pytest.mark.parametrize("bpm", [84.0, 92.0, 120.0, 128.0, 140.0])
def test_tempo_of_click_track_within_half_percent(bpm: float) -> None:
    est = estimate_tempo(click_track(bpm), around_bpm=round(bpm / 10) * 10)
    assert est.bpm == pytest.approx(bpm, rel=0.005)
    assert est.confidence > 0.3


def test_beat_phase_found() -> None:
    est = estimate_tempo(click_track(100.0, first_beat_s=0.2), around_bpm=100.0)
    assert est.phase_s == pytest.approx(0.2, abs=0.025)


def test_noise_has_low_confidence() -> None:
    noise = np.random.default_rng(1).standard_normal((1, SR * 4)).astype(np.float32) * 0.1
    assert estimate_tempo(Audio(noise, SR), around_bpm=120).confidence < 0.3


def test_time_stretch_length_and_pitch() -> None:
    t = np.arange(SR * 2) / SR
    tone = Audio(np.sin(2 * np.pi * 440 * t)[None].astype(np.float32) * 0.5, SR)
    out = time_stretch(tone, 0.8)
    assert out.num_samples == round(SR * 2 / 0.8)
    spec = np.abs(np.fft.rfft(out.samples[0, SR // 2 : SR // 2 + SR]))
    assert np.argmax(spec) == pytest.approx(440, abs=2)  # 1 s window: bin = Hz


def test_conform_corrects_drift_and_fits_length() -> None:
    n = 8 * SR
    fast = click_track(126.0, seconds=10.0, first_beat_s=0.05)
    out, report = conform_to_grid(fast, 120.0, n)
    assert out.num_samples == n
    assert report.stretched
    assert report.drift_percent == pytest.approx(5.0, abs=0.6)
    assert report.measured_bpm == pytest.approx(126.0, rel=0.01)
    after = estimate_tempo(out, around_bpm=120.0)
    assert after.bpm == pytest.approx(120.0, rel=0.01)
    # the first beat lands on the grid after phase alignment
    assert min(after.phase_s, 0.5 - after.phase_s) < 0.03
    info = report.as_info()
    assert set(info) >= {"tempo_drift_bpm", "tempo_drift_percent", "measured_bpm"}


def test_on_tempo_audio_is_not_stretched() -> None:
    out, report = conform_to_grid(click_track(120.0, seconds=9.0), 120.0, 8 * SR)
    assert not report.stretched
    assert abs(report.drift_percent) < 0.5
    assert out.num_samples == 8 * SR


def test_unclear_pulse_is_left_alone() -> None:
    noise = np.random.default_rng(2).standard_normal((2, SR * 3)).astype(np.float32) * 0.1
    out, report = conform_to_grid(Audio(noise, SR), 120.0, SR * 2, min_confidence=0.5)
    assert not report.stretched and report.phase_shift_s == 0.0
    np.testing.assert_array_equal(out.samples, noise[:, : SR * 2])


def test_fit_length_pads_and_trims() -> None:
    a = Audio(np.ones((2, 100), np.float32), SR)
    assert fit_length(a, 150).num_samples == 150
    assert fit_length(a, 150).samples[:, 100:].sum() == 0
    assert fit_length(a, 40).num_samples == 40


@pytest.mark.parametrize("target", [-14.0, -20.0])
def test_loudness_within_one_lu(target: float) -> None:
    rng = np.random.default_rng(3)
    audio = Audio(rng.standard_normal((2, SR * 3)).astype(np.float32) * 0.02, SR)
    out, gain = normalize_loudness(audio, target)
    assert abs(loudness_lufs(out) - target) < 1.0
    assert gain > 0


def test_loudness_respects_peak_ceiling() -> None:
    spiky = np.zeros((1, SR * 2), np.float32)
    spiky[0, ::4000] = 0.9
    out, _ = normalize_loudness(Audio(spiky, SR), -6.0)
    assert np.max(np.abs(out.samples)) <= 10 ** (-1 / 20) + 1e-6


def test_fades_silence_the_cut_points() -> None:
    out = apply_fades(Audio(np.ones((2, SR), np.float32), SR), 0.01, 0.01)
    assert out.samples[0, 0] < 0.01 and out.samples[0, -1] < 0.01
    assert out.samples[0, SR // 2] == 1.0
    assert np.all(np.diff(out.samples[0, :441]) >= 0)

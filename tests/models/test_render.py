"""FluidSynth rendering: exact lengths, placement in samples, levels, drums, SoundFont paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conditioning.timeline import TempoMap, TempoPoint, TimeSignature
from conditioning.types import Note
from models.render import FluidRenderer, Part, default_soundfont, level, render_part


@pytest.fixture(scope="module")
def renderer() -> FluidRenderer:
    return FluidRenderer()


@pytest.fixture
def changing_map() -> TempoMap:
    return TempoMap(
        [
            TempoPoint(0.0, 120.0),
            TempoPoint(6.0, 97.0),  # tempo change inside the span
            TempoPoint(8.0, 140.0, TimeSignature(7, 8)),
        ]
    )


def _onset(samples: np.ndarray, threshold: float = 1e-3) -> int:
    loud = np.flatnonzero(np.abs(samples).max(axis=0) > threshold)
    return int(loud[0]) if loud.size else -1


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_length_is_exact_span_with_tempo_changes(renderer: FluidRenderer, changing_map: TempoMap, sample_rate: int) -> None:
    notes = tuple(Note(60 + i, 2.0 + i, 3.0 + i, 100) for i in range(10))
    audio = renderer.render(Part(notes, 0), changing_map, 2.0, 13.5, sample_rate)
    assert audio.sample_rate == sample_rate
    assert audio.samples.shape == (2, changing_map.span_samples(2.0, 13.5, sample_rate))
    assert audio.samples.dtype == np.float32


def test_note_starts_at_its_sample_position(renderer: FluidRenderer, changing_map: TempoMap) -> None:
    sr = 48000
    audio = renderer.render(Part((Note(72, 7.0, 8.0, 110),), 0), changing_map, 4.0, 12.0, sr)
    expected = changing_map.beat_to_samples(7.0, sr) - changing_map.beat_to_samples(4.0, sr)
    # FluidSynth applies events on its 64-sample blocks; allow a block plus the attack
    assert expected <= _onset(audio.samples) <= expected + 64 + int(0.01 * sr)
    assert np.abs(audio.samples[:, : expected - 1]).max() == 0.0


def test_not_silent_and_never_clipping() -> None:
    loud = FluidRenderer(gain=3.0)
    tm = TempoMap.constant(120)
    cluster = tuple(Note(p, b, b + 0.5, 127) for b in np.arange(0, 8, 0.5) for p in range(48, 84, 3))
    audio = loud.render(Part(cluster, 0), tm, 0.0, 8.0, 48000)
    peak = float(np.abs(audio.samples).max())
    assert 0.5 < peak <= 0.99 + 1e-6


def test_quiet_part_is_raised_and_empty_part_is_silence(renderer: FluidRenderer) -> None:
    tm = TempoMap.constant(100)
    quiet = renderer.render(Part((Note(60, 0.0, 2.0, 3),), 0), tm, 0.0, 4.0, 44100)
    assert float(np.abs(quiet.samples).max()) >= 0.099
    empty = renderer.render(Part((), 0), tm, 0.0, 4.0, 44100)
    assert empty.num_samples == tm.span_samples(0.0, 4.0, 44100)
    assert not np.any(empty.samples)


def test_notes_outside_span_do_not_sound(renderer: FluidRenderer) -> None:
    tm = TempoMap.constant(120)
    before = renderer.render(Part((Note(60, 0.0, 8.0, 100),), 0), tm, 4.0, 8.0, 48000)
    assert not np.any(before.samples)


def test_drums_use_the_drum_channel(renderer: FluidRenderer) -> None:
    tm = TempoMap.constant(120)
    notes = tuple(Note(38, float(b), b + 0.25, 110) for b in range(4))
    drums = renderer.render(Part(notes, 0, drums=True), tm, 0.0, 4.0, 48000)
    piano = renderer.render(Part(notes, 0), tm, 0.0, 4.0, 48000)
    assert np.abs(drums.samples).max() > 0.05
    # a snare is noise, bright; a piano's D2 (73 Hz) is dark: compare spectral centroids
    def centroid(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x[0, :12000]))
        freqs = np.fft.rfftfreq(12000, 1 / 48000)
        return float((spectrum * freqs).sum() / spectrum.sum())

    assert centroid(drums.samples) > 3 * centroid(piano.samples)


def test_deterministic_across_pooled_synths(renderer: FluidRenderer) -> None:
    tm = TempoMap.constant(90)
    part = Part(tuple(Note(50 + 2 * i, i * 0.5, i * 0.5 + 1.5, 90) for i in range(12)), 4)
    a = renderer.render(part, tm, 0.0, 8.0, 48000)
    b = renderer.render(part, tm, 0.0, 8.0, 48000)
    many = renderer.render_many({"x": part, "y": part}, tm, 0.0, 8.0, 48000, workers=2)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.samples, many["x"].samples)
    np.testing.assert_array_equal(a.samples, many["y"].samples)


def test_tail_fades_to_zero_at_span_end(renderer: FluidRenderer) -> None:
    tm = TempoMap.constant(120)
    audio = renderer.render(Part((Note(48, 0.0, 16.0, 120),), 48), tm, 0.0, 4.0, 48000)
    assert abs(float(audio.samples[0, -1])) < 1e-3
    assert np.abs(audio.samples[:, -4800:-2400]).max() > 0.01


def test_soundfont_paths() -> None:
    assert default_soundfont().suffix == ".sf2"
    with pytest.raises(ValueError, match="SoundFont"):
        FluidRenderer("/nonexistent/kit.sf2")
    tm = TempoMap.constant(120)
    audio = render_part([Note(64, 0.0, 1.0, 100)], 73, tm, 0.0, 2.0, 22050, soundfont=default_soundfont())
    assert audio.num_samples == 22050
    assert np.abs(audio.samples).max() > 0.0


def test_level_only_touches_extremes() -> None:
    x = np.full((2, 10), 0.5, dtype=np.float32)
    np.testing.assert_array_equal(level(x, has_notes=True), x)
    assert float(level(x * 4, has_notes=True).max()) == pytest.approx(0.99)
    assert float(level(x * 0.01, has_notes=True).max()) == pytest.approx(0.1)
    assert not np.any(level(np.zeros((2, 10), np.float32), has_notes=False))


def test_every_lead_pitch_sounds_in_the_default_soundfont(renderer: FluidRenderer, tmp_path: Path) -> None:
    """Each lead instrument sounds over its whole range (SoundFont gaps are played by a stand-in)."""
    from models.arranger.lead import LEAD_RANGES
    from models.render import SOUNDFONT_GAPS

    tm = TempoMap.constant(240)

    def peak(r: FluidRenderer, program: int, pitch: int) -> float:
        audio = r.render(Part((Note(pitch, 0.0, 0.25),), program), tm, 0.0, 0.25, 8000)
        return float(np.abs(audio.samples).max())

    silent = [(prog, p) for prog, (lo, hi) in sorted(LEAD_RANGES.items()) for p in range(lo, hi + 1)
              if peak(renderer, prog, p) < 0.01]
    assert silent == []
    # the table holds real gaps: through another path (no stand-in) the program alone is silent there
    (tmp_path / "same.sf2").symlink_to(default_soundfont())
    plain = FluidRenderer(tmp_path / "same.sf2")
    for program, (gaps, stand_in) in SOUNDFONT_GAPS.items():
        for pitch in gaps:
            assert peak(plain, program, pitch) == 0.0
            assert peak(plain, stand_in, pitch) > 0.05

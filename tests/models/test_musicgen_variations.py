"""Variations of one section decoded as one batch: each take is its seed's batch-of-one take."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from conditioning.chords import chords_from_symbols  # noqa: E402
from conditioning.timeline import Section, TempoMap  # noqa: E402
from conditioning.types import Audio, SectionConditioning  # noqa: E402
from models.base import CancelToken  # noqa: E402
from models.musicgen.batch import continue_audio_batch  # noqa: E402
from models.musicgen.fast_decode import FastMusicGenDecoder  # noqa: E402
from models.musicgen.sampling import SamplingOptions, continue_audio  # noqa: E402
from models.registry import build_generator  # noqa: E402

# the generator tests run Demucs on every take (several seconds each): marked slow
pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]

STEMS = ("bass", "keys")


def make_cond(*, bars: tuple[int, int] = (1, 2), chords: bool = False) -> SectionConditioning:
    tm = TempoMap.constant(120)
    prog = chords_from_symbols([["C:maj", 0, 4], ["A:min", 4, 8]]) if chords else None
    return SectionConditioning(
        section=Section.from_bars("Verse", bars[0], bars[1], tm), tempo_map=tm, sample_rate=48000,
        prompt="funk, 120 bpm", stems=STEMS, chords=prog,
    )


@pytest.fixture()
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records the batch size of every fast decode."""
    seen: list[int] = []
    original = FastMusicGenDecoder.generate_codes

    def spy(self: Any, text_ids: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(int(text_ids.shape[0]))
        return original(self, text_ids, *args, **kwargs)

    monkeypatch.setattr(FastMusicGenDecoder, "generate_codes", spy)
    return seen


def assert_same_takes(takes: list[Any], singles: list[Any]) -> None:
    assert len(takes) == len(singles)
    for take, single in zip(takes, singles, strict=True):
        for s in STEMS:
            np.testing.assert_array_equal(take.stems[s].samples, single.stems[s].samples)
        assert take.info == single.info


@pytest.mark.slow  # Demucs splits every take
def test_variations_are_one_batch_and_each_is_its_seeds_take(batch_sizes: list[int]) -> None:
    gen = build_generator("musicgen-debug", window_s=1.0, context_s=0.3)
    cond = make_cond()  # 2 s + 0.5 s margin, windows of 1 s
    rng = np.random.default_rng(0)
    prev = Audio((0.1 * rng.standard_normal((2, 48000))).astype(np.float32), 48000)
    seen: list[float] = []
    takes = gen.generate_variations(cond, seeds=[3, 9, 4], previous_audio=prev, progress=lambda f, m: seen.append(f))
    assert batch_sizes and set(batch_sizes) == {3}  # every window decoded all three takes together
    assert seen == sorted(seen) and seen[-1] == 1.0
    batch_sizes.clear()
    singles = [gen.generate(cond, seed=s, previous_audio=prev) for s in (3, 9, 4)]
    assert set(batch_sizes) == {1}
    assert takes[0].info["windows"] == 4  # 125 frames, 35 new per window after 15 of context
    assert_same_takes(takes, singles)
    assert not np.array_equal(takes[0].stems["bass"].samples, takes[1].stems["bass"].samples)


@pytest.mark.slow  # Demucs splits every take
def test_melody_variations_with_chords_keep_their_seeds(batch_sizes: list[int]) -> None:
    gen = build_generator("musicgen-melody-debug", window_s=1.0, context_s=0.3)
    cond = make_cond(chords=True)
    takes = gen.generate_variations(cond, seeds=[5, 6])
    assert set(batch_sizes) == {2}
    assert_same_takes(takes, [gen.generate(cond, seed=s) for s in (5, 6)])


@pytest.mark.slow  # Demucs splits every take
def test_regenerated_variations_keep_their_seeds_and_the_base_outside(batch_sizes: list[int]) -> None:
    gen = build_generator("musicgen-debug")
    cond = make_cond()
    base = gen.generate(cond, seed=1)
    batch_sizes.clear()
    takes = gen.regenerate_variations(cond, base=base, start_beat=2.0, end_beat=4.0, seeds=[7, 8])
    assert set(batch_sizes) == {2}
    singles = [gen.regenerate(cond, base=base, start_beat=2.0, end_beat=4.0, seed=s) for s in (7, 8)]
    assert_same_takes(takes, singles)
    a = cond.tempo_map.beat_to_samples(2.0, 48000)
    np.testing.assert_array_equal(takes[1].stems["keys"].samples[:, :a], base.stems["keys"].samples[:, :a])


@pytest.mark.slow  # Demucs splits every take
def test_stock_decoder_makes_variations_one_by_one(batch_sizes: list[int]) -> None:
    gen = build_generator("musicgen-debug", decoder="stock")
    takes = gen.generate_variations(make_cond(), seeds=[2, 3])
    assert batch_sizes == [] and len(takes) == 2


def test_no_seeds_is_refused() -> None:
    gen = build_generator("arranger")
    with pytest.raises(ValueError, match="at least one seed"):
        gen.generate_variations(make_cond(), seeds=[])


def test_default_variations_are_one_generate_per_seed() -> None:
    gen = build_generator("arranger")
    cond = make_cond()
    seen: list[float] = []
    takes = gen.generate_variations(cond, seeds=[1, 2], progress=lambda f, m: seen.append(f))
    for take, seed in zip(takes, (1, 2), strict=True):
        single = gen.generate(cond, seed=seed)
        for s in STEMS:
            np.testing.assert_array_equal(take.stems[s].samples, single.stems[s].samples)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_batched_windows_match_per_seed_continuation_with_short_stock_windows() -> None:
    """No context (each window starts fresh) and a last window of 2 frames (the stock loop)."""
    gen = build_generator("musicgen-debug")
    lm = gen.lm
    options = SamplingOptions(window_s=0.5, context_s=0.0)
    duration = (25 + 2) / lm.frame_rate  # one 25-frame window, then 2 frames

    def chroma(a: float, b: float, p: Any) -> None:
        return None

    made, windows = continue_audio_batch(
        lm, "funk", duration, seeds=[11, 12], start_s=0.0, prompt=None, chroma_for=chroma,
        options=options, cancel=CancelToken(), progress=lambda f, m: None,
    )
    assert windows == 2
    for audio, seed in zip(made, (11, 12), strict=True):
        single, _ = continue_audio(lm, "funk", duration, start_s=0.0, prompt=None, chroma_for=chroma,
                                   options=options, seed=seed, cancel=CancelToken(), progress=lambda f, m: None)
        assert audio.shape == single.shape == (1, 27 * lm.hop)
        np.testing.assert_array_equal(audio, single)


def test_batched_variations_cancel_between_steps() -> None:
    from models.base import GenerationCancelled

    gen = build_generator("musicgen-debug")
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if fraction > 0.3:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        continue_audio_batch(gen.lm, "funk", 2.0, seeds=[1, 2], start_s=0.0, prompt=None,
                             chroma_for=lambda a, b, p: None, options=SamplingOptions(window_s=1.0, context_s=0.3),
                             cancel=token, progress=progress)
    assert seen == sorted(seen) and 0.3 < seen[-1] < 0.5

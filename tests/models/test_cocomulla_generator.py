"""Coco-Mulla generators through the debug model: content reaches the music, windows, regeneration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("demucs")
pytest.importorskip("fluidsynth")

from conditioning.chords import chords_from_symbols  # noqa: E402
from conditioning.timeline import Section, TempoMap  # noqa: E402
from conditioning.types import DrumHit, DrumPattern, Note, SectionConditioning  # noqa: E402
from models.base import ModelUnavailableError  # noqa: E402
from models.registry import build_generator, weights_status  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]

STEMS = ("drums", "bass", "keys", "lead")
TM = TempoMap.constant(120)



def loudness_codes(audio: np.ndarray) -> np.ndarray:
    """Codes from each 20-ms frame's loudness (4 codebooks).

    The debug model's random EnCodec maps almost every sound to one code, so drum plumbing
    tests swap in this deterministic stand-in that hears the difference between patterns.
    """
    hop = 640
    frames = -(-audio.shape[0] // hop)
    padded = np.zeros(frames * hop, dtype=np.float32)
    padded[: audio.shape[0]] = audio
    rms = np.sqrt((padded.reshape(frames, hop) ** 2).mean(axis=1))
    level = np.clip((rms * 4000).astype(np.int64), 0, 255)
    return np.stack([level + 256 * k for k in range(4)])


@pytest.fixture(scope="module")
def gen() -> Any:
    made = build_generator("cocomulla-debug")
    made._encode = loudness_codes
    return made


def drums(kick_every: float = 1.0, beats: float = 64) -> DrumPattern:
    notes = tuple(Note(36, b, b + 0.25) for b in np.arange(0, beats, kick_every)) + tuple(
        Note(38, b, b + 0.25) for b in np.arange(1, beats, 2.0)
    )
    notes = tuple(sorted(notes, key=lambda n: n.start_beat))
    return DrumPattern(tuple(DrumHit(n.pitch, "kick" if n.pitch == 36 else "snare", n.start_beat) for n in notes), notes)


def cond(*, bars: tuple[int, int] = (1, 2), symbols: list[list[Any]] | None = None,
         pattern: DrumPattern | None = None, sr: int = 48000) -> SectionConditioning:
    prog = chords_from_symbols(symbols) if symbols is not None else None
    return SectionConditioning(
        section=Section.from_bars("Verse", bars[0], bars[1], TM), tempo_map=TM, sample_rate=sr,
        prompt="funk", stems=STEMS, chords=prog, drums=pattern,
    )


C_AM = [["C:maj", 0, 4], ["A:min", 4, 8]]
F_G = [["F:maj", 0, 4], ["G:maj", 4, 8]]


def same(a: Any, b: Any) -> bool:
    return all(np.array_equal(a.stems[s].samples, b.stems[s].samples) for s in STEMS)


def test_lengths_and_info(gen: Any) -> None:
    c = cond(symbols=C_AM, pattern=drums())
    out = gen.generate(c, seed=1)
    assert set(out.stems) == set(STEMS)
    for stem in out.stems.values():
        assert stem.sample_rate == 48000 and stem.samples.shape == (2, c.length_samples)
        assert np.isfinite(stem.samples).all()
    assert out.info["backend"] == "cocomulla"
    assert out.info["content"] == {"chords": True, "piano_roll": "from chord symbols", "drums": True}


def test_same_inputs_same_audio_and_content_changes_it(gen: Any) -> None:
    base = gen.generate(cond(symbols=C_AM, pattern=drums()), seed=3)
    assert same(base, gen.generate(cond(symbols=C_AM, pattern=drums()), seed=3))
    assert not same(base, gen.generate(cond(symbols=F_G, pattern=drums()), seed=3))
    assert not same(base, gen.generate(cond(symbols=C_AM, pattern=drums(kick_every=0.5)), seed=3))
    assert not same(base, gen.generate(cond(symbols=C_AM, pattern=None), seed=3))


def test_window_conditions_come_from_the_material(gen: Any) -> None:
    from models.cocomulla.features import content_frames

    kwargs = {"frame_rate": 50.0, "codebooks": 4, "render_drums": None, "encode": None, "sample_rate": 32000}
    bare = content_frames(cond(), 0.0, 101, **kwargs)
    assert bare.chords[:, 36].all() and not bare.piano_present.any() and not bare.drums_present.any()
    c = cond(symbols=C_AM, pattern=drums())
    with_drums = content_frames(
        c, 0.0, 101, **{**kwargs, "render_drums": lambda s, n, sr: gen._render_drums(c, s, n, sr), "encode": loudness_codes,
                        "sample_rate": gen.lm.sample_rate},
    )
    assert with_drums.drums_present.all() and with_drums.piano_present.all()
    assert with_drums.chords[10, 0] == 1 and with_drums.chords[10, 12] == 1  # C root, root position
    assert with_drums.chords[100, 9] == 1  # 2 s = beat 4: A minor
    other = content_frames(
        cond(pattern=drums(kick_every=0.5)), 0.0, 101,
        **{**kwargs, "render_drums": lambda s, n, sr: gen._render_drums(cond(pattern=drums(kick_every=0.5)), s, n, sr),
           "encode": loudness_codes, "sample_rate": gen.lm.sample_rate},
    )
    assert not np.array_equal(with_drums.drum_codes, other.drum_codes)
    assert not other.piano_present.any()  # no chords: the piano roll is masked, not made up


def test_regeneration_leaves_outside_untouched(gen: Any) -> None:
    c = cond(bars=(1, 3), symbols=C_AM, pattern=drums())
    base = gen.generate(c, seed=1)
    new = gen.regenerate(c, base=base, start_beat=2.0, end_beat=6.0, seed=9)
    a, b = TM.beat_to_samples(2.0, 48000), TM.beat_to_samples(6.0, 48000)
    for s in STEMS:
        assert new.stems[s].samples.shape == base.stems[s].samples.shape
        assert np.array_equal(new.stems[s].samples[:, :a], base.stems[s].samples[:, :a])
        assert np.array_equal(new.stems[s].samples[:, b:], base.stems[s].samples[:, b:])
    assert not same(new, base)
    assert new.info["regenerated"] is True


def test_adapter_file_loads_into_the_generator(gen: Any, tmp_path: Path) -> None:
    from models.cocomulla.checkpoint import save_checkpoint

    path = save_checkpoint(gen.adapter, tmp_path / "mine.pth")
    loaded = build_generator("cocomulla-debug", adapter=str(path))
    loaded._encode = loudness_codes
    assert loaded.adapter_source == str(path)
    c = cond(symbols=C_AM, pattern=drums())
    assert same(gen.generate(c, seed=4), loaded.generate(c, seed=4))
    other = build_generator("cocomulla-debug", adapter_seed=7)
    other._encode = loudness_codes
    assert not same(gen.generate(c, seed=4), other.generate(c, seed=4))


def test_bad_options_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEMBRIDGE_COCOMULLA_ADAPTER", raising=False)
    with pytest.raises(ValueError, match="window_s=30"):
        build_generator("cocomulla-debug", window_s=30.0)
    with pytest.raises(ModelUnavailableError, match="--adapter FILE"):
        build_generator("cocomulla")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        build_generator("cocomulla", adapter=str(tmp_path / "missing.pth"))
    from models.cocomulla.checkpoint import save_checkpoint
    from models.cocomulla.generator import CocoMullaAdapter

    wide = CocoMullaAdapter(num_layers=2, start_layer=0, hidden_size=64)
    path = save_checkpoint(wide, tmp_path / "wide.pth")
    with pytest.raises(ModelUnavailableError, match="does not fit the base model"):
        build_generator("cocomulla-debug", adapter=str(path))


def test_models_listing_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STEMBRIDGE_COCOMULLA_ADAPTER", raising=False)
    assert weights_status("cocomulla-debug")[0]
    present, detail = weights_status("cocomulla")
    if not present:
        assert "adapter: none given" in detail and "base:" in detail
    file = tmp_path / "a.pth"
    file.write_bytes(b"x")
    monkeypatch.setenv("STEMBRIDGE_COCOMULLA_ADAPTER", str(file))
    assert f"adapter: {file}" in weights_status("cocomulla")[1]


@pytest.mark.slow
def test_45_s_section_in_windows_has_exact_length() -> None:
    long = build_generator("cocomulla-debug", window_s=20.0, context_s=5.0)
    c = cond(bars=(1, 23), symbols=C_AM * 1, pattern=drums(beats=96))  # 22 bars of 4/4 at 120 = 44 s
    c = SectionConditioning(
        section=Section.from_beats("Long", 0.0, 90.0, TM), tempo_map=TM, sample_rate=44100, prompt="funk",
        stems=STEMS, chords=c.chords, drums=c.drums,
    )
    t = time.perf_counter()
    out = long.generate(c, seed=2)
    assert c.length_samples == 45 * 44100
    for stem in out.stems.values():
        assert stem.samples.shape == (2, 45 * 44100)
    assert out.info["windows"] == 3  # 20 s, then 15 s + 5 s context twice
    assert time.perf_counter() - t < 300


def played_cond(notes: tuple[Note, ...], pedal: tuple[tuple[float, float], ...] = ()) -> SectionConditioning:
    import dataclasses

    from conditioning.types import ChordNotes

    base = cond(symbols=C_AM)
    assert base.chords is not None
    return dataclasses.replace(base, chords=dataclasses.replace(base.chords, notes=ChordNotes.played(notes, pedal)))


def test_piano_roll_comes_from_the_chord_notes_with_sustain(gen: Any) -> None:
    from conditioning.piano_roll import notes_piano_roll
    from models.cocomulla.features import content_frames

    kwargs = {"frame_rate": 50.0, "codebooks": 4, "render_drums": None, "encode": None, "sample_rate": 32000}
    notes = (Note(52, 0.0, 0.5), Note(67, 1.0, 2.0))  # known from beat 0 to beat 3 (pedal up)
    frames = content_frames(played_cond(notes, ((0.25, 3.0),)), 0.0, 101, **kwargs)
    want = notes_piano_roll(notes, TM, 0.0, 4.0, 50.0, 101, pedal_spans=((0.25, 3.0),))
    known = frames.piano_present
    assert known[:74].all() and not known[76:].any()  # beat 3 = 1.5 s = frame 75
    assert np.array_equal(frames.piano_roll[known], want[known])
    assert frames.piano_roll[0:75, 52].all()  # E3 rings under the pedal to beat 3
    assert not frames.piano_roll[:, 36].any()  # not the C2 bass of the symbol voicing
    assert not frames.piano_roll[~known].any()  # beyond what is known: masked, not silent


def test_chord_notes_change_the_music_and_the_info_says_so(gen: Any) -> None:
    a = gen.generate(played_cond((Note(60, 0.0, 8.0), Note(64, 0.0, 8.0))), seed=2)
    # the random debug adapter needs a large change to flip sampled codes: a 12-note cluster
    b = gen.generate(played_cond(tuple(Note(p, 0.0, 8.0) for p in range(40, 100, 5))), seed=2)
    assert a.info["content"]["piano_roll"] == "from the chord notes"
    assert not same(a, b)  # same chord symbols, different notes
    assert same(a, gen.generate(played_cond((Note(60, 0.0, 8.0), Note(64, 0.0, 8.0))), seed=2))


def test_takes_decode_as_one_batch_with_each_takes_seed(gen: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.cocomulla.fast import CocoMullaFastDecoder

    decodes: list[int] = []
    real = CocoMullaFastDecoder.generate_codes

    def spy(self: Any, text_ids: Any, *args: Any, **kwargs: Any) -> Any:
        decodes.append(int(text_ids.shape[0]))
        return real(self, text_ids, *args, **kwargs)

    monkeypatch.setattr(CocoMullaFastDecoder, "generate_codes", spy)
    c = cond(symbols=C_AM, pattern=drums())
    takes = gen.generate_variations(c, seeds=[5, 6])
    assert decodes and set(decodes) == {2}  # every window of both takes in one decode
    decodes.clear()
    for seed, take in zip((5, 6), takes, strict=True):
        assert same(take, gen.generate(c, seed=seed))
        assert take.info["backend"] == "cocomulla" and take.info["content"]["drums"] is True
    assert set(decodes) == {1}
    assert not same(takes[0], takes[1])


def test_stock_decoder_is_honoured_and_gives_the_fast_audio(gen: Any) -> None:
    stock = build_generator("cocomulla-debug", decoder="stock")
    stock._encode = loudness_codes
    c = cond(symbols=C_AM, pattern=drums())
    assert same(stock.generate(c, seed=8), gen.generate(c, seed=8))
    assert len(stock.generate_variations(c, seeds=[8, 9])) == 2  # one by one on the stock loop

"""MusicGen generators through the debug models: lengths, conditioning, continuity, regeneration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from conditioning.chords import chords_from_symbols  # noqa: E402
from conditioning.timeline import Section, TempoMap  # noqa: E402
from conditioning.types import Audio, Melody, Note, SectionConditioning  # noqa: E402
from models.base import ModelUnavailableError  # noqa: E402
from models.registry import build_generator, spec_for, weights_status  # noqa: E402

# debug-model generation: about 40 s for this module on one CPU, so the fast loop leaves it out
pytestmark = [pytest.mark.neural, pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

STEMS = ("drums", "bass", "keys", "lead")



@pytest.fixture(scope="module")
def text_gen() -> Any:
    return build_generator("musicgen-debug")


@pytest.fixture(scope="module")
def melody_gen() -> Any:
    return build_generator("musicgen-melody-debug")


def make_cond(
    *, bars: tuple[int, int] = (1, 2), bpm: float = 120, sr: int = 48000, prompt: str = "funk, 120 bpm",
    melody: Melody | None = None, chords: bool = False,
) -> SectionConditioning:
    tm = TempoMap.constant(bpm)
    prog = chords_from_symbols([["C:maj", 0, 4], ["A:min", 4, 8], ["F:maj", 8, 12]]) if chords else None
    return SectionConditioning(
        section=Section.from_bars("Verse", bars[0], bars[1], tm), tempo_map=tm, sample_rate=sr,
        prompt=prompt, stems=STEMS, melody=melody, chords=prog,
    )


def same(a: Any, b: Any) -> bool:
    return all(np.array_equal(a.stems[s].samples, b.stems[s].samples) for s in STEMS)


def test_registry_names() -> None:
    for name in ("musicgen-small", "musicgen-medium", "musicgen-large", "musicgen-melody",
                 "musicgen-debug", "musicgen-melody-debug"):
        spec = spec_for(name)
        assert "torch" in spec.requires and "transformers" in spec.requires
    assert weights_status("musicgen-debug")[0]


@pytest.mark.parametrize("sr", [48000, 44100])
def test_lengths_and_sample_rates(text_gen: Any, sr: int) -> None:
    cond = make_cond(sr=sr, bpm=100)
    out = text_gen.generate(cond, seed=1)
    assert set(out.stems) == set(STEMS)
    for audio in out.stems.values():
        assert audio.sample_rate == sr and audio.num_samples == cond.length_samples
        assert np.all(np.isfinite(audio.samples))
    assert "tempo_drift_percent" in out.info and out.info["target_bpm"] == pytest.approx(100)
    assert out.info["stem_sources"]["lead"] == "vocals"


def test_same_seed_same_audio_and_seed_matters(text_gen: Any) -> None:
    cond = make_cond()
    a, b = text_gen.generate(cond, seed=3), text_gen.generate(cond, seed=3)
    assert same(a, b)
    assert not same(a, text_gen.generate(cond, seed=4))


def test_text_prompt_reaches_the_model(text_gen: Any) -> None:
    a = text_gen.generate(make_cond(prompt="lo-fi funk, 120 bpm"), seed=5)
    b = text_gen.generate(make_cond(prompt="dark techno, 120 bpm"), seed=5)
    assert not same(a, b)


def test_melody_and_chords_reach_the_model(melody_gen: Any) -> None:
    up = Melody(tuple(Note(60 + 2 * i, i, i + 1) for i in range(4)))
    down = Melody(tuple(Note(72 - 3 * i, i, i + 1) for i in range(4)))
    a = melody_gen.generate(make_cond(melody=up), seed=2)
    assert same(a, melody_gen.generate(make_cond(melody=up), seed=2))
    assert not same(a, melody_gen.generate(make_cond(melody=down), seed=2))
    assert not same(a, melody_gen.generate(make_cond(melody=up, chords=True), seed=2))


def test_long_section_uses_windowed_continuation(text_gen: Any) -> None:
    cond = make_cond(bars=(1, 4))  # 6 s with a 2 s window
    out = text_gen.generate(cond, seed=1)
    assert out.info["windows"] >= 4
    assert all(a.num_samples == cond.length_samples for a in out.stems.values())


def test_section_continues_from_previous_audio(text_gen: Any) -> None:
    cond = make_cond(bars=(2, 3))
    rng = np.random.default_rng(0)
    prev = Audio(rng.standard_normal((2, 48000)).astype(np.float32) * 0.1, 48000)
    fresh = text_gen.generate(cond, seed=1)
    cont = text_gen.generate(cond, seed=1, previous_audio=prev)
    assert cont.info["continued_from_s"] == pytest.approx(0.5, abs=0.03)
    assert fresh.info["continued_from_s"] == 0.0
    assert not same(fresh, cont)


def test_window_output_starts_with_the_prompt(text_gen: Any) -> None:
    """The prompt's codes come first: the decoded window begins with the decoded prompt."""
    from models.base import CancelToken
    from models.musicgen.sampling import SamplingOptions, encode_prompt, generate_window

    lm = text_gen.lm
    rng = np.random.default_rng(1)
    prompt = (rng.standard_normal((1, lm.hop * 20)) * 0.1).astype(np.float32)
    torch.manual_seed(0)
    out = generate_window(
        lm, "funk", 10, prompt=prompt, chroma=None, options=SamplingOptions(window_s=2, context_s=0.5),
        cancel=CancelToken(), on_step=lambda step: None,
    )
    assert out.shape[1] == 30 * lm.hop
    with torch.inference_mode():
        codes = encode_prompt(lm, prompt)
        ref = lm.model.audio_encoder.decode(codes[None, None], [None]).audio_values[0].numpy()
    head = slice(0, 15 * lm.hop)  # away from the join, where later frames can reach back
    corr = np.corrcoef(out[0, head], ref[0, head])[0, 1]
    assert corr > 0.95


def test_regeneration_keeps_outside_and_has_no_click(text_gen: Any) -> None:
    cond = make_cond(bars=(1, 3))  # beats 0-8
    base = text_gen.generate(cond, seed=1)
    new = text_gen.regenerate(cond, base=base, start_beat=2.0, end_beat=6.0, seed=9)
    a = cond.tempo_map.beat_to_samples(2.0, 48000)
    b = cond.tempo_map.beat_to_samples(6.0, 48000)
    for s in STEMS:
        old, fresh = base.stems[s].samples, new.stems[s].samples
        np.testing.assert_array_equal(fresh[:, :a], old[:, :a])
        np.testing.assert_array_equal(fresh[:, b:], old[:, b:])
        assert not np.array_equal(fresh[:, a:b], old[:, a:b])
        jump = np.abs(np.diff(fresh, axis=1))
        typical = max(np.abs(np.diff(old, axis=1)).max(), np.abs(np.diff(fresh[:, a + 2000 : b - 2000], axis=1)).max())
        for edge in (a, b):
            assert jump[:, edge - 200 : edge + 200].max() <= 1.5 * typical + 1e-6
    assert new.info["regenerated"] is True


def test_regeneration_at_section_start_continues_from_previous_section(text_gen: Any) -> None:
    cond = make_cond(bars=(1, 3))
    base = text_gen.generate(cond, seed=1)
    rng = np.random.default_rng(3)
    before = Audio((0.3 * rng.standard_normal((2, 48000))).astype(np.float32), 48000)
    alone = text_gen.regenerate(cond, base=base, start_beat=0.0, end_beat=4.0, seed=9)
    after_prev = text_gen.regenerate(cond, base=base, start_beat=0.0, end_beat=4.0, seed=9, previous_audio=before)
    assert not same(alone, after_prev), "the previous section's audio did not reach the model"
    b = cond.tempo_map.beat_to_samples(4.0, 48000)
    for s in STEMS:
        np.testing.assert_array_equal(after_prev.stems[s].samples[:, b:], base.stems[s].samples[:, b:])


def test_model_path_loads_saved_model(text_gen: Any, tmp_path: Path) -> None:
    text_gen.lm.model.save_pretrained(tmp_path)
    text_gen.lm.tokenizer.save_pretrained(tmp_path)
    loaded = build_generator("musicgen-small", model_path=str(tmp_path), device="cpu", separator="demucs-debug",
                             window_s=2.0, context_s=0.5, margin_s=0.25)
    assert loaded.lm.source == str(tmp_path)  # type: ignore[attr-defined]
    cond = make_cond()
    assert same(loaded.generate(cond, seed=1), text_gen.generate(cond, seed=1))


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))


def test_missing_weights_clear_message(offline: None, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="huggingface-cli download facebook/no-such-musicgen"):
        build_generator("musicgen-small", model="facebook/no-such-musicgen", device="cpu")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match="save_pretrained"):
        build_generator("musicgen-small", model_path=str(empty), device="cpu")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        build_generator("musicgen-melody", model_path=str(tmp_path / "missing"), device="cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelUnavailableError, match=r"config\.json.*not a valid JSON.*save_pretrained"):
        build_generator("musicgen-small", model_path=str(broken), device="cpu")
    from models.musicgen.loading import weights_present

    present, detail = weights_present("facebook/no-such-musicgen")
    assert (present, detail) == (False, "facebook/no-such-musicgen is not downloaded")


@pytest.fixture()
def network_attempts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """An empty HuggingFace cache, hub online mode, and every socket connection refused and recorded."""
    import socket

    import huggingface_hub.constants as hub_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_missing_weights_fail_at_once_without_the_hub(
    network_attempts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING")
    with pytest.raises(ModelUnavailableError) as info:
        build_generator("musicgen-small", device="cpu")
    message = str(info.value)
    assert network_attempts == []
    assert message.count("huggingface-cli download facebook/musicgen-small") == 1
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []


def _fake_hub_cache(cache: Path, repo: str, files: dict[str, bytes] | Path) -> Path:
    """Lay files out as huggingface_hub's cache does: refs/main names a snapshot folder."""
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("0123abcd")
    if isinstance(files, Path):
        for f in files.iterdir():
            (snapshot / f.name).write_bytes(f.read_bytes())
    else:
        for name, data in files.items():
            (snapshot / name).write_bytes(data)
    return snapshot


def test_cached_weights_load_without_the_hub(text_gen: Any, network_attempts: list[str], tmp_path: Path) -> None:
    import huggingface_hub.constants as hub_constants

    saved = tmp_path / "saved"
    text_gen.lm.model.save_pretrained(saved)
    text_gen.lm.tokenizer.save_pretrained(saved)
    snapshot = _fake_hub_cache(Path(hub_constants.HF_HUB_CACHE), "facebook/musicgen-small", saved)
    from models.musicgen.loading import load_pretrained, weights_present

    assert weights_present("facebook/musicgen-small") == (True, f"facebook/musicgen-small in the HuggingFace cache ({snapshot})")
    loaded = load_pretrained("facebook/musicgen-small", device="cpu")
    assert loaded.source == "facebook/musicgen-small" and loaded.sample_rate == text_gen.lm.sample_rate
    assert network_attempts == []


def test_htdemucs_missing_or_partial_fails_without_the_hub(network_attempts: list[str]) -> None:
    import huggingface_hub.constants as hub_constants

    from models.separation.demucs import DOWNLOAD_COMMAND, DemucsSeparator, htdemucs_weights

    with pytest.raises(ModelUnavailableError, match="not downloaded") as info:
        DemucsSeparator("htdemucs", device="cpu")
    assert str(info.value).count(DOWNLOAD_COMMAND) == 1
    _fake_hub_cache(Path(hub_constants.HF_HUB_CACHE), "adefossez/HTDemucs", {"htdemucs.yaml": b"models: ['955717e8']\n"})
    present, detail = htdemucs_weights()
    assert (present, detail) == (False, "Demucs htdemucs (adefossez/HTDemucs) is only partly downloaded (955717e8 is missing)")
    with pytest.raises(ModelUnavailableError, match="partly downloaded"):
        DemucsSeparator("htdemucs", device="cpu")
    assert network_attempts == []


def test_cancel_stops_generation(text_gen: Any) -> None:
    from models.base import CancelToken, GenerationCancelled

    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.1:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        text_gen.generate(make_cond(bars=(1, 4)), seed=1, progress=progress, cancel=token)

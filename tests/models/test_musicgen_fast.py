"""The fast MusicGen decoder gives the codes and audio of stock transformers ``generate()``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from models.base import CancelToken, GenerationCancelled  # noqa: E402
from models.musicgen.fast_decode import FastMusicGenDecoder, graph_capture_available  # noqa: E402
from models.musicgen.loading import LoadedMusicGen, load_debug  # noqa: E402
from models.musicgen.sampling import SamplingOptions, continue_audio, encode_prompt  # noqa: E402
from models.musicgen.token_picking import PickOptions, pick  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]



@pytest.fixture(scope="module")
def plain() -> LoadedMusicGen:
    return load_debug(melody=False, device="cpu")


@pytest.fixture(scope="module")
def melody() -> LoadedMusicGen:
    return load_debug(melody=True, device="cpu")


def text_inputs(lm: LoadedMusicGen, texts: list[str]) -> dict[str, Any]:
    return dict(lm.tokenizer(texts, return_tensors="pt", padding=True))


def stock_codes(lm: LoadedMusicGen, seed: int, **kwargs: Any) -> Any:
    """Codes stock generate() hands to EnCodec (recorded at the decode call)."""
    seen: list[Any] = []
    enc = lm.model.audio_encoder
    original = enc.decode

    def record(codes: Any, *args: Any, **kw: Any) -> Any:
        seen.append(codes[0].clone())
        return original(codes, *args, **kw)

    enc.decode = record
    try:
        torch.manual_seed(seed)
        with torch.inference_mode():
            lm.model.generate(**kwargs)
    finally:
        del enc.decode
    return seen[0]


def fast_codes(lm: LoadedMusicGen, seed: int, inputs: dict[str, Any], steps: int, options: PickOptions,
               mode: str | None = None, **kwargs: Any) -> Any:
    torch.manual_seed(seed)
    dec = FastMusicGenDecoder(lm.model, mode=mode)
    return dec.generate_codes(inputs["input_ids"], inputs["attention_mask"], max_new_tokens=steps,
                              options=options, **kwargs)


def test_greedy_matches_stock_for_500_steps(plain: LoadedMusicGen) -> None:
    inputs = text_inputs(plain, ["lo-fi funk with warm rhodes"])
    ref = stock_codes(plain, 0, **inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=500)
    got = fast_codes(plain, 0, inputs, 500, PickOptions(guidance_scale=3.0, greedy=True))
    assert got.shape == ref.shape == (1, 4, 497)
    assert torch.equal(got, ref)


def test_greedy_melody_with_chroma_matches_stock(melody: LoadedMusicGen) -> None:
    inputs = text_inputs(melody, ["bossa nova guitar"])
    chroma = torch.zeros(1, 40, 12)
    chroma[:, :20, 0] = 1
    chroma[:, 20:, 7] = 1
    ref = stock_codes(melody, 0, **inputs, input_features=chroma, do_sample=False, guidance_scale=3.0,
                      max_new_tokens=200)
    got = fast_codes(melody, 0, inputs, 200, PickOptions(guidance_scale=3.0, greedy=True), chroma=chroma)
    assert torch.equal(got, ref)


@pytest.mark.parametrize(
    ("guidance", "top_k", "temperature"), [(3.0, 250, 1.0), (1.0, 250, 1.0), (3.0, 20, 0.7), (2.0, 0, 1.3)]
)
def test_sampling_with_a_seed_matches_stock(plain: LoadedMusicGen, guidance: float, top_k: int,
                                            temperature: float) -> None:
    inputs = text_inputs(plain, ["dub techno chords"])
    ref = stock_codes(plain, 7, **inputs, do_sample=True, guidance_scale=guidance, top_k=top_k,
                      temperature=temperature, max_new_tokens=120)
    got = fast_codes(plain, 7, inputs, 120, PickOptions(guidance_scale=guidance, top_k=top_k,
                                                        temperature=temperature))
    assert torch.equal(got, ref)
    other = fast_codes(plain, 8, inputs, 120, PickOptions(guidance_scale=guidance, top_k=top_k,
                                                          temperature=temperature))
    assert not torch.equal(got, other)  # the seed is used


def test_sampling_melody_matches_stock(melody: LoadedMusicGen) -> None:
    inputs = text_inputs(melody, ["bossa nova guitar"])
    ref = stock_codes(melody, 3, **inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=100)
    got = fast_codes(melody, 3, inputs, 100, PickOptions())
    assert torch.equal(got, ref)


def test_prompt_continuation_matches_stock(plain: LoadedMusicGen) -> None:
    rng = np.random.default_rng(4)
    audio = (rng.standard_normal((1, plain.hop * 30)) * 0.1).astype(np.float32)
    prompt = encode_prompt(plain, audio)
    inputs = text_inputs(plain, ["funk"])
    ref = stock_codes(plain, 5, **inputs, decoder_input_ids=prompt, do_sample=True, guidance_scale=3.0,
                      top_k=250, max_new_tokens=60)
    got = fast_codes(plain, 5, inputs, 60, PickOptions(), prompt_codes=prompt)
    assert got.shape == ref.shape == (1, 4, 30 + 57)
    assert torch.equal(got[..., :30], prompt[None])  # the prompt's codes come first
    assert torch.equal(got, ref)


def test_batch_of_two_texts_matches_stock(plain: LoadedMusicGen) -> None:
    """Several sections or variations decode as one batch (padded texts included)."""
    inputs = text_inputs(plain, ["funk", "slow ambient pads with a long reverb tail"])
    assert int(inputs["attention_mask"].sum(dim=1).min()) < inputs["attention_mask"].shape[1]
    ref = stock_codes(plain, 2, **inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=80)
    got = fast_codes(plain, 2, inputs, 80, PickOptions())
    assert got.shape == (2, 4, 77)
    assert torch.equal(got, ref)


def test_static_step_gives_the_eager_codes(plain: LoadedMusicGen, melody: LoadedMusicGen) -> None:
    """The capturable step (device position, whole-cache mask) is what the CUDA graph replays."""
    for lm in (plain, melody):
        inputs = text_inputs(lm, ["house beat"])
        eager = fast_codes(lm, 1, inputs, 150, PickOptions(greedy=True), mode="eager")
        static = fast_codes(lm, 1, inputs, 150, PickOptions(greedy=True), mode="static")
        assert torch.equal(eager, static)


@pytest.mark.slow  # torch.compile's first compile of the debug model's step: ~30 s on two cores
def test_compiled_step_gives_the_stock_codes(plain: LoadedMusicGen) -> None:
    """The torch.compile'd step (picking eager) samples what stock samples, and a second call of
    the same decoder reuses the compiled step."""
    inputs = text_inputs(plain, ["house beat"])
    ref = stock_codes(plain, 5, **inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=60)
    dec = FastMusicGenDecoder(plain.model, mode="compiled")
    for _ in range(2):
        torch.manual_seed(5)
        got = dec.generate_codes(inputs["input_ids"], inputs["attention_mask"], max_new_tokens=60,
                                 options=PickOptions())
        assert torch.equal(got, ref)
    assert dec._compiled_forward is not None


def test_graph_mode_is_refused_without_cuda(plain: LoadedMusicGen) -> None:
    able, why = graph_capture_available("cpu")
    assert not able and "CUDA" in why
    with pytest.raises(ValueError, match="CUDA"):
        FastMusicGenDecoder(plain.model, mode="graph")
    with pytest.raises(ValueError, match="eager, static, graph"):
        FastMusicGenDecoder(plain.model, mode="turbo")
    assert FastMusicGenDecoder(plain.model).mode == "eager"


def test_too_few_steps_and_wrong_prompt_rows_are_refused(plain: LoadedMusicGen) -> None:
    inputs = text_inputs(plain, ["funk"])
    with pytest.raises(ValueError, match="delay pattern"):
        fast_codes(plain, 0, inputs, 2, PickOptions())
    with pytest.raises(ValueError, match="4 codebooks need 4"):
        fast_codes(plain, 0, inputs, 10, PickOptions(), prompt_codes=torch.zeros(3, 5, dtype=torch.long))


def test_pick_matches_stock_processors() -> None:
    from transformers import (
        ClassifierFreeGuidanceLogitsProcessor,
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
    )

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 512, generator=gen) * 4
    procs = LogitsProcessorList([ClassifierFreeGuidanceLogitsProcessor(2.5), TemperatureLogitsWarper(0.8),
                                 TopKLogitsWarper(30)])
    scores = procs(torch.zeros(8, 1, dtype=torch.long), logits.clone())
    torch.manual_seed(11)
    ref = torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(1)
    torch.manual_seed(11)
    got = pick(logits, PickOptions(guidance_scale=2.5, top_k=30, temperature=0.8))
    assert torch.equal(got, ref)
    kept = torch.topk(scores, 30).indices
    assert all(int(g) in set(kept[i].tolist()) for i, g in enumerate(got))


def test_bad_pick_options() -> None:
    with pytest.raises(ValueError, match="top_k"):
        PickOptions(top_k=-1)
    with pytest.raises(ValueError, match="temperature"):
        PickOptions(temperature=0)
    with pytest.raises(ValueError, match="decoder 'quick'"):
        SamplingOptions(decoder="quick")


def windowed(lm: LoadedMusicGen, decoder: str, prompt: np.ndarray | None, **kw: Any) -> tuple[np.ndarray, int]:
    options = SamplingOptions(window_s=1.0, context_s=0.3, decoder=decoder)
    return continue_audio(lm, "funk", 2.5, start_s=0.0, prompt=prompt, chroma_for=lambda a, b, p: None,
                          options=options, seed=9, cancel=CancelToken(), progress=lambda f, m: None, **kw)


def test_windowed_continuation_gives_the_stock_audio(plain: LoadedMusicGen) -> None:
    rng = np.random.default_rng(2)
    prompt = (rng.standard_normal((1, plain.hop * 12)) * 0.1).astype(np.float32)
    stock, n_stock = windowed(plain, "stock", prompt)
    fast, n_fast = windowed(plain, "fast", prompt)
    assert n_stock == n_fast >= 3
    assert stock.shape == fast.shape == (1, int(round(2.5 * plain.frame_rate)) * plain.hop)
    np.testing.assert_array_equal(fast, stock)


def test_melody_windows_with_chroma_give_the_stock_audio(melody: LoadedMusicGen) -> None:
    def chroma_for(start: float, end: float, prompt: np.ndarray | None) -> np.ndarray:
        frames = max(1, int((end - start) * melody.chroma_rate) + 1)
        c = np.zeros((frames, 12), dtype=np.float32)
        c[:, int(start * 2) % 12] = 1
        return c

    results = []
    for decoder in ("stock", "fast"):
        options = SamplingOptions(window_s=1.0, context_s=0.3, decoder=decoder)
        results.append(continue_audio(melody, "bossa", 2.0, start_s=1.0, prompt=None, chroma_for=chroma_for,
                                      options=options, seed=4, cancel=CancelToken(),
                                      progress=lambda f, m: None)[0])
    np.testing.assert_array_equal(results[1], results[0])


def test_fast_decoder_cancels_and_reports_progress(plain: LoadedMusicGen) -> None:
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if fraction > 0.3:
            token.cancel()

    options = SamplingOptions(window_s=1.0, context_s=0.3, decoder="fast")
    with pytest.raises(GenerationCancelled):
        continue_audio(plain, "funk", 2.5, start_s=0.0, prompt=None, chroma_for=lambda a, b, p: None,
                       options=options, seed=1, cancel=token, progress=progress)
    assert seen == sorted(seen) and 0.3 < seen[-1] < 0.5


def test_batch_of_variations_with_prompts(plain: LoadedMusicGen) -> None:
    from models.musicgen.batch import generate_batch

    rng = np.random.default_rng(6)
    prompt = (rng.standard_normal((1, plain.hop * 10)) * 0.1).astype(np.float32)
    torch.manual_seed(0)
    out = generate_batch(plain, ["funk", "funk", "ambient"], 20, prompts=[prompt] * 3,
                         options=SamplingOptions(), cancel=CancelToken())
    assert out.shape == (3, 1, 30 * plain.hop)
    assert not np.array_equal(out[0], out[1])  # variations of one text differ
    np.testing.assert_array_equal(out[0, :, : 5 * plain.hop], out[1, :, : 5 * plain.hop])  # same prompt start
    # item 0 is what a batch of one gives with the same random draws: compare codes with stock
    inputs = text_inputs(plain, ["funk", "funk", "ambient"])
    codes = torch.cat([encode_prompt(plain, prompt)] * 3, dim=0)
    ref = stock_codes(plain, 0, **inputs, decoder_input_ids=codes, do_sample=True, guidance_scale=3.0,
                      top_k=250, max_new_tokens=23)
    with torch.inference_mode():  # each item decoded alone, as a batch of one is
        stock_audio = np.concatenate(
            [plain.model.audio_encoder.decode(ref[None, i : i + 1], [None]).audio_values.numpy() for i in range(3)]
        )
    np.testing.assert_array_equal(out, stock_audio)


def test_batch_refuses_mismatched_items(plain: LoadedMusicGen) -> None:
    from models.musicgen.batch import generate_batch

    short = np.zeros((1, plain.hop * 4), dtype=np.float32)
    long = np.zeros((1, plain.hop * 6), dtype=np.float32)
    with pytest.raises(ValueError, match="one per text"):
        generate_batch(plain, ["a", "b"], 10, prompts=[short], options=SamplingOptions(), cancel=CancelToken())
    with pytest.raises(ValueError, match="one shape"):
        generate_batch(plain, ["a", "b"], 10, prompts=[short, long], options=SamplingOptions(), cancel=CancelToken())
    with pytest.raises(ValueError, match="at least one"):
        generate_batch(plain, [], 10, options=SamplingOptions(), cancel=CancelToken())


def test_auto_decoder_is_fast() -> None:
    from models.musicgen.sampling import pick_decoder

    assert pick_decoder("auto", "cuda") == "fast"
    assert pick_decoder("auto", "cpu") == "fast"
    assert pick_decoder("stock", "cuda") == "stock"

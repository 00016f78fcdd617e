"""Coco-Mulla on the fast decoder gives the codes of stock ``generate()`` with the adapter attached."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from models.cocomulla.adapter import ConditionStates, attached, condition_states  # noqa: E402
from models.cocomulla.fast import CocoMullaFastDecoder  # noqa: E402
from models.cocomulla.generator import debug_adapter  # noqa: E402
from models.musicgen.fast_decode import FastMusicGenDecoder  # noqa: E402
from models.musicgen.loading import LoadedMusicGen, load_debug  # noqa: E402
from models.musicgen.sampling import encode_prompt  # noqa: E402
from models.musicgen.token_picking import PickOptions  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def lm() -> LoadedMusicGen:
    return load_debug(melody=False, device="cpu")


def conditions(lm: LoadedMusicGen, frames: int, *, seed: int = 0, piano: bool = True, drums: bool = True,
               gate: float = 0.5, adapter_seed: int = 0) -> ConditionStates:
    """Random content conditions of ``frames`` audio frames (``frames + 1`` condition frames)."""
    decoder = lm.model.decoder
    adapter = debug_adapter(decoder, seed=adapter_seed, gate=gate).eval()
    g = torch.Generator().manual_seed(seed)
    t = frames + 1
    mask = torch.zeros(1, 2, t)
    mask[:, 0] = float(piano)
    mask[:, 1] = float(drums)
    with torch.inference_mode():
        return condition_states(
            decoder, adapter, chords=torch.rand(1, t, 37, generator=g).round(),
            piano_roll=torch.rand(1, t, 128, generator=g).round(),
            drum_codes=torch.randint(0, int(decoder.config.vocab_size), (1, 4, t), generator=g),
            cond_mask=mask, query_frames=frames,
        )


def texts(lm: LoadedMusicGen, prompts: list[str]) -> dict[str, Any]:
    return dict(lm.tokenizer(prompts, return_tensors="pt", padding=True))


def stock_codes(lm: LoadedMusicGen, states: ConditionStates, seed: int, **kwargs: Any) -> Any:
    """Codes stock generate() with the adapter attached hands to EnCodec."""
    seen: list[Any] = []
    enc = lm.model.audio_encoder
    original = enc.decode

    def record(codes: Any, *args: Any, **kw: Any) -> Any:
        seen.append(codes[0].clone())
        return original(codes, *args, **kw)

    rows = int(kwargs["input_ids"].shape[0]) * (2 if kwargs.get("guidance_scale", 1.0) > 1 else 1)
    enc.decode = record
    try:
        torch.manual_seed(seed)
        with torch.inference_mode(), attached(lm.model.decoder, states.repeated(rows // states.batch)):
            lm.model.generate(**kwargs)
    finally:
        del enc.decode
    return seen[0]


def fast_codes(lm: LoadedMusicGen, states: ConditionStates | None, seed: int, inputs: dict[str, Any], steps: int,
               options: PickOptions, mode: str | None = None, **kwargs: Any) -> Any:
    torch.manual_seed(seed)
    dec = FastMusicGenDecoder(lm.model, mode=mode) if states is None else CocoMullaFastDecoder(
        lm.model, states, mode=mode)
    return dec.generate_codes(inputs["input_ids"], inputs["attention_mask"], max_new_tokens=steps,
                              options=options, **kwargs)


def test_greedy_matches_stock_with_the_adapter_for_250_steps(lm: LoadedMusicGen) -> None:
    inputs = texts(lm, ["lo-fi funk with warm rhodes"])
    states = conditions(lm, 247)
    ref = stock_codes(lm, states, 0, **inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=250)
    got = fast_codes(lm, states, 0, inputs, 250, PickOptions(guidance_scale=3.0, greedy=True))
    assert got.shape == ref.shape == (1, 4, 247)
    assert torch.equal(got, ref)
    plain = fast_codes(lm, None, 0, inputs, 250, PickOptions(guidance_scale=3.0, greedy=True))
    assert not torch.equal(got, plain)  # the adapter is active on the fast path


@pytest.mark.parametrize(("guidance", "top_k"), [(3.0, 250), (1.0, 250), (2.0, 20)])
def test_sampling_with_a_seed_matches_stock(lm: LoadedMusicGen, guidance: float, top_k: int) -> None:
    inputs = texts(lm, ["dub techno chords"])
    states = conditions(lm, 117, seed=3)
    ref = stock_codes(lm, states, 7, **inputs, do_sample=True, guidance_scale=guidance, top_k=top_k,
                      max_new_tokens=120)
    got = fast_codes(lm, states, 7, inputs, 120, PickOptions(guidance_scale=guidance, top_k=top_k))
    assert torch.equal(got, ref)


def test_steps_beyond_the_conditions_use_the_last_query_as_stock(lm: LoadedMusicGen) -> None:
    """Fewer condition frames than steps: the authors' clamp, on both paths alike."""
    inputs = texts(lm, ["funk"])
    states = conditions(lm, 40, seed=5)
    ref = stock_codes(lm, states, 2, **inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=90)
    for mode in ("eager", "static"):
        got = fast_codes(lm, states, 2, inputs, 90, PickOptions(), mode=mode)
        assert torch.equal(got, ref), mode


def test_prompt_continuation_matches_stock(lm: LoadedMusicGen) -> None:
    rng = np.random.default_rng(4)
    prompt = encode_prompt(lm, (rng.standard_normal((1, lm.hop * 30)) * 0.1).astype(np.float32))
    inputs = texts(lm, ["funk"])
    states = conditions(lm, 30 + 57, seed=1)
    ref = stock_codes(lm, states, 5, **inputs, decoder_input_ids=prompt, do_sample=True, guidance_scale=3.0,
                      top_k=250, max_new_tokens=60)
    got = fast_codes(lm, states, 5, inputs, 60, PickOptions(), prompt_codes=prompt)
    assert torch.equal(got, ref)


def test_static_step_gives_the_eager_codes(lm: LoadedMusicGen) -> None:
    """The capturable step (device position and condition index) is what the CUDA graph replays."""
    inputs = texts(lm, ["house beat"])
    states = conditions(lm, 147, seed=2)
    eager = fast_codes(lm, states, 1, inputs, 150, PickOptions(greedy=True), mode="eager")
    static = fast_codes(lm, states, 1, inputs, 150, PickOptions(greedy=True), mode="static")
    assert torch.equal(eager, static)
    sampled = [fast_codes(lm, states, 4, inputs, 100, PickOptions(), mode=m) for m in ("eager", "static")]
    assert torch.equal(*sampled)


def test_gate_zero_is_plain_musicgen_and_masking_changes_the_codes(lm: LoadedMusicGen) -> None:
    inputs = texts(lm, ["ambient"])
    options = PickOptions(guidance_scale=3.0, greedy=True)
    plain = fast_codes(lm, None, 0, inputs, 200, options)
    closed = fast_codes(lm, conditions(lm, 197, gate=0.0), 0, inputs, 200, options)
    assert torch.equal(closed, plain)
    full = fast_codes(lm, conditions(lm, 197), 0, inputs, 200, options)
    masked_states = conditions(lm, 197, piano=False, drums=False)
    masked = fast_codes(lm, masked_states, 0, inputs, 200, options)
    assert not torch.equal(full, masked) and not torch.equal(masked, plain)
    ref = stock_codes(lm, masked_states, 0, **inputs, do_sample=False, guidance_scale=3.0, max_new_tokens=200)
    assert torch.equal(masked, ref)  # the masked embeddings reach the fast path as the stock one


def test_batch_of_items_with_own_conditions_and_seeds(lm: LoadedMusicGen) -> None:
    """Per-item states and generators: item i is what a batch of one gives with its seed."""
    inputs = texts(lm, ["funk", "funk", "slow ambient pads"])
    frames = 77
    per_item = [conditions(lm, frames, seed=s) for s in (0, 1, 0)]
    stacked = ConditionStates(
        [tuple(torch.cat([s.qkv[j][n] for s in per_item]) for n in range(3)) for j in range(len(per_item[0].qkv))],
        per_item[0].gates, per_item[0].start_layer, frames,
    )
    seeds = (3, 4, 5)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    batch = CocoMullaFastDecoder(lm.model, stacked).generate_codes(
        inputs["input_ids"], inputs["attention_mask"], max_new_tokens=80, options=PickOptions(), generators=gens)
    for i, seed in enumerate(seeds):
        one = texts(lm, [["funk", "funk", "slow ambient pads"][i]])
        alone = fast_codes(lm, per_item[i], seed, one, 80, PickOptions())
        assert torch.equal(batch[i : i + 1], alone), i
    assert not torch.equal(batch[0], batch[1])


def test_shared_states_repeat_over_items_and_bad_states_are_refused(lm: LoadedMusicGen) -> None:
    states = conditions(lm, 20)
    dec = CocoMullaFastDecoder(lm.model, states)
    assert dec.rows_states(6).batch == 6
    two = states.repeated(2)
    with pytest.raises(ValueError, match="do not divide"):
        CocoMullaFastDecoder(lm.model, two).rows_states(3)
    short = ConditionStates(states.qkv[1:], states.gates[1:], 0, states.query_frames)
    with pytest.raises(ValueError, match="decoder has 2 layers"):
        CocoMullaFastDecoder(lm.model, short)


def content_fn(start_s: float, frames: int) -> Any:
    """Content that changes with song time (chord root per second, a drum code per frame)."""
    from models.cocomulla.features import ContentFrames

    chords = np.zeros((frames, 37), np.float32)
    roll = np.zeros((frames, 128), np.float32)
    for i in range(frames):
        root = int(start_s + i / 50) % 12
        chords[i, root] = chords[i, 12] = 1
        roll[i, 48 + root] = 1
    codes = (np.arange(frames)[None] * 7 + 100 * np.arange(4)[:, None] + int(start_s * 50)) % 2048
    on = np.ones(frames, bool)
    return ContentFrames(chords, roll, codes.astype(np.int64), on, on)


def continued(lm: LoadedMusicGen, decoder: str, seeds: list[int], prompt: np.ndarray | None,
              duration_s: float = 1.74) -> tuple[list[np.ndarray], int, Any]:
    from models.base import CancelToken
    from models.cocomulla.generation import ConditionedWindows, continue_with_content
    from models.musicgen.sampling import SamplingOptions

    hook = ConditionedWindows(lm.model.decoder, debug_adapter(lm.model.decoder), content_fn)
    options = SamplingOptions(window_s=1.0, context_s=0.3, decoder=decoder)
    made, windows = continue_with_content(
        lm, hook, "funk", duration_s, seeds=seeds, start_s=2.0, prompt=prompt, options=options,
        cancel=CancelToken(), progress=lambda f, m: None,
    )
    return made, windows, hook


def test_windowed_fast_takes_give_the_stock_audio(lm: LoadedMusicGen) -> None:
    """1.5 s after a 12-frame prompt in 1-s windows with 0.3 s context: 38 + 35 + 2 new frames,
    the last window too short for the fast loop (stock, with the take's random stream)."""
    rng = np.random.default_rng(2)
    prompt = (rng.standard_normal((1, lm.hop * 12)) * 0.1).astype(np.float32)
    stock, n_stock, hook = continued(lm, "stock", [9], prompt, 1.5)
    fast, n_fast, _ = continued(lm, "fast", [9], prompt, 1.5)
    assert n_stock == n_fast == 3
    assert [f for _, f in hook.windows] == [50, 50, 17]  # prompt frames included
    assert stock[0].shape == fast[0].shape == (1, 75 * lm.hop)
    np.testing.assert_array_equal(fast[0], stock[0])


def test_takes_in_one_batch_keep_their_seeds(lm: LoadedMusicGen, monkeypatch: pytest.MonkeyPatch) -> None:
    """1.74 s: 50 + 35 + 2 new frames; every window of the three takes is one decode (the last
    one take after another on the stock loop)."""
    decodes: list[int] = []
    real = CocoMullaFastDecoder.generate_codes

    def spy(self: Any, text_ids: Any, *args: Any, **kwargs: Any) -> Any:
        decodes.append(int(text_ids.shape[0]))
        return real(self, text_ids, *args, **kwargs)

    monkeypatch.setattr(CocoMullaFastDecoder, "generate_codes", spy)
    batch, windows, _ = continued(lm, "fast", [3, 4, 3], None)
    assert decodes == [3, 3]
    assert windows == 3 and len(batch) == 3
    for seed, take in zip((3, 4), batch, strict=False):
        alone, _, _ = continued(lm, "fast", [seed], None)
        np.testing.assert_array_equal(take, alone[0])
    np.testing.assert_array_equal(batch[0], batch[2])
    assert not np.array_equal(batch[0], batch[1])


def test_several_stock_takes_and_no_seeds_are_refused(lm: LoadedMusicGen) -> None:
    with pytest.raises(ValueError, match="only on the fast decoder"):
        continued(lm, "stock", [1, 2], None)
    with pytest.raises(ValueError, match="at least one seed"):
        continued(lm, "fast", [], None)


def test_half_precision_base_with_the_float32_adapter() -> None:
    """The GPU set-up (fp16 base, fp32 adapter) on the CPU: states in fp16, the static step runs."""
    half = load_debug(melody=False, device="cpu")
    half.model.to(torch.float16)
    states = conditions(half, 27)
    assert all(t.dtype == torch.float16 for layer in states.qkv for t in layer)
    assert states.gates.dtype == torch.float32  # the adapter's own parameters stay fp32
    inputs = texts(half, ["funk"])
    eager = fast_codes(half, states, 3, inputs, 30, PickOptions(), mode="eager")
    static = fast_codes(half, states, 3, inputs, 30, PickOptions(), mode="static")
    assert eager.shape == (1, 4, 27) and torch.equal(eager, static)

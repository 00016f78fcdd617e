"""Coco-Mulla adapter mechanics on a tiny random decoder: cache, CFG, gates, masks, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from models.cocomulla import CocoMullaAdapter, adapter_logits, load_adapter  # noqa: E402
from models.cocomulla.adapter import attached, condition_states  # noqa: E402
from models.cocomulla.checkpoint import read_checkpoint, save_checkpoint  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]

K, V, HIDDEN, FRAMES, TEXT = 4, 64, 32, 12, 3



@pytest.fixture(scope="module")
def decoder() -> Any:
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    config = MusicgenDecoderConfig(
        vocab_size=V, hidden_size=HIDDEN, num_hidden_layers=3, num_attention_heads=4, ffn_dim=64,
        num_codebooks=K, pad_token_id=V, bos_token_id=V, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, max_position_embeddings=256,
    )
    torch.manual_seed(0)
    return MusicgenForCausalLM(config).eval()


def make_adapter(decoder: Any, *, layers: int = 3, gate: float = 0.7, seed: int = 1) -> CocoMullaAdapter:
    adapter = CocoMullaAdapter(num_layers=layers, start_layer=3 - layers, hidden_size=HIDDEN, max_frames=64)
    adapter.reset_random(torch.Generator().manual_seed(seed), gate=gate)
    return adapter.eval()


def inputs(batch: int = 1, seed: int = 2) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (batch * K, FRAMES), generator=g)
    ids[:, 0] = V  # start token
    mask = torch.ones(batch, 2, FRAMES)
    return {
        "input_ids": ids,
        "encoder_hidden_states": torch.randn(batch, TEXT, HIDDEN, generator=g),
        "encoder_attention_mask": torch.ones(batch, TEXT, dtype=torch.long),
        "chords": torch.rand(batch, FRAMES, 37, generator=g).round(),
        "piano_roll": torch.rand(batch, FRAMES, 128, generator=g).round(),
        "drum_codes": torch.randint(0, V, (batch, K, FRAMES), generator=g),
        "cond_mask": mask,
    }


def logits_of(decoder: Any, adapter: CocoMullaAdapter, **kw: Any) -> Any:
    with torch.no_grad():
        return adapter_logits(decoder, adapter, **kw)


def plain_logits(decoder: Any, x: dict[str, Any]) -> Any:
    with torch.no_grad():
        out = decoder(input_ids=x["input_ids"], encoder_hidden_states=x["encoder_hidden_states"],
                      encoder_attention_mask=x["encoder_attention_mask"], use_cache=False)
    return out.logits.reshape(-1, K, *out.logits.shape[1:])


def cond_kwargs(x: dict[str, Any]) -> dict[str, Any]:
    return {k: x[k] for k in ("chords", "piano_roll", "drum_codes", "cond_mask")}


def test_gates_at_zero_reproduce_the_base_model(decoder: Any) -> None:
    x = inputs()
    adapter = make_adapter(decoder, gate=0.0)
    assert torch.allclose(logits_of(decoder, adapter, **x), plain_logits(decoder, x), atol=1e-6)
    active = make_adapter(decoder, gate=0.7)
    assert not torch.allclose(logits_of(decoder, active, **x), plain_logits(decoder, x), atol=1e-3)


def test_hooks_are_removed_after_the_call(decoder: Any) -> None:
    x = inputs()
    logits_of(decoder, make_adapter(decoder), **x)
    assert torch.equal(plain_logits(decoder, x), plain_logits(decoder, x))
    for layer in decoder.model.decoder.layers:
        assert not layer.self_attn._forward_hooks and not layer.self_attn.q_proj._forward_hooks


def test_incremental_decoding_with_cache_equals_full_forward(decoder: Any) -> None:
    from transformers import DynamicCache, EncoderDecoderCache

    x = inputs()
    adapter = make_adapter(decoder)
    full = logits_of(decoder, adapter, **x)
    states = condition_states(decoder, adapter, **cond_kwargs(x))
    cache = EncoderDecoderCache(DynamicCache(config=decoder.config), DynamicCache(config=decoder.config))
    steps = []
    with torch.no_grad(), attached(decoder, states):
        first = 5  # a prompt processed at once, then one step at a time
        out = decoder(input_ids=x["input_ids"][:, :first], encoder_hidden_states=x["encoder_hidden_states"],
                      encoder_attention_mask=x["encoder_attention_mask"], cache=cache, use_cache=True)
        steps.append(out.logits)
        for s in range(first, FRAMES):
            out = decoder(input_ids=x["input_ids"][:, s : s + 1], encoder_hidden_states=x["encoder_hidden_states"],
                          encoder_attention_mask=x["encoder_attention_mask"], cache=out.cache, use_cache=True)
            steps.append(out.logits)
    incremental = torch.cat(steps, dim=1).reshape(full.shape)
    assert torch.allclose(incremental, full, atol=1e-5)


def test_both_cfg_branches_see_the_content_conditions(decoder: Any) -> None:
    x = inputs()
    adapter = make_adapter(decoder)
    text = x["encoder_hidden_states"]
    both = {**x, "encoder_hidden_states": torch.cat([text, torch.zeros_like(text)]),
            "encoder_attention_mask": torch.cat([x["encoder_attention_mask"]] * 2),
            "input_ids": torch.cat([x["input_ids"]] * 2)}
    states = condition_states(decoder, adapter, **cond_kwargs(x)).repeated(2)
    with torch.no_grad(), attached(decoder, states):
        out = decoder(input_ids=both["input_ids"], encoder_hidden_states=both["encoder_hidden_states"],
                      encoder_attention_mask=both["encoder_attention_mask"], use_cache=False)
    pair = out.logits.reshape(2, K, FRAMES, -1)
    cond_alone = logits_of(decoder, adapter, **x)
    uncond_alone = logits_of(decoder, adapter, **{**x, "encoder_hidden_states": torch.zeros_like(text)})
    assert torch.allclose(pair[0], cond_alone[0], atol=1e-5)
    assert torch.allclose(pair[1], uncond_alone[0], atol=1e-5)
    # the unconditional branch differs from the plain model's: it carries the content
    plain_uncond = plain_logits(decoder, {**x, "encoder_hidden_states": torch.zeros_like(text)})
    assert not torch.allclose(pair[1], plain_uncond[0], atol=1e-3)
    # a batch the states were not made for is refused, not silently broadcast
    single = condition_states(decoder, adapter, **cond_kwargs(x))
    with torch.no_grad(), attached(decoder, single), pytest.raises(ValueError, match="repeat the condition"):
        decoder(input_ids=both["input_ids"], encoder_hidden_states=both["encoder_hidden_states"],
                encoder_attention_mask=both["encoder_attention_mask"], use_cache=False)


@pytest.mark.parametrize("name", ["chords", "piano_roll", "drum_codes"])
def test_each_condition_changes_the_logits(decoder: Any, name: str) -> None:
    x = inputs()
    adapter = make_adapter(decoder)
    other = inputs(seed=9)[name]
    a = logits_of(decoder, adapter, **x)
    b = logits_of(decoder, adapter, **{**x, name: other})
    assert float((a - b).abs().max()) > 1e-4 * float(a.abs().max())  # float noise is ~1e-7
    assert torch.equal(a, logits_of(decoder, adapter, **x))


@pytest.mark.parametrize(("row", "name"), [(0, "piano_roll"), (1, "drum_codes")])
def test_masked_material_is_ignored(decoder: Any, row: int, name: str) -> None:
    x = inputs()
    mask = x["cond_mask"].clone()
    mask[:, row] = 0
    adapter = make_adapter(decoder)
    a = logits_of(decoder, adapter, **{**x, "cond_mask": mask})
    b = logits_of(decoder, adapter, **{**x, "cond_mask": mask, name: inputs(seed=9)[name]})
    assert torch.equal(a, b)
    assert float((a - logits_of(decoder, adapter, **x)).abs().max()) > 1e-4 * float(a.abs().max())  # float noise is ~1e-7


def test_conditions_of_the_wrong_shape_are_refused(decoder: Any) -> None:
    x = inputs()
    adapter = make_adapter(decoder)
    with pytest.raises(ValueError, match="piano_roll must have shape"):
        logits_of(decoder, adapter, **{**x, "piano_roll": x["piano_roll"][:, :5]})
    with pytest.raises(ValueError, match="adapter window covers"):
        long = inputs()
        condition_states(decoder, adapter, **{k: torch.cat([v] * 6, dim=-1 if k in ("drum_codes", "cond_mask") else 1)
                                               for k, v in cond_kwargs(long).items()})


def test_partial_adapter_covers_the_last_layers(decoder: Any) -> None:
    adapter = make_adapter(decoder, layers=2)
    loaded = load_adapter(adapter.state_dict(), decoder)
    assert loaded.start_layer == 1 and loaded.num_layers == 2
    x = inputs()
    assert torch.equal(logits_of(decoder, adapter, **x), logits_of(decoder, loaded, **x))


def test_checkpoint_with_a_missing_or_extra_key_is_refused(decoder: Any) -> None:
    state = make_adapter(decoder).state_dict()
    missing = {k: v for k, v in state.items() if k != "piano_roll_emb.1.weight"}
    with pytest.raises(ValueError, match=r"missing keys: piano_roll_emb\.1\.weight"):
        load_adapter(missing, decoder)
    extra = {**state, "layers.0.norm1.weight": torch.ones(HIDDEN)}
    with pytest.raises(ValueError, match=r"unexpected keys: layers\.0\.norm1\.weight"):
        load_adapter(extra, decoder)
    wrong = {**state, "merge_linear.0.weight": torch.zeros(HIDDEN, 40)}
    with pytest.raises(ValueError, match=r"'merge_linear\.0\.weight' has shape \(32, 40\)"):
        load_adapter(wrong, decoder)
    too_many = {**state, "gates": torch.zeros(5)}
    with pytest.raises(ValueError, match="decoder's layer count"):
        load_adapter(too_many, decoder)


def test_checkpoint_file_round_trip_and_no_overwrite(decoder: Any, tmp_path: Path) -> None:
    adapter = make_adapter(decoder)
    path = save_checkpoint(adapter, tmp_path / "adapter.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.pth"]  # no temp file left
    loaded = load_adapter(read_checkpoint(path), decoder)
    x = inputs()
    assert torch.equal(logits_of(decoder, adapter, **x), logits_of(decoder, loaded, **x))
    with pytest.raises(FileExistsError, match="never overwritten"):
        save_checkpoint(adapter, path)
    with pytest.raises(FileNotFoundError, match="--adapter"):
        read_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read adapter checkpoint"):
        read_checkpoint(tmp_path / "junk.pth")


def test_half_precision_base_with_float32_adapter(decoder: Any) -> None:
    import copy

    x = inputs()
    adapter = make_adapter(decoder)
    full = logits_of(decoder, adapter, **x)
    half = copy.deepcopy(decoder).half()
    text = {"encoder_hidden_states": x["encoder_hidden_states"].half()}
    got = logits_of(half, adapter, **{**x, **text})
    assert adapter.pos_emb.dtype == torch.float32 and got.dtype == torch.float16
    assert float((got.float() - full).abs().max()) < 1e-2 * float(full.abs().max())


def test_drum_codes_outside_the_codebook_are_refused(decoder: Any) -> None:
    x = inputs()
    with pytest.raises(ValueError, match=r"drum_codes must be EnCodec codes in 0\.\.63"):
        logits_of(decoder, make_adapter(decoder), **{**x, "drum_codes": x["drum_codes"] + V})


def test_transformers_generate_feeds_the_adapter_its_step_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside ``generate()`` the hooks see the KV cache, so step s meets condition frame s."""
    import numpy as np

    import models.cocomulla.adapter as adapter_module
    from models.cocomulla.features import ContentFrames
    from models.cocomulla.generation import ConditionedWindows
    from models.cocomulla.generator import debug_adapter
    from models.musicgen.loading import load_debug

    seen: list[int | None] = []
    real = adapter_module._cache_length

    def spy(cache: Any, layer: int) -> int | None:
        got = real(cache, layer)
        if layer == 0:
            seen.append(got)
        return got

    monkeypatch.setattr(adapter_module, "_cache_length", spy)
    lm = load_debug(melody=False, device="cpu")

    def content(start_s: float, frames: int) -> ContentFrames:
        chords = np.zeros((frames, 37), np.float32)
        chords[:, 36] = 1
        off = np.zeros(frames, bool)
        return ContentFrames(chords, np.zeros((frames, 128), np.float32), np.zeros((4, frames), np.int64), off, off)

    hook = ConditionedWindows(lm.model.decoder, debug_adapter(lm.model.decoder), content)
    with torch.inference_mode(), hook(0.0, 10) as states, attached(lm.model.decoder, states.repeated(2)):
        lm.model.generate(**lm.tokenizer(["funk"], return_tensors="pt"), do_sample=True, max_new_tokens=13)
    assert None not in seen
    assert seen[-13:] == list(range(1, 14))  # key length after each decoding step's cache update

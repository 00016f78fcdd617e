"""Coco-Mulla reference contract: the authors' logits reproduced through load_adapter/adapter_logits.

The fixture (``shared/data/cocomulla``) holds the inputs and the logits the authors' own code
computes for a 2-layer model at musicgen-large width whose weights follow a seeded recipe (its
README). The weights are rebuilt here from that recipe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from models.cocomulla import adapter_logits, load_adapter  # noqa: E402
from models.cocomulla.checkpoint import expected_shapes  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FIXTURE_DIR = REPO.parent / "shared" / "data" / "cocomulla"
INPUTS = ("input_ids", "encoder_hidden_states", "encoder_attention_mask", "chords", "piano_roll",
          "drum_codes", "cond_mask")


def recipe_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, Any]:
    """Draw every tensor in sorted key order from one seeded generator (fixture README, step 2)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("layer_norm.weight"):
            out[key] = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif key.endswith(".bias"):
            out[key] = 0.1 * torch.randn(shape, generator=gen)
        elif key == "gates":
            out[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key in ("pos_emb", "masked_embedding"):
            out[key] = torch.randn(shape, generator=gen)
        else:
            out[key] = 0.02 * torch.randn(shape, generator=gen)
    return out


@pytest.fixture(scope="module")
def fixture() -> Iterator[dict[str, Any]]:
    files = sorted(FIXTURE_DIR.glob("parity-seed*.pt"))
    if not files:
        pytest.skip(f"Coco-Mulla parity fixture not found under {FIXTURE_DIR} (shared/ beside the clone)")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield torch.load(files[0], weights_only=True)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(fixture: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    config = MusicgenDecoderConfig(**fixture["hf_config"])
    decoder = MusicgenForCausalLM(config).eval()
    decoder_shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    adapter_shapes = expected_shapes(config.num_hidden_layers, config.hidden_size)
    weights = recipe_weights({**decoder_shapes, **adapter_shapes}, int(fixture["seed"]))
    decoder.load_state_dict({k: weights[k] for k in decoder_shapes}, strict=True)
    adapter = load_adapter({k: weights[k] for k in adapter_shapes}, decoder)
    return decoder, adapter


def rel_error(got: Any, want: Any) -> float:
    return float((got - want).abs().max() / want.abs().max())


def test_adapter_logits_match_the_authors(fixture: dict[str, Any], model: tuple[Any, Any]) -> None:
    decoder, adapter = model
    with torch.no_grad():
        logits = adapter_logits(decoder, adapter, **{k: fixture[k] for k in INPUTS})
    assert logits.shape == fixture["logits"].shape
    assert rel_error(logits, fixture["logits"]) < 1e-4
    # the adapter matters: the base logits are far from the adapted ones
    assert rel_error(fixture["base_logits"], fixture["logits"]) > 1e-2


def test_gates_at_zero_give_the_base_logits(fixture: dict[str, Any], model: tuple[Any, Any]) -> None:
    decoder, adapter = model
    gates = adapter.gates.detach().clone()
    try:
        with torch.no_grad():
            adapter.gates.zero_()
            logits = adapter_logits(decoder, adapter, **{k: fixture[k] for k in INPUTS})
            plain = decoder(
                input_ids=fixture["input_ids"], encoder_hidden_states=fixture["encoder_hidden_states"],
                encoder_attention_mask=fixture["encoder_attention_mask"],
            ).logits.reshape(logits.shape)
    finally:
        with torch.no_grad():
            adapter.gates.copy_(gates)
    assert rel_error(logits, fixture["base_logits"]) < 1e-4
    assert rel_error(plain, fixture["base_logits"]) < 1e-4

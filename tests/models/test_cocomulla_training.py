"""Training the Coco-Mulla adapter: the loss falls, the base stays frozen, the file loads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

from models.cocomulla.checkpoint import save_checkpoint  # noqa: E402
from models.cocomulla.features import ContentFrames  # noqa: E402
from models.cocomulla.generator import debug_adapter  # noqa: E402
from models.cocomulla.training import (  # noqa: E402
    TrainExample,
    TrainOptions,
    pattern_batch,
    train_adapter,
)
from models.musicgen.loading import load_debug  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]
FRAMES = 24



def synthetic(seed: int) -> TrainExample:
    """A window whose codes follow its chord root (so the content predicts the music)."""
    rng = np.random.default_rng(seed)
    roots = rng.integers(0, 12, FRAMES + 1)
    chords = np.zeros((FRAMES + 1, 37), np.float32)
    chords[np.arange(FRAMES + 1), roots] = 1
    chords[:, 12] = 1
    codes = np.stack([roots[:FRAMES] * 8 + k for k in range(4)]).astype(np.int64)
    on = np.ones(FRAMES + 1, bool)
    content = ContentFrames(chords, np.zeros((FRAMES + 1, 128), np.float32),
                            np.zeros((4, FRAMES + 1), np.int64), ~on, ~on)
    return TrainExample(codes, content, "funk")


def test_pattern_layout() -> None:
    codes = torch.arange(12).reshape(1, 4, 3)
    ids, targets = pattern_batch(codes, 99)
    assert ids.reshape(4, 4).tolist() == [[99, 0, 1, 2], [99, 99, 3, 4], [99, 99, 99, 6], [99, 99, 99, 99]]
    assert targets[0].tolist() == [[0, 1, 2, -100], [-100, 3, 4, 5], [-100, -100, 6, 7], [-100, -100, -100, 9]]


def test_training_lowers_the_loss_and_the_file_loads_back(tmp_path: Path) -> None:
    from models.registry import build_generator

    lm = load_debug(melody=False, device="cpu")
    adapter = debug_adapter(lm.model.decoder, gate=0.1)
    base = {k: v.clone() for k, v in lm.model.state_dict().items()}
    train = [synthetic(i) for i in range(6)]
    held = [synthetic(100 + i) for i in range(2)]
    resume = tmp_path / "resume.pt"
    # without condition dropout: 30 steps move the held-out loss by only ~0.01 nats, which the
    # default dropout's 3 or 4 empty-text steps can cancel; the default run is checked below
    plain = TrainOptions(epochs=5, lr=3e-3, clip=1.0, drop_conditions=0.0, drop_text=0.0)
    report = train_adapter(lm, adapter, train, held, options=plain, resume=resume)
    assert len(report.step_losses) == 30 and len(report.held_out) == 5
    assert np.mean(report.step_losses[-6:]) < np.mean(report.step_losses[:6]) - 0.05
    assert report.held_out[-1] < report.held_out[0]
    assert all(torch.equal(v, lm.model.state_dict()[k]) for k, v in base.items())  # base frozen
    again = train_adapter(lm, adapter, train, held, options=plain, resume=resume)
    assert again.step_losses == [] and again.epochs_done == 5  # resumed: nothing left to do
    path = save_checkpoint(adapter, tmp_path / "mine.pth")
    gen: Any = build_generator("cocomulla-debug", adapter=str(path))
    assert all(torch.equal(v, adapter.state_dict()[k]) for k, v in gen.adapter.state_dict().items())
    fresh = debug_adapter(lm.model.decoder, gate=0.1)
    default = train_adapter(lm, fresh, train, held, options=TrainOptions(epochs=5, lr=3e-3, clip=1.0))
    assert np.mean(default.step_losses[-6:]) < np.mean(default.step_losses[:6]) - 0.05  # with dropout


def test_dropout_plan_is_seeded_and_follows_the_probabilities() -> None:
    from models.cocomulla.training import dropout_plan

    every = dropout_plan(TrainOptions(epochs=3, drop_conditions=1.0, drop_text=1.0), 7)
    assert all(d.piano and d.drums and d.text for epoch in every for d in epoch)
    never = dropout_plan(TrainOptions(epochs=3, drop_conditions=0.0, drop_text=0.0), 7)
    assert not any(d.piano or d.drums or d.text for epoch in never for d in epoch)
    some = dropout_plan(TrainOptions(epochs=50, drop_conditions=0.2, drop_text=0.1, seed=4), 20)
    flat = [d for epoch in some for d in epoch]
    assert 0.15 < np.mean([d.piano for d in flat]) < 0.25 and 0.15 < np.mean([d.drums for d in flat]) < 0.25
    assert 0.06 < np.mean([d.text for d in flat]) < 0.14
    assert np.mean([d.piano == d.drums for d in flat]) < 0.8  # drawn apart
    assert some == dropout_plan(TrainOptions(epochs=50, drop_conditions=0.2, drop_text=0.1, seed=4), 20)
    assert some != dropout_plan(TrainOptions(epochs=50, drop_conditions=0.2, drop_text=0.1, seed=5), 20)
    with pytest.raises(ValueError, match="drop_text=1.5 must be a probability"):
        TrainOptions(drop_text=1.5)
    with pytest.raises(ValueError, match="drop_conditions=-0.1"):
        TrainOptions(drop_conditions=-0.1)


def with_material(seed: int) -> TrainExample:
    """A window with piano roll and drums present on every frame."""
    e = synthetic(seed)
    on = np.ones(FRAMES + 1, bool)
    c = e.content
    return TrainExample(e.codes, ContentFrames(c.chords, c.piano_roll, c.drum_codes + 3, on, on), e.text)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_training_masks_every_example_at_p1_and_none_at_p0(p: float, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    import models.cocomulla.training as training

    seen: list[tuple[float, float, float]] = []
    real = training.adapter_logits

    def spy(decoder: Any, adapter: Any, **kw: Any) -> Any:
        seen.append((float(kw["cond_mask"].mean()), float(kw["encoder_attention_mask"].float().mean()),
                     float(kw["encoder_hidden_states"].abs().sum())))
        return real(decoder, adapter, **kw)

    monkeypatch.setattr(training, "adapter_logits", spy)
    lm = load_debug(melody=False, device="cpu")
    adapter = debug_adapter(lm.model.decoder, gate=0.1)
    options = TrainOptions(epochs=2, lr=1e-3, drop_conditions=p, drop_text=p)
    resume = tmp_path / "resume.pt"
    train_adapter(lm, adapter, [with_material(i) for i in range(3)], options=options, resume=resume)
    assert len(seen) == 6
    if p:
        assert all(cond == 0.0 and mask == 0.0 and states == 0.0 for cond, mask, states in seen)
    else:
        assert all(cond == 1.0 and mask == 1.0 and states > 0 for cond, mask, states in seen)
    assert torch.load(resume, weights_only=True)["dropout"] == {"drop_conditions": p, "drop_text": p, "seed": 0}
    with pytest.raises(ValueError, match="delete the resume file"):
        train_adapter(lm, adapter, [with_material(0)], options=TrainOptions(epochs=3, drop_conditions=0.5),
                      resume=resume)

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
    report = train_adapter(lm, adapter, train, held, options=TrainOptions(epochs=5, lr=3e-3, clip=1.0), resume=resume)
    assert len(report.step_losses) == 30 and len(report.held_out) == 5
    assert np.mean(report.step_losses[-6:]) < np.mean(report.step_losses[:6]) - 0.05
    assert report.held_out[-1] < report.held_out[0]
    assert all(torch.equal(v, lm.model.state_dict()[k]) for k, v in base.items())  # base frozen
    again = train_adapter(lm, adapter, train, held, options=TrainOptions(epochs=5, lr=3e-3, clip=1.0), resume=resume)
    assert again.step_losses == [] and again.epochs_done == 5  # resumed: nothing left to do
    path = save_checkpoint(adapter, tmp_path / "mine.pth")
    gen: Any = build_generator("cocomulla-debug", adapter=str(path))
    assert all(torch.equal(v, adapter.state_dict()[k]) for k, v in gen.adapter.state_dict().items())

"""``stembridge cocomulla train`` on a tiny synthetic song folder with the debug model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("demucs")
pytest.importorskip("fluidsynth")
pretty_midi = pytest.importorskip("pretty_midi")

from bridge.cli.main import main  # noqa: E402
from conditioning.io.audio import write_wav  # noqa: E402
from conditioning.types import Audio  # noqa: E402

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]



def make_song(folder: Path, root: int, *, drums: bool) -> None:
    folder.mkdir(parents=True)
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    keys = pretty_midi.Instrument(program=0)
    for bar in range(2):
        for p in (root, root + 4, root + 7):
            keys.notes.append(pretty_midi.Note(velocity=90, pitch=60 + p, start=bar * 2.0, end=bar * 2.0 + 1.9))
    pm.instruments.append(keys)
    if drums:
        kit = pretty_midi.Instrument(program=0, is_drum=True)
        for beat in range(8):
            kit.notes.append(pretty_midi.Note(velocity=100, pitch=36 if beat % 2 == 0 else 38,
                                              start=beat * 0.5, end=beat * 0.5 + 0.1))
        pm.instruments.append(kit)
    pm.write(str(folder / "song.mid"))
    t = np.arange(3 * 32000) / 32000
    tone = 0.2 * np.sin(2 * np.pi * 261.6 * 2 ** (root / 12) * t)
    write_wav(folder / "mix.wav", Audio(np.stack([tone, tone]).astype(np.float32), 32000))
    (folder / "prompt.txt").write_text("warm piano")


def test_train_command_writes_an_adapter_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "songs"
    make_song(data / "a", 0, drums=True)
    make_song(data / "b", 5, drums=False)  # no drum MIDI: the drums come from Demucs
    out = tmp_path / "mine.pth"
    args = ["cocomulla", "train", "--data", str(data), "--out", str(out), "--debug", "--epochs", "2",
            "--lr", "1e-3", "--quiet", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "epoch 1: held-out loss" in printed and "epoch 2: held-out loss" in printed
    assert "trained on 1 windows of 2 songs (held out: 1)" in printed
    assert "condition dropout: piano roll and drums 0.2 each, text 0.1 (seed 0)" in printed
    from models.registry import build_generator

    gen = build_generator("cocomulla-debug", adapter=str(out))
    assert gen.adapter_source == str(out)  # type: ignore[attr-defined]
    assert main(args) == 2  # the adapter file is never overwritten
    assert "never overwritten" in capsys.readouterr().err


def test_train_command_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cocomulla", "train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x.pth"),
                 "--debug", "--quiet", "--device", "cpu"])
    assert code == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--drop-conditions", "1.5"), ("--drop-text", "-0.1"), ("--drop-text", "x")])
def test_train_command_refuses_a_bad_probability(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                                 value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["cocomulla", "train", "--data", str(tmp_path), "--out", str(tmp_path / "x.pth"), "--debug",
              "--quiet", flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "from 0 to 1" in err
    assert not (tmp_path / "x.pth").exists()

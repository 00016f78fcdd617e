"""benchmarks/bench_cocomulla.py times plain MusicGen fast, Coco-Mulla stock and Coco-Mulla fast in one run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.neural, pytest.mark.usefixtures("one_torch_thread")]

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cocomulla.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_cocomulla", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_cocomulla", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", [None, "static"])
def test_bench_reports_the_three_loops_for_the_debug_model(mode: str | None) -> None:
    bench = load_bench()
    r = bench.bench(size="debug", device="cpu", dtype=torch.float32, seconds=0.4, repeats=1, mode=mode)
    assert r["steps"] == 20 + 3 and r["mode"] == (mode or "eager")
    for name in bench.RUNS:
        assert r[f"{name}_steps_per_s"] > 0
    assert r["same_audio"] is True  # float32 on a CPU: the fast loop gives the stock audio
    assert r["adapter_dtype"] == "float32" and r["adapter_params_m"] > 0


def test_bench_main_prints_every_loop(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    monkeypatch.setattr(sys, "argv", ["bench_cocomulla.py", "--seconds", "0.3", "--repeats", "1", "--threads", "1"])
    bench.main()
    printed = capsys.readouterr().out
    for line in ("musicgen fast", "cocomulla stock", "cocomulla fast", "audio identical: yes"):
        assert line in printed

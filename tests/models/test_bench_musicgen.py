"""benchmarks/bench_musicgen.py measures stock and fast decoding of one model in one run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.neural

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_musicgen.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_musicgen", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_musicgen", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bench_reports_both_decoders_for_the_debug_model() -> None:
    bench = load_bench()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = bench.bench("debug", melody=False, device="cpu", dtype=torch.float32, seconds=0.3, repeats=1,
                        modes=[None, "static"])
    finally:
        torch.set_num_threads(threads)
    assert r["steps"] == 15 + 3
    assert r["audio_s"] == pytest.approx(0.3)
    assert [mode for mode, _, _ in r["fast"]] == ["eager", "static"]  # None: the automatic choice on a CPU
    timings = [r["stock"]] + [t for _, _, t in r["fast"]]
    for t in timings:
        assert t.wall_s > 0 and t.steps_per_s == pytest.approx(18 / t.wall_s)
        assert t.rtf == pytest.approx(t.wall_s / 0.3)
    assert all(first > 0 for _, first, _ in r["fast"])


def test_bench_variations_times_sequential_and_batched_takes() -> None:
    bench = load_bench()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # it also checks the batched takes equal the sequential ones (raises if not)
        r = bench.bench_variations("debug", 3, device="cpu", dtype=torch.float32, seconds=0.3, repeats=1, mode=None)
    finally:
        torch.set_num_threads(threads)
    assert r["steps"] == 18
    for name in ("sequential", "batched"):
        t = r[name]
        assert t.steps_per_s == pytest.approx(3 * 18 / t.wall_s)
        assert t.rtf == pytest.approx(t.wall_s / 0.9)

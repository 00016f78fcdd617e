"""benchmarks/bench_coalesce.py times concurrent calls alone and sharing windows, and checks their audio."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.neural

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_coalesce.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_coalesce", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_coalesce", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_two_callers_share_one_decode_and_are_timed_both_ways() -> None:
    bench = load_bench()
    lm = bench.load_random("debug", device="cpu", dtype=torch.float32)
    # it also checks every shared call's audio equals the same call alone (raises if not)
    r = bench.bench(lm, 2, seconds=0.3, repeats=1, wait_s=5.0)
    assert r["windows"] == 1 and r["steps"] == 15 + 3  # 15 frames and the 4-codebook delay pattern
    for name in ("alone", "shared"):
        t = r[name]
        assert t.wall_s > 0 and t.steps_per_s == pytest.approx(2 * 18 / t.wall_s)
        assert t.jobs_per_s == pytest.approx(2 / t.wall_s)
    assert r["shared"].batches == {2: 1} and r["alone"].batches == {}


@pytest.mark.usefixtures("one_thread")
def test_the_table_has_a_row_per_way_and_refuses_zero_callers(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench()
    bench.main(["--callers", "1", "2", "--seconds", "0.2", "--repeats", "1"])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().split()[:1] in (["1"], ["2"], ["shared"])]
    assert [row[0] for row in rows] == ["1", "shared", "2", "shared"]
    assert rows[1][-1] == "1x1"  # a call alone decodes alone
    with pytest.raises(SystemExit):
        bench.main(["--callers", "0"])
    assert "give 1 or more callers" in capsys.readouterr().err

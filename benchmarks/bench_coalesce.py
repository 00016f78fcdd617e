"""Concurrent MusicGen calls on one model: each decoding alone against windows shared by a coalescer.

``N`` callers (threads) each make ``--seconds`` of audio continuing 1 s of its own previous
audio, with its own text and seed, on one loaded model, all in flight at once (as ``N`` jobs
reaching a worker together). Two ways, for each ``N`` of ``--callers``:

* **alone**: :func:`~models.musicgen.sampling.continue_audio` in every thread, today's path
  without coalescing (the calls take turns on torch's global random generator);
* **shared**: :func:`~models.musicgen.coalesce.continue_audio_coalesced` with one
  :class:`~models.musicgen.coalesce.WindowCoalescer`, which decodes the callers' windows as one batch.

Printed per run: wall seconds, decode steps/s (every caller's steps, frames + delay pattern, per
wall second), jobs/s (callers per wall second), the decodes' batch sizes and shared/alone. On a
CPU the shared audio is checked to equal the alone audio bit for bit (it raises otherwise).
With one caller the two rows show what coalescing costs a call alone (it should cost nothing).

Random weights (no download): the tiny debug model by default; ``--size small`` (etc.) builds
the official architecture with random weights (meant for a GPU).

    .venv/bin/python benchmarks/bench_coalesce.py --threads 1                      # debug model, CPU
    .venv/bin/python benchmarks/bench_coalesce.py --device cuda --size small --seconds 10

Measured on the shared 2-core CPU of the development machine (debug model, torch 1 thread,
5 s per caller, best of 5, two runs; other jobs shared the CPU, so +-20 % noise between runs):
1 caller 0.96x and 1.21x (a call alone does not get slower: 1x1 decodes); 2 callers
409 -> 748 and 342 -> 445 steps/s (1.83x, 1.30x); 4 callers 404 -> 813 and 530 -> 1083
steps/s (2.01x, 2.04x), jobs/s 1.60 -> 3.21 and 2.09 -> 4.28. A step of the debug model is
mostly host overhead, which a batch shares; on a GPU a batched step costs little more than one
(it reads the weights once), so the gain should be larger. No GPU numbers: no GPU was lent.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.base import CancelToken
from models.musicgen.coalesce import DEFAULT_WAIT_S, WindowCoalescer, continue_audio_coalesced
from models.musicgen.configs import CHROMA_HOP, build_random_model
from models.musicgen.loading import LoadedMusicGen, codec_hop
from models.musicgen.sampling import SamplingOptions, continue_audio
from models.musicgen.tokenizer import VOCAB_SIZE, build_debug_tokenizer

TEXTS = ("lo-fi funk with warm rhodes, 92 bpm", "driving techno", "slow ambient pads with a long reverb tail",
         "rock")


@dataclass(frozen=True)
class Timing:
    """One way's best run: wall seconds, decode steps/s, jobs/s and the decodes' batch sizes."""

    wall_s: float
    steps_per_s: float
    jobs_per_s: float
    batches: dict[int, int]


def load_random(size: str, *, device: str, dtype: torch.dtype) -> LoadedMusicGen:
    """The ``size`` architecture with random weights (seed 0) on ``device``, ready to drive."""
    torch.manual_seed(0)
    model = build_random_model(size, melody=False, text_vocab_size=VOCAB_SIZE).to(device, dtype).eval()
    codec = model.config.audio_encoder
    hop = codec_hop(model)
    rate = int(codec.sampling_rate)
    return LoadedMusicGen(model=model, tokenizer=build_debug_tokenizer(), melody=False, sample_rate=rate,
                          frame_rate=rate / hop, hop=hop, chroma_rate=rate / CHROMA_HOP, device=device,
                          source=f"random {size}")


def _together(
    count: int, job: Callable[[int, Callable[[float, float, Any], None]], Any], *, in_session: bool,
) -> tuple[list[Any], float]:
    """Run ``job(i, chroma_for)`` in ``count`` threads, all started together.

    With ``in_session`` the threads meet in ``chroma_for`` before their first window (inside
    the coalescer's session: every call is in flight before a window reaches it); else before
    the job starts (``continue_audio`` holds the global random-generator lock throughout).

    Returns:
        (each job's result, wall seconds from the start until the last finished).
    """
    ready = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def work(i: int) -> None:
        first = [True]

        def gated(a: float, b: float, prompt: Any) -> None:
            if first[0] and in_session:
                first[0] = False
                ready.wait(timeout=600)
            return None

        try:
            if not in_session:
                ready.wait(timeout=600)
            results[i] = job(i, gated)
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return results, wall


def bench(
    lm: LoadedMusicGen, callers: int, *, seconds: float, repeats: int, wait_s: float = DEFAULT_WAIT_S,
    options: SamplingOptions | None = None,
) -> dict[str, Any]:
    """``callers`` concurrent calls, alone and shared, each timed as the best of ``repeats`` (after a warm-up).

    Returns:
        ``{"steps": decode steps per caller, "windows": windows per caller, "alone": Timing,
        "shared": Timing}``.

    Raises:
        RuntimeError: on a CPU, a shared call's audio differs from the same call alone.
    """
    opts = options or SamplingOptions()
    rng = np.random.default_rng(0)
    prompts = [(0.1 * rng.standard_normal((1, lm.hop * int(lm.frame_rate)))).astype(np.float32)
               for _ in range(callers)]
    cancel = CancelToken()

    def alone(i: int, chroma_for: Callable[[float, float, Any], None]) -> tuple[np.ndarray, int]:
        return continue_audio(lm, TEXTS[i % len(TEXTS)], seconds, start_s=0.0, prompt=prompts[i],
                              chroma_for=chroma_for, options=opts, seed=100 + i, cancel=cancel,
                              progress=lambda f, m: None)

    coalescer: list[WindowCoalescer] = []

    def shared(i: int, chroma_for: Callable[[float, float, Any], None]) -> tuple[np.ndarray, int]:
        return continue_audio_coalesced(lm, coalescer[0], TEXTS[i % len(TEXTS)], seconds, start_s=0.0,
                                        prompt=prompts[i], chroma_for=chroma_for, options=opts, seed=100 + i,
                                        cancel=cancel, progress=lambda f, m: None)

    per_channel = int(lm.model.config.decoder.num_codebooks // lm.model.config.decoder.audio_channels)
    made: dict[str, list[Any]] = {}
    best: dict[str, float] = {"alone": float("inf"), "shared": float("inf")}
    batches: dict[int, int] = {}
    for attempt in range(repeats + 1):  # the first is a warm-up; the two ways alternate (fair to both)
        for name, job in (("alone", alone), ("shared", shared)):
            coalescer[:] = [WindowCoalescer(lm, wait_s=wait_s)]
            _sync(lm)
            # each result is numpy audio, so the device is done when the threads are
            results, wall = _together(callers, job, in_session=name == "shared")
            made[name] = results
            if attempt and wall < best[name]:
                best[name] = wall
                if name == "shared":
                    batches = coalescer[0].batch_sizes()
    windows = int(made["alone"][0][1])
    frames = int(made["alone"][0][0].shape[1] // lm.hop)
    steps = frames + windows * (per_channel - 1)
    timings = {name: Timing(best[name], steps * callers / best[name], callers / best[name],
                            batches if name == "shared" else {}) for name in best}
    if not str(lm.device).startswith("cuda"):
        for (a, _), (b, _) in zip(made["alone"], made["shared"], strict=True):
            if not np.array_equal(a, b):
                raise RuntimeError("a shared call's audio differs from the same call alone on a CPU")
    return {"steps": steps, "windows": windows, **timings}


def _sync(lm: LoadedMusicGen) -> None:
    if str(lm.device).startswith("cuda"):
        torch.cuda.synchronize()


def _sizes(batches: dict[int, int]) -> str:
    return " ".join(f"{n}x{size}" for size, n in sorted(batches.items(), reverse=True)) or "-"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="debug", choices=["debug", "small", "medium", "large"],
                        help="architecture (random weights)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 2, 4], help="concurrent calls per run")
    parser.add_argument("--seconds", type=float, default=5.0, help="audio seconds per caller")
    parser.add_argument("--window", type=float, default=30.0, help="window seconds (context 10 s)")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, help="batch_wait_s of the coalescer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.callers):
        parser.error(f"--callers {' '.join(map(str, args.callers))}: give 1 or more callers per run")
    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = args.device.startswith("cuda")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if on_cuda else torch.float32)
    lm = load_random(args.size, device=args.device, dtype=dtype)
    options = SamplingOptions(window_s=args.window, context_s=min(10.0, args.window / 3))
    where = torch.cuda.get_device_name() if on_cuda else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {where}, {args.size} (random weights), dtype {str(dtype).removeprefix('torch.')}, "
          f"torch {torch.__version__}, {args.seconds:g} s per caller after 1 s of prompt audio, "
          f"batch_wait_s {args.wait:g}, best of {args.repeats}")
    print(f"{'callers':>7}{'way':>8}{'wall s':>9}{'steps/s':>10}{'jobs/s':>9}{'shared/alone':>14}  decodes (n x batch)")
    for n in args.callers:
        r = bench(lm, n, seconds=args.seconds, repeats=args.repeats, wait_s=args.wait, options=options)
        for name in ("alone", "shared"):
            t: Timing = r[name]
            ratio = f"{r['alone'].wall_s / t.wall_s:.2f}x" if name == "shared" else ""
            print(f"{n if name == 'alone' else '':>7}{name:>8}{t.wall_s:>9.2f}{t.steps_per_s:>10.1f}"
                  f"{t.jobs_per_s:>9.2f}{ratio:>14}  {_sizes(t.batches) if name == 'shared' else ''}")
    print("steps/s and jobs/s count every caller (decode steps or calls per wall second)")


if __name__ == "__main__":
    main()

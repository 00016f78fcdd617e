"""MusicGen decoding speed, stock ``generate()`` and our fast decoder side by side.

Builds the architectures from config with random weights (no download): the tiny debug model
(default), the official small, medium and large sizes (``--official``, meant for a GPU) or the
ones named with ``--sizes``. Batch 1, classifier-free guidance 3, top-k 250 sampling, text in
and audio out (text encoder, decode loop and EnCodec decode all timed), for each size:

* steps/s: decode steps (frames + 3 for the delay pattern) per wall second;
* RTF: wall seconds per second of audio (< 1 is faster than real time);
* peak memory: CUDA ``max_memory_allocated`` during the call, or on a CPU the growth of the
  process's resident memory during the call (sampled every 5 ms);
* fast/stock: the speed-up.

    .venv/bin/python benchmarks/bench_musicgen.py --threads 1                 # debug model, CPU
    .venv/bin/python benchmarks/bench_musicgen.py --sizes debug small --threads 2 --seconds 2
    .venv/bin/python benchmarks/bench_musicgen.py --official --device cuda --dtype float16

On CUDA the fast decoder captures its step in a CUDA graph (capture time included);
``--mode eager|static|graph|compiled`` forces a step mode, and several modes are timed side by
side (each against the same stock run). "compiled" is the step's forward under
``torch.compile`` (``reduce-overhead`` on CUDA); its first call compiles, and that time is
printed on its own line rather than counted in steps/s (the timed calls reuse the compiled step).
The one GPU command for the choice between CUDA graphs and torch.compile:

    .venv/bin/python benchmarks/bench_musicgen.py --official --device cuda --dtype float16 --mode graph compiled

``--variations N`` instead times N takes of one text on the fast decoder: N sequential
batch-of-one runs against one batch of N (each take with its own seed and random generator,
each take's codes decoded on its own, as the MusicGen generator makes variations). Its
steps/s counts every take's steps (N x steps per wall second).

    .venv/bin/python benchmarks/bench_musicgen.py --variations 4 --threads 1

Measured the same way (debug model, 1 thread, 5 s of audio per take, take-steps/s, shared CPU
so a few percent of noise): 2 takes 426 in turn -> 660 batched (1.55x), 4 takes 356 -> 936
(2.6x), 8 takes 436 -> 886 (2.0x). On a GPU the batch should gain more (a step reads the
weights once for every take); not measured here: no GPU was lent to this task.

Measured on the shared 2-core CPU of the development machine (torch 2.13, float32):
debug 507 -> 1130 steps/s (2.2x), debug-melody 584 -> 1044 (1.8x) with 1 thread and 5 s of
audio; the musicgen-small architecture 4.2 -> 4.6 steps/s (1.10x) with 2 threads and 3 s of
audio (10.0 -> 10.3 with 1 s). At that size a CPU step is bound by reading the ~1.7 GB of
float32 decoder weights (~420 M parameters), not by the host overhead the fast loop removes;
an earlier 1.75x reading for small (6.8 -> 11.8) was not reproduced on later runs of this
shared machine.
``--mode eager compiled`` on the same CPU: debug 982 (eager) vs 922 (compiled) steps/s with 1
thread, first compiled call 8 s with torch's compile cache warm (33 s cold); small 10.3 vs 8.3 with
2 threads and 1 s of audio, first compiled call 48 s. So on a CPU torch.compile does not pay.
No GPU numbers yet: run the ``--official --device cuda --dtype float16 --mode graph compiled``
line on one.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.musicgen.configs import build_random_model
from models.musicgen.fast_decode import STEP_MODES, FastMusicGenDecoder
from models.musicgen.loading import codec_hop
from models.musicgen.token_picking import PickOptions
from models.musicgen.tokenizer import VOCAB_SIZE, build_debug_tokenizer

PROMPT = "lo-fi funk with warm rhodes, 92 bpm"


@dataclass(frozen=True)
class Timing:
    """One decoder's best run: wall seconds, steps/s, real-time factor, peak memory (MiB)."""

    wall_s: float
    steps_per_s: float
    rtf: float
    peak_mib: float


class _RssPeak:
    """Highest resident set size seen while active (CPU runs), in bytes above the start."""

    def __init__(self) -> None:
        self._page = 4096
        self._stop = threading.Event()
        self.start = self.peak = self._rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _rss(self) -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * self._page

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> _RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _measure(run: Callable[[], Any], device: str, repeats: int, steps: int, audio_s: float) -> Timing:
    """Best of ``repeats`` timed calls of ``run`` (after one warm-up call)."""
    run()
    best, peak = float("inf"), 0.0
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            t0 = time.perf_counter()
            run()
            torch.cuda.synchronize()
            wall = time.perf_counter() - t0
            peak = max(peak, (torch.cuda.max_memory_allocated() - base) / 2**20)
        else:
            with _RssPeak() as rss:
                t0 = time.perf_counter()
                run()
                wall = time.perf_counter() - t0
            peak = max(peak, (rss.peak - rss.start) / 2**20)
        best = min(best, wall)
    return Timing(best, steps / best, best / audio_s, peak)


def bench(size: str, *, melody: bool, device: str, dtype: torch.dtype, seconds: float, repeats: int,
          modes: list[str | None]) -> dict[str, Any]:
    """Stock and fast decoding (once per step mode) of ``seconds`` of audio with one model, all
    timed the same way; ``first_s`` is each fast mode's first call (compiling, capturing)."""
    torch.manual_seed(0)
    model = build_random_model(size, melody=melody, text_vocab_size=VOCAB_SIZE).to(device, dtype).eval()
    tok = build_debug_tokenizer()
    inputs = {k: v.to(device) for k, v in tok([PROMPT], return_tensors="pt").items()}
    chroma = None
    if melody:
        chroma = torch.zeros(1, 235, 12, device=device, dtype=dtype)
        chroma[:, :, 0] = 1
    extra = {"input_features": chroma} if chroma is not None else {}
    steps, audio_s = _schedule(model, seconds)
    options = PickOptions(guidance_scale=3.0, top_k=250)

    def stock() -> Any:
        with torch.inference_mode():
            return model.generate(**inputs, **extra, do_sample=True, top_k=250, guidance_scale=3.0,
                                  max_new_tokens=steps)

    def ours(fast: FastMusicGenDecoder) -> Callable[[], Any]:
        def run() -> Any:
            codes = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], max_new_tokens=steps,
                                        options=options, chroma=chroma)
            return fast.decode_audio(codes)

        return run

    with torch.inference_mode():
        a = stock()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    result: dict[str, Any] = {
        "params_m": params, "steps": steps, "audio_s": audio_s,
        "stock": _measure(stock, device, repeats, steps, audio_s), "fast": [],
    }
    for mode in modes:
        fast = FastMusicGenDecoder(model, mode=mode)
        run = ours(fast)
        t0 = time.perf_counter()
        b = run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        first_s = time.perf_counter() - t0
        if a.shape != b.shape:
            raise RuntimeError(f"stock made {tuple(a.shape)} audio, fast/{fast.mode} {tuple(b.shape)}")
        result["fast"].append((fast.mode, first_s, _measure(run, device, repeats, steps, audio_s)))
    return result


def _schedule(model: Any, seconds: float) -> tuple[int, float]:
    """Decode steps for ``seconds`` of audio (delay pattern included) and the audio they make, s."""
    frame_rate = model.config.audio_encoder.sampling_rate / codec_hop(model)
    codebooks = model.config.decoder.num_codebooks
    steps = int(seconds * frame_rate) + codebooks - 1
    return steps, (steps - codebooks + 1) / frame_rate


def bench_variations(size: str, count: int, *, device: str, dtype: torch.dtype, seconds: float, repeats: int,
                     mode: str | None) -> dict[str, Any]:
    """``count`` takes of one text on the fast decoder: one after another, then as one batch."""
    torch.manual_seed(0)
    model = build_random_model(size, melody=False, text_vocab_size=VOCAB_SIZE).to(device, dtype).eval()
    tok = build_debug_tokenizer()
    one = {k: v.to(device) for k, v in tok([PROMPT], return_tensors="pt").items()}
    many = {k: v.to(device) for k, v in tok([PROMPT] * count, return_tensors="pt").items()}
    steps, audio_s = _schedule(model, seconds)
    fast = FastMusicGenDecoder(model, mode=mode)
    options = PickOptions(guidance_scale=3.0, top_k=250)

    def generators() -> list[torch.Generator]:
        return [torch.Generator(device=device).manual_seed(seed) for seed in range(count)]

    def sequential() -> Any:
        out = []
        for gen in generators():
            codes = fast.generate_codes(one["input_ids"], one["attention_mask"], max_new_tokens=steps,
                                        options=options, generators=[gen])
            out.append(fast.decode_audio(codes))
        return out

    def batched() -> Any:
        codes = fast.generate_codes(many["input_ids"], many["attention_mask"], max_new_tokens=steps,
                                    options=options, generators=generators())
        return [fast.decode_audio(codes[i : i + 1]) for i in range(count)]

    a, b = sequential(), batched()
    if not all(torch.equal(x, y) for x, y in zip(a, b, strict=True)) and not device.startswith("cuda"):
        raise RuntimeError("batched takes differ from the sequential ones on a CPU")
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "steps": steps, "mode": fast.mode,
        "sequential": _measure(sequential, device, repeats, steps * count, audio_s * count),
        "batched": _measure(batched, device, repeats, steps * count, audio_s * count),
    }


def _print_variations(args: argparse.Namespace, sizes: list[str], dtype: torch.dtype, seconds: float) -> None:
    n = args.variations
    print(f"{'model':<14}{'params(M)':>10}{'steps':>6}{'takes':>14}{'wall s':>9}{'steps/s':>9}{'RTF':>8}"
          f"{'mem MiB':>10}{'batch/seq':>11}")
    for size in sizes:
        r = bench_variations(size, n, device=args.device, dtype=dtype, seconds=seconds, repeats=args.repeats,
                             mode=args.mode[0] if args.mode else None)
        for name, tag in (("sequential", f"{n} in turn"), ("batched", f"batch of {n}")):
            t: Timing = r[name]
            ratio = f"{r['sequential'].wall_s / t.wall_s:.2f}x" if name == "batched" else ""
            head = (size, f"{r['params_m']:.1f}", str(r["steps"])) if name == "sequential" else ("", "", "")
            print(f"{head[0]:<14}{head[1]:>10}{head[2]:>6}{tag:>14}{t.wall_s:>9.2f}{t.steps_per_s:>9.1f}"
                  f"{t.rtf:>8.3f}{t.peak_mib:>10.0f}{ratio:>11}")
    print(f"steps/s and RTF count all {n} takes (steps x {n} per wall second; wall seconds per second of audio made)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", action="store_true", help="benchmark small, medium, large (GPU)")
    parser.add_argument("--sizes", nargs="+", choices=["debug", "small", "medium", "large"], default=None,
                        help="architectures to run (overrides --official)")
    parser.add_argument("--melody", action="store_true", help="also the melody architecture")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--mode", nargs="+", default=None, choices=list(STEP_MODES),
                        help="fast step mode(s), timed side by side (default: the automatic choice)")
    parser.add_argument("--seconds", type=float, default=None, help="audio seconds per call")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--variations", type=int, default=None, metavar="N",
                        help="time N takes of one text batched against N sequential runs (fast decoder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = args.device.startswith("cuda")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if on_cuda else torch.float32)
    sizes = args.sizes or (["small", "medium", "large"] if args.official else ["debug"])
    seconds = args.seconds or (10.0 if on_cuda else 5.0)
    device_name = torch.cuda.get_device_name() if on_cuda else f"cpu x{torch.get_num_threads()} threads"
    if args.variations is not None and args.variations < 1:
        parser.error(f"--variations {args.variations}: give 1 or more takes")
    if args.variations and args.mode and len(args.mode) > 1:
        parser.error("--variations times one step mode; give one --mode")
    batch = f"{args.variations} takes" if args.variations else "batch 1"
    print(f"device: {device_name}, dtype: {str(dtype).removeprefix('torch.')}, torch {torch.__version__}, "
          f"{batch}, CFG 3.0, top-k 250, {seconds:g} s audio, best of {args.repeats}")
    if args.variations:
        _print_variations(args, sizes, dtype, seconds)
        return
    mem = "peak MiB" if on_cuda else "RSS+ MiB"
    print(f"{'model':<14}{'params(M)':>10}{'steps':>6}{'decoder':>14}{'wall s':>9}{'steps/s':>9}{'RTF':>8}"
          f"{mem:>10}{'fast/stock':>11}")
    runs = [(s, False) for s in sizes]
    if args.melody:
        runs.append(("medium" if "medium" in sizes else sizes[0], True))
    for size, melody in runs:
        r = bench(size, melody=melody, device=args.device, dtype=dtype, seconds=seconds, repeats=args.repeats,
                  modes=args.mode or [None])
        if on_cuda:
            torch.cuda.empty_cache()  # the model is gone with bench()'s frame
        label = f"{size}{'-melody' if melody else ''}"
        stock: Timing = r["stock"]
        rows = [("stock", stock, "")] + [
            (f"fast/{mode}", t, f"{stock.wall_s / t.wall_s:.2f}x") for mode, _, t in r["fast"]
        ]
        for i, (tag, t, ratio) in enumerate(rows):
            a, b, c = (label, f"{r['params_m']:.1f}", str(r["steps"])) if i == 0 else ("", "", "")
            print(f"{a:<14}{b:>10}{c:>6}{tag:>14}{t.wall_s:>9.2f}{t.steps_per_s:>9.1f}{t.rtf:>8.3f}"
                  f"{t.peak_mib:>10.0f}{ratio:>11}")
        firsts = ", ".join(f"fast/{mode} {first:.2f} s" for mode, first, _ in r["fast"])
        print(f"{'':<14}first call (compile / capture included): {firsts}")
    print("RTF = wall seconds per second of audio (< 1 is faster than real time)")


if __name__ == "__main__":
    main()

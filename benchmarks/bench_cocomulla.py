"""Coco-Mulla's decoding speed: plain MusicGen (fast decoder) vs Coco-Mulla on the stock and fast loops.

One architecture, one run: built from config with random weights (no download), the tiny debug
size by default (CPU) or an official size with ``--official SIZE`` (musicgen-large is the one
the released adapter fits; meant for a GPU: fp16 base weights with the fp32 adapter, as the
authors run it). Batch 1, CFG 3, top-k 250, text in and audio out (text encoder, decode loop and
EnCodec decode all timed; the adapter's condition stream, computed once per window, too):

* ``musicgen fast``: :class:`~models.musicgen.fast_decode.FastMusicGenDecoder`, no adapter;
* ``cocomulla stock``: transformers ``generate()`` with the condition attention attached;
* ``cocomulla fast``: :class:`~models.cocomulla.fast.CocoMullaFastDecoder` (CUDA graphs on CUDA).

Each reports decode steps (frames + codebooks - 1) per wall second, best of ``--repeats`` rounds
after a warm-up round (each round runs the three loops in turn). The two Coco-Mulla loops start from the same seed, and the run says whether their
audio came out identical (it does in float32 on a CPU; half precision on a GPU rounds the two
loops' kernels differently).

    .venv/bin/python benchmarks/bench_cocomulla.py --threads 1                     # debug, CPU
    .venv/bin/python benchmarks/bench_cocomulla.py --official large --device cuda --dtype float16

Measured on the shared 2-core CPU of the development machine (debug model, float32, 1 thread,
4 s of audio = 203 steps, best of 5 rounds, other jobs loading the machine to 2.5-6 so the
numbers wander by 2x between runs): musicgen fast 1040-1096 steps/s, cocomulla stock 336-412,
cocomulla fast 540-969 (1.6-2.4x stock), the stock and fast audio identical in every run. The
musicgen-small architecture did not finish within 10 minutes on that loaded CPU. No GPU numbers:
no GPU was lent to this task; run the ``--official large`` line on one.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from models.cocomulla.adapter import attached
from models.cocomulla.fast import CocoMullaFastDecoder
from models.cocomulla.features import ContentFrames
from models.cocomulla.generation import ConditionedWindows
from models.cocomulla.generator import debug_adapter
from models.musicgen.configs import build_random_model
from models.musicgen.fast_decode import STEP_MODES, FastMusicGenDecoder
from models.musicgen.token_picking import PickOptions
from models.musicgen.tokenizer import VOCAB_SIZE, build_debug_tokenizer

RUNS = ("musicgen_fast", "cocomulla_stock", "cocomulla_fast")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _content(codebooks: int, vocab: int) -> Callable[[float, int], ContentFrames]:
    def content(start_s: float, frames: int) -> ContentFrames:
        rng = np.random.default_rng(0)
        chords = np.zeros((frames, 37), np.float32)
        chords[:, 0] = chords[:, 12] = chords[:, 24] = chords[:, 28] = chords[:, 31] = 1  # C major
        roll = np.zeros((frames, 128), np.float32)
        roll[:, [48, 60, 64, 67]] = 1
        codes = rng.integers(0, vocab, (codebooks, frames))
        on = np.ones(frames, bool)
        return ContentFrames(chords, roll, codes, on, on)

    return content


def bench(
    *, size: str, device: str, dtype: torch.dtype, seconds: float, repeats: int, mode: str | None = None,
) -> dict[str, Any]:
    """Time the three loops on one architecture.

    Args:
        size: "debug" or an official size ("small", "medium", "large").
        device: torch device.
        dtype: base-model dtype (the adapter stays float32).
        seconds: audio per run.
        repeats: timed runs per loop (after one warm-up run).
        mode: fast step mode (one of ``STEP_MODES``; None: graph on CUDA, else eager).

    Returns:
        ``{loop}_steps_per_s`` for :data:`RUNS`, ``steps``, ``mode``, ``adapter_params_m``,
        ``adapter_dtype``, ``same_audio`` (the two Coco-Mulla loops' audio identical).
    """
    torch.manual_seed(0)
    model = build_random_model(size, text_vocab_size=VOCAB_SIZE).to(device, dtype).eval()
    decoder = model.decoder
    adapter = debug_adapter(decoder)  # float32 parameters on the model's device
    inputs = {k: v.to(device) for k, v in build_debug_tokenizer()(["funk, 100 bpm"], return_tensors="pt").items()}
    frames = int(seconds * 50)
    steps = frames + int(decoder.config.num_codebooks) - 1
    hook = ConditionedWindows(decoder, adapter, _content(int(decoder.config.num_codebooks), int(decoder.config.vocab_size)))
    options = PickOptions(guidance_scale=3.0, top_k=250)
    plain_mode = FastMusicGenDecoder(model, mode=mode).mode

    def musicgen_fast() -> Any:
        fast = FastMusicGenDecoder(model, mode=mode)
        codes = fast.generate_codes(inputs["input_ids"], inputs["attention_mask"], max_new_tokens=steps, options=options)
        return fast.decode_audio(codes)

    def cocomulla_stock() -> Any:
        with hook(0.0, frames) as states, attached(decoder, states.repeated(2)):
            return model.generate(**inputs, do_sample=True, top_k=250, guidance_scale=3.0, max_new_tokens=steps)

    def cocomulla_fast() -> Any:
        with hook(0.0, frames) as states:
            fast = CocoMullaFastDecoder(model, states, mode=mode)
            codes = fast.generate_codes(
                inputs["input_ids"], inputs["attention_mask"], max_new_tokens=steps, options=options
            )
            return fast.decode_audio(codes)

    runs = dict(zip(RUNS, (musicgen_fast, cocomulla_stock, cocomulla_fast), strict=True))
    times: dict[str, list[float]] = {name: [] for name in RUNS}
    audio: dict[str, Any] = {}
    with torch.inference_mode():
        for i in range(repeats + 1):  # the first round warms up; rounds interleave the loops
            for name, run in runs.items():  # (so a shared machine's load drifts over all three)
                torch.manual_seed(1)
                _sync(device)
                t0 = time.perf_counter()
                audio[name] = run()
                _sync(device)
                if i:
                    times[name].append(time.perf_counter() - t0)
    out: dict[str, Any] = {f"{name}_steps_per_s": steps / min(times[name]) for name in RUNS}
    out["same_audio"] = bool(torch.equal(audio["cocomulla_stock"], audio["cocomulla_fast"]))
    out["adapter_params_m"] = sum(p.numel() for p in adapter.parameters()) / 1e6
    out["adapter_dtype"] = str(adapter.pos_emb.dtype).removeprefix("torch.")
    out["steps"] = steps
    out["mode"] = plain_mode
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", choices=("small", "medium", "large"), default=None,
                        help="an official MusicGen architecture (large for the released adapter; GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--mode", default=None, choices=STEP_MODES, help="fast step mode")
    parser.add_argument("--seconds", type=float, default=None, help="audio per run (default 4, 20 with --official)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = args.official or "debug"
    seconds = args.seconds if args.seconds is not None else (20.0 if args.official else 4.0)
    r = bench(size=size, device=args.device, dtype=getattr(torch, args.dtype), seconds=seconds,
              repeats=args.repeats, mode=args.mode)
    plain, stock, fast = (r[f"{n}_steps_per_s"] for n in RUNS)
    print(
        f"{size} {args.device} {args.dtype} (adapter {r['adapter_dtype']}, {r['adapter_params_m']:.2f} M params), "
        f"{r['steps']} steps, fast mode {r['mode']}:\n"
        f"  musicgen fast    {plain:8.1f} steps/s\n"
        f"  cocomulla stock  {stock:8.1f} steps/s\n"
        f"  cocomulla fast   {fast:8.1f} steps/s  ({fast / stock:.2f}x stock; adapter costs the fast loop "
        f"{100 * (plain / fast - 1):+.1f} % time)\n"
        f"  cocomulla stock and fast audio identical: {'yes' if r['same_audio'] else 'no'}"
    )


if __name__ == "__main__":
    main()

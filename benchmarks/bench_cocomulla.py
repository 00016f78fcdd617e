"""Coco-Mulla's overhead: generate() steps/s with the adapter vs the same MusicGen without it.

One model, one run: the architecture is built from config with random weights (no download),
the tiny debug size by default (CPU) or musicgen-large with ``--large`` (GPU; fp16 base with
the fp32 adapter). Batch 1, CFG 3, top-k 250, stock ``model.generate()`` with the KV cache and
the EnCodec decode. The adapter's condition stream is computed once per window and is included
in the timed call.

    .venv/bin/python benchmarks/bench_cocomulla.py                       # debug, CPU
    .venv/bin/python benchmarks/bench_cocomulla.py --large --device cuda --dtype float16
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from models.cocomulla.features import ContentFrames
from models.cocomulla.generation import ConditionedWindows
from models.cocomulla.generator import debug_adapter
from models.musicgen.configs import build_random_model
from models.musicgen.tokenizer import VOCAB_SIZE, build_debug_tokenizer


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


def bench(*, large: bool, device: str, dtype: torch.dtype, seconds: float, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_random_model("large" if large else "debug", text_vocab_size=VOCAB_SIZE).to(device, dtype).eval()
    decoder = model.decoder
    adapter = debug_adapter(decoder)  # fp32 parameters on the model's device
    inputs = {k: v.to(device) for k, v in build_debug_tokenizer()(["funk, 100 bpm"], return_tensors="pt").items()}
    frames = int(seconds * 50)
    steps = frames + decoder.config.num_codebooks - 1
    hook = ConditionedWindows(decoder, adapter, _content(decoder.config.num_codebooks, decoder.config.vocab_size), guidance_scale=3.0)
    kwargs = {"do_sample": True, "top_k": 250, "guidance_scale": 3.0, "max_new_tokens": steps}
    out: dict[str, float] = {}
    with torch.inference_mode():
        for name, ctx in (("musicgen", None), ("cocomulla", hook)):
            times = []
            for i in range(repeats + 1):  # first run warms up
                _sync(device)
                t0 = time.perf_counter()
                if ctx is None:
                    model.generate(**inputs, **kwargs)
                else:
                    with ctx(0.0, frames):
                        model.generate(**inputs, **kwargs)
                _sync(device)
                if i:
                    times.append(time.perf_counter() - t0)
            out[f"{name}_steps_per_s"] = steps / min(times)
    out["overhead_percent"] = 100 * (out["musicgen_steps_per_s"] / out["cocomulla_steps_per_s"] - 1)
    out["adapter_params_m"] = sum(p.numel() for p in adapter.parameters()) / 1e6
    out["steps"] = steps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="musicgen-large architecture (GPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--seconds", type=float, default=None, help="audio per run (default 4, 20 with --large)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = args.seconds if args.seconds is not None else (20.0 if args.large else 4.0)
    r = bench(large=args.large, device=args.device, dtype=getattr(torch, args.dtype), seconds=seconds, repeats=args.repeats)
    size = "large" if args.large else "debug"
    print(
        f"{size} {args.device} {args.dtype}: musicgen {r['musicgen_steps_per_s']:.1f} steps/s, "
        f"cocomulla {r['cocomulla_steps_per_s']:.1f} steps/s ({r['overhead_percent']:+.1f} % time), "
        f"adapter {r['adapter_params_m']:.2f} M params, {r['steps']:.0f} steps"
    )


if __name__ == "__main__":
    main()

"""Baseline speed of stock MusicGen generate(): steps per second and real-time factor.

Builds the architectures from config with random weights (no download): the official small,
medium and large sizes (``--official``, meant for a GPU) or the tiny debug model (default, CPU).
Batch 1, classifier-free guidance 3, top-k 250 sampling, stock ``model.generate()`` including
the EnCodec decode. Later performance work must beat these numbers.

    .venv/bin/python benchmarks/bench_musicgen.py                      # debug model, CPU
    .venv/bin/python benchmarks/bench_musicgen.py --official --device cuda --dtype float16
"""

from __future__ import annotations

import argparse
import time

import torch

from models.musicgen.configs import build_random_model
from models.musicgen.tokenizer import VOCAB_SIZE, build_debug_tokenizer


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(size: str, *, melody: bool, device: str, dtype: torch.dtype, seconds: float, repeats: int) -> dict[str, float]:
    """Time generate() for ``seconds`` of audio; returns steps/s, real-time factor and wall time."""
    torch.manual_seed(0)
    model = build_random_model(size, melody=melody, text_vocab_size=VOCAB_SIZE).to(device, dtype)
    tok = build_debug_tokenizer()
    inputs = {k: v.to(device) for k, v in tok(["lo-fi funk with warm rhodes, 92 bpm"], return_tensors="pt").items()}
    extra = {}
    if melody:
        extra["input_features"] = torch.zeros(1, 235, 12, device=device, dtype=dtype)
        extra["input_features"][:, :, 0] = 1
    frame_rate = model.config.audio_encoder.sampling_rate / 640
    steps = int(seconds * frame_rate) + model.config.decoder.num_codebooks - 1
    kwargs = {"do_sample": True, "top_k": 250, "guidance_scale": 3.0}
    with torch.inference_mode():
        model.generate(**inputs, **extra, **kwargs, max_new_tokens=8)  # warm-up
        times = []
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            audio = model.generate(**inputs, **extra, **kwargs, max_new_tokens=steps)
            _sync(device)
            times.append(time.perf_counter() - t0)
    wall = min(times)
    audio_s = audio.shape[-1] / model.config.audio_encoder.sampling_rate
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return {"params_m": params, "steps": steps, "wall_s": wall, "steps_per_s": steps / wall,
            "audio_s": audio_s, "rtf": wall / audio_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", action="store_true", help="benchmark small, medium, large (GPU)")
    parser.add_argument("--melody", action="store_true", help="also the melody architecture")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--seconds", type=float, default=None, help="audio seconds per call")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.float16 if args.device.startswith("cuda") else torch.float32)
    sizes = ["small", "medium", "large"] if args.official else ["debug"]
    seconds = args.seconds or (10.0 if args.official else 5.0)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {device_name}, dtype: {dtype}, batch 1, CFG 3.0, top-k 250, {seconds:g} s audio, best of {args.repeats}")
    print(f"{'model':<16}{'params(M)':>10}{'steps':>7}{'wall s':>9}{'steps/s':>9}{'RTF':>8}")
    runs = [(s, False) for s in sizes] + ([("melody" if args.official else "debug", True)] if args.melody else [])
    for size, melody in runs:
        r = bench(size, melody=melody, device=args.device, dtype=dtype, seconds=seconds, repeats=args.repeats)
        label = f"{size}{'-melody' if melody and size != 'melody' else ''}"
        print(f"{label:<16}{r['params_m']:>10.1f}{r['steps']:>7d}{r['wall_s']:>9.2f}{r['steps_per_s']:>9.1f}{r['rtf']:>8.3f}")
    print("RTF = wall seconds per second of audio (< 1 is faster than real time)")


if __name__ == "__main__":
    main()

"""Time basic-pitch melody transcription on 60 s of synthetic humming.

Reports the first call in a fresh process (imports librosa/basic-pitch, loads the ONNX model,
compiles whatever numba code the path touches) and the warm calls after it, split into the
network and note creation + cleaning. Target: warm < 5 s for 60 s of audio. Run::

    .venv/bin/python benchmarks/bench_melody.py [--seconds 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _hum(seconds: float, sample_rate: int) -> np.ndarray:
    spec = importlib.util.spec_from_file_location("make_hum", REPO / "examples" / "make_hum.py")
    if spec is None or spec.loader is None:
        raise ImportError("examples/make_hum.py not found")
    mh = importlib.util.module_from_spec(spec)
    sys.modules["make_hum"] = mh
    spec.loader.exec_module(mh)
    base = mh.example_notes()
    span = base[-1].end_s + 0.6
    notes = []
    k = 0
    while k * span < seconds:
        notes += [mh.SungNote(n.start_s + k * span, n.end_s + k * span, n.pitch, n.loudness) for n in base]
        k += 1
    notes = [n for n in notes if n.end_s < seconds - 0.5]
    samples = mh.synth_voice(notes, sample_rate, seed=3).samples
    n = int(seconds * sample_rate)
    return np.asarray(np.pad(samples, (0, max(0, n - samples.size)))[:n])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="basic-pitch melody transcription timing")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from conditioning.types import Audio

    audio = Audio(_hum(args.seconds, args.sample_rate)[None, :], args.sample_rate)
    print(f"audio: {audio.duration_s:.1f} s at {audio.sample_rate} Hz")

    t = time.perf_counter()
    from conditioning import basic_pitch_runner as bpr
    from conditioning.melody import clean_notes
    from conditioning.timeline import TempoMap

    tm = TempoMap.constant(92.0)
    import_s = time.perf_counter() - t
    t = time.perf_counter()
    melody = bpr.transcribe_melody(audio, tm)
    first_s = time.perf_counter() - t
    print(f"import {import_s:.2f} s; first call {first_s:.2f} s ({len(melody.notes)} notes)")

    warm, net, notes_t = [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = bpr.run_model(audio)
        t1 = time.perf_counter()
        clean_notes(bpr.notes_from_output(out))
        t2 = time.perf_counter()
        net.append(t1 - t0)
        notes_t.append(t2 - t1)
        t = time.perf_counter()
        bpr.transcribe_melody(audio, tm)
        warm.append(time.perf_counter() - t)
    print(
        f"warm transcribe_melody: median {np.median(warm):.2f} s (min {min(warm):.2f}, max {max(warm):.2f}) "
        f"= network {np.median(net):.2f} s + notes/cleaning {np.median(notes_t):.2f} s; "
        f"real-time factor {np.median(warm) / audio.duration_s:.3f}"
    )
    print(f"load average (other processes share the CPU): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("target warm < 5 s:", "PASS" if np.median(warm) < 5.0 else "FAIL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: generate and render a 3-minute, 4-stem song with the arranger; print the real-time factor.

Run: ``.venv/bin/python benchmarks/bench_arranger.py [--sample-rate 48000] [--prompt "..."]``.
The real-time factor is seconds of song per second of wall time (higher is faster; the target
is at least 30 on a 2-core machine).
"""

from __future__ import annotations

import argparse
import time

from conditioning.timeline import Section, TempoMap
from conditioning.types import ChordProgression, ChordSpan, Key, SectionConditioning
from models.arranger.generator import ArrangerGenerator

#: (name, bars) of a typical pop song form; 70 bars of 4/4 at 92 bpm are about 3 minutes.
FORM = (
    ("Intro", 4),
    ("Verse 1", 8),
    ("Pre-Chorus 1", 4),
    ("Chorus 1", 8),
    ("Verse 2", 8),
    ("Pre-Chorus 2", 4),
    ("Chorus 2", 8),
    ("Bridge", 8),
    ("Chorus 3", 8),
    ("Post-Chorus", 4),
    ("Outro", 6),
)
PROGRESSION = ("A:min7", "F:maj7", "C:maj", "G:7/3")


def song(bpm: float, sample_rate: int, prompt: str) -> list[SectionConditioning]:
    """The benchmark song: sections in order, chords one per bar, all four stems."""
    tm = TempoMap.constant(bpm)
    sections = []
    bar = 1
    for name, length in FORM:
        sections.append(Section.from_bars(name, bar, bar + length, tm))
        bar += length
    spans = tuple(ChordSpan(PROGRESSION[i % 4], tm.bar_to_beat(i + 1), tm.bar_to_beat(i + 2)) for i in range(bar - 1))
    chords = ChordProgression(spans, Key(9, "minor"))
    out = []
    for i, sec in enumerate(sections):
        out.append(
            SectionConditioning(
                section=sec,
                tempo_map=tm,
                sample_rate=sample_rate,
                prompt=prompt,
                stems=("drums", "bass", "keys", "lead"),
                chords=chords,
                key=chords.key,
                previous=sections[i - 1] if i else None,
                next=sections[i + 1] if i + 1 < len(sections) else None,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--bpm", type=float, default=92.0)
    parser.add_argument("--prompt", default="lo-fi funk, warm rhodes, dusty drums, sax lead")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="render threads (default: one per core)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; the best is reported")
    args = parser.parse_args()
    conds = song(args.bpm, args.sample_rate, args.prompt)
    audio_s = sum(c.section.length_seconds(c.tempo_map) for c in conds)
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        generator = ArrangerGenerator(workers=args.workers)
        for c in conds:
            generator.generate(c, seed=args.seed)
        best = min(best, time.perf_counter() - t0)
    print(
        f"arranger: {len(conds)} sections, 4 stems, {audio_s:.1f} s of audio at {args.sample_rate} Hz "
        f"in {best:.2f} s -> real-time factor {audio_s / best:.1f}x (target >= 30x)"
    )


if __name__ == "__main__":
    main()

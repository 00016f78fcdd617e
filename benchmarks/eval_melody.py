"""Evaluate melody transcription (basic-pitch raw notes vs our cleaned line) with mir_eval.

There is no annotated sung audio in the repository, so this script sings real melodies: the
MELODY tracks of POP909 songs (``../shared/data/pop909-dev/NNN/NNN.mid`` beside the repository), excerpts of
``--seconds`` each, transposed into a voice range and rendered by the synthetic voice of
``examples/make_hum.py`` (formants, vibrato, scoops, glides, breath, room noise and reverb),
half hummed and half sung on changing vowels.

Metrics (mir_eval):
    * onset F1: ``mir_eval.transcription.precision_recall_f1_overlap`` with ``offset_ratio=None``
      (onset within 50 ms *and* pitch within 50 cents), and the pitch-blind
      ``onset_precision_recall_f1``;
    * frame metrics on a 10 ms grid (``mir_eval.melody``): raw chroma accuracy, raw pitch
      accuracy, voicing recall/false alarm, and overall chroma accuracy (voicing + pitch class).

Raw notes are basic-pitch's polyphonic output; for the frame metrics the loudest raw note in a
frame stands for the frame. Run::

    .venv/bin/python benchmarks/eval_melody.py --songs 8 --seconds 25
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mir_eval
import numpy as np
import pretty_midi

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from conditioning.io.basic_pitch import (  # noqa: E402
    ModelOutput,
    TranscriptionOptions,
    clean_transcription,
    notes_from_output,
    run_model,
)
from conditioning.melody import RawNote  # noqa: E402
from conditioning.types import Audio  # noqa: E402

DATA = Path(os.environ.get("STEMBRIDGE_POP909", Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909-dev"))
HOP_S = 0.01


def _load_make_hum() -> object:
    spec = importlib.util.spec_from_file_location("make_hum", REPO / "examples" / "make_hum.py")
    if spec is None or spec.loader is None:
        raise ImportError("examples/make_hum.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_hum"] = module
    spec.loader.exec_module(module)
    return module


mh = _load_make_hum()


@dataclass
class Clip:
    """One synthetic sung excerpt with its reference notes (seconds)."""

    name: str
    ref: list[RawNote]
    audio: Audio
    output: ModelOutput | None = None


def excerpt(song: str, seconds: float, rng: np.random.Generator) -> list[RawNote]:
    """Reference notes of a song's MELODY track: ``seconds`` long, starting at a note."""
    pm = pretty_midi.PrettyMIDI(str(DATA / song / f"{song}.mid"))
    mel = next(i for i in pm.instruments if i.name.upper() == "MELODY")
    notes = sorted(mel.notes, key=lambda n: n.start)
    first = notes[int(rng.integers(0, max(1, len(notes) // 3)))].start
    picked = [n for n in notes if first <= n.start and n.end <= first + seconds]
    # Make it monophonic (a sung line): cut each note at the next onset.
    out: list[RawNote] = []
    for i, n in enumerate(picked):
        end = min(n.end, picked[i + 1].start) if i + 1 < len(picked) else n.end
        if end - n.start > 0.02:
            out.append(RawNote(n.start - first + 0.5, end - first + 0.5, int(n.pitch), 0.8))
    return out


def make_clips(n_songs: int, seconds: float, sample_rate: int, seed: int, cache: Path | None = None) -> list[Clip]:
    """Synthesise (or load from ``cache``) ``n_songs`` sung excerpts."""
    if cache is not None:
        path = cache / f"clips_{n_songs}_{seconds:g}_{sample_rate}_{seed}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return [
                    Clip(str(z[f"name{i}"]), [RawNote(float(a), float(b), int(p), float(v)) for a, b, p, v in z[f"ref{i}"]],
                         Audio(z[f"audio{i}"], int(z["sr"])))
                    for i in range(int(z["n"]))
                ]
        clips = make_clips(n_songs, seconds, sample_rate, seed)
        cache.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"n": np.array(len(clips)), "sr": np.array(sample_rate)}
        for i, c in enumerate(clips):
            arrays[f"name{i}"] = np.array(c.name)
            arrays[f"ref{i}"] = np.array([[n.start_s, n.end_s, n.pitch, n.amplitude] for n in c.ref])
            arrays[f"audio{i}"] = c.audio.samples
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return clips
    rng = np.random.default_rng(seed)
    songs = sorted(p.name for p in DATA.iterdir() if (p / f"{p.name}.mid").is_file())
    chosen = rng.choice(songs, size=min(n_songs, len(songs)), replace=False)
    clips = []
    for k, song in enumerate(sorted(chosen)):
        ref = excerpt(str(song), seconds, rng)
        hummed = k % 2 == 0
        # Transpose by octaves so the median sits in a male (~A3) or female (~E4/A4) range.
        target = float(rng.choice([57.0, 64.0, 67.0]))
        median = float(np.median([n.pitch for n in ref]))
        shift = int(12 * round((target - median) / 12))
        ref = [RawNote(n.start_s, n.end_s, n.pitch + shift, n.amplitude) for n in ref]
        style = mh.VoiceStyle(  # type: ignore[attr-defined]
            vowels=("m",) if hummed else ("a", "o", "e", "i", "u"),
            vibrato_cents=float(rng.uniform(20, 60)),
            scoop_semitones=float(rng.uniform(0.5, 2.0)),
            detune_cents=float(rng.uniform(-15, 15)),
            noise_db=float(rng.uniform(-60, -45)),
            reverb_wet=float(rng.uniform(0.05, 0.25)),
            legato_prob=float(rng.uniform(0.3, 0.8)),
        )
        sung = [mh.SungNote(n.start_s, n.end_s, n.pitch, float(rng.uniform(0.6, 1.0))) for n in ref]  # type: ignore[attr-defined]
        take = mh.synth_voice(sung, sample_rate, seed=seed + k, style=style)  # type: ignore[attr-defined]
        samples = take.samples
        # The reference follows the voice: a legato note sounds until the next one starts.
        ref = [RawNote(n.start_s, n.end_s, n.pitch, n.loudness) for n in take.notes]
        level = 10 ** (rng.uniform(-18, -3) / 20)
        audio = Audio((samples * level)[None, :], sample_rate)
        clips.append(Clip(f"{song}{'-hum' if hummed else '-sung'}", ref, audio))
    return clips


def _intervals(notes: Sequence[RawNote]) -> tuple[np.ndarray, np.ndarray]:
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    iv = np.array([[n.start_s, n.end_s] for n in notes])
    hz = np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in notes])
    return iv, hz


def _frames(notes: Sequence[RawNote], n_frames: int) -> np.ndarray:
    """f0 (Hz, 0 = unvoiced) per 10 ms frame; the loudest note wins where notes overlap."""
    f0 = np.zeros(n_frames)
    best = np.full(n_frames, -1.0)
    for n in notes:
        a, b = int(round(n.start_s / HOP_S)), min(n_frames, int(round(n.end_s / HOP_S)))
        if b <= a:
            continue
        sl = slice(a, b)
        win = n.amplitude > best[sl]
        f0[sl] = np.where(win, 440.0 * 2 ** ((n.pitch - 69) / 12), f0[sl])
        best[sl] = np.where(win, n.amplitude, best[sl])
    return f0


def score(ref: Sequence[RawNote], est: Sequence[RawNote], duration_s: float) -> dict[str, float]:
    """mir_eval transcription and frame metrics of ``est`` against ``ref``."""
    ri, rp = _intervals(ref)
    ei, ep = _intervals(est)
    out: dict[str, float] = {}
    if len(ei):
        _, _, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)
        _, _, fo = mir_eval.transcription.onset_precision_recall_f1(ri, ei)
    else:
        f = fo = 0.0
    out["note_onset_f1"] = float(f)
    out["onset_only_f1"] = float(fo)
    n = int(duration_s / HOP_S)
    t = np.arange(n) * HOP_S
    ref_f0, est_f0 = _frames(ref, n), _frames(est, n)
    rv, rc, ev, ec = mir_eval.melody.to_cent_voicing(t, ref_f0, t, est_f0)
    out["raw_chroma"] = float(mir_eval.melody.raw_chroma_accuracy(rv, rc, ev, ec))
    out["raw_pitch"] = float(mir_eval.melody.raw_pitch_accuracy(rv, rc, ev, ec))
    out["voicing_recall"], out["voicing_fa"] = (float(x) for x in mir_eval.melody.voicing_measures(rv, ev))
    # Overall chroma accuracy: voiced frames need the right pitch class, unvoiced need silence.
    voiced = rv > 0
    diff = np.abs(rc - ec) / 100.0
    chroma_ok = np.abs(diff - 12 * np.round(diff / 12)) < 0.5
    correct = np.where(voiced, (ev > 0) & chroma_ok, ev == 0)
    out["overall_chroma"] = float(np.mean(correct))
    return out


METRICS = ("note_onset_f1", "onset_only_f1", "raw_chroma", "overall_chroma", "raw_pitch", "voicing_recall", "voicing_fa")


def evaluate(clips: Sequence[Clip], options: TranscriptionOptions, verbose: bool) -> dict[str, dict[str, float]]:
    per: dict[str, list[dict[str, float]]] = {"raw": [], "clean": [], "untrimmed": []}
    for c in clips:
        if c.output is None:
            c.output = run_model(c.audio, options.normalize_peak)
        raw = notes_from_output(c.output, options)
        clean = clean_transcription(raw, c.audio, options)
        s_raw, s_clean = score(c.ref, raw, c.audio.duration_s), score(c.ref, clean, c.audio.duration_s)
        per["raw"].append(s_raw)
        per["clean"].append(s_clean)
        if options.release_drop_db is not None:
            untrimmed = clean_transcription(raw, c.audio, replace(options, release_drop_db=None))
            per["untrimmed"].append(score(c.ref, untrimmed, c.audio.duration_s))
        if verbose:
            print(
                f"  {c.name:10s} ref={len(c.ref):3d} raw={len(raw):3d} clean={len(clean):3d}  "
                + "  ".join(f"{k}={s_raw[k]:.3f}->{s_clean[k]:.3f}" for k in METRICS[:4])
            )
    return {k: {m: float(np.mean([s[m] for s in v])) for m in METRICS} for k, v in per.items() if v}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="raw vs cleaned basic-pitch melody, mir_eval scores")
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--onset-threshold", type=float, default=TranscriptionOptions.onset_threshold)
    parser.add_argument("--frame-threshold", type=float, default=TranscriptionOptions.frame_threshold)
    parser.add_argument("--min-note-s", type=float, default=TranscriptionOptions.min_note_s)
    parser.add_argument("--cache", type=Path, default=None, help="folder to cache synthesised clips in")
    parser.add_argument("--release-drop-db", type=float, default=None, help="also score releases trimmed at this level drop")
    parser.add_argument("--sweep", action="store_true", help="also try other note-creation thresholds")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    clips = make_clips(args.songs, args.seconds, args.sample_rate, args.seed, args.cache)
    print(f"synthesised {len(clips)} clips x {args.seconds:g} s in {time.perf_counter() - t:.1f} s")
    opts = TranscriptionOptions(
        onset_threshold=args.onset_threshold,
        frame_threshold=args.frame_threshold,
        min_note_s=args.min_note_s,
        release_drop_db=args.release_drop_db,
    )
    configs = [opts]
    if args.sweep:
        for on in (0.3, 0.4, 0.5, 0.6):
            for fr in (0.2, 0.3, 0.4):
                configs.append(TranscriptionOptions(onset_threshold=on, frame_threshold=fr, min_note_s=args.min_note_s))
    for i, o in enumerate(configs):
        res = evaluate(clips, o, verbose=i == 0)
        print(f"onset={o.onset_threshold} frame={o.frame_threshold} min_note={o.min_note_s}s")
        for which in res:
            print(f"  {which:5s} " + "  ".join(f"{m}={res[which][m]:.3f}" for m in METRICS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

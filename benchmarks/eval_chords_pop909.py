"""Chord-recognition and key accuracy on the POP909 development songs.

Usage::

    .venv/bin/python benchmarks/eval_chords_pop909.py --songs 41-60
    .venv/bin/python benchmarks/eval_chords_pop909.py --songs 1-40 --tracks all --no-pedal

Prints per-song and mean duration-weighted mir_eval ``majmin``, ``root`` and ``mirex`` scores
(mir_eval.chord.evaluate over the reference intervals, seconds) and key accuracy against
``key_audio.txt`` (the longest key span). Chords are in seconds through the MIDI file's own
tempo map, as ``stembridge analyze --role chords --json`` gives them.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import mir_eval
import numpy as np

from bridge.cli.analyze import chords_to_json
from conditioning.chords import (
    DEFAULT_PARAMS,
    RecognitionParams,
    accompaniment_notes,
    analyze_midi_chords,
    apply_sustain,
    chords_from_notes,
)
from conditioning.io.midi import read_midi
from conditioning.types import Note

DATA = Path(os.environ.get("STEMBRIDGE_POP909", Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909-dev"))


def parse_range(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def load_reference(song_dir: Path) -> tuple[np.ndarray, list[str]]:
    rows = [line.split("\t") for line in (song_dir / "chord_midi.txt").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if float(r[1]) > float(r[0])]
    intervals = np.array([[float(r[0]), float(r[1])] for r in rows])
    return intervals, [r[2].strip() for r in rows]


def reference_key(song_dir: Path) -> str:
    spans = [line.split() for line in (song_dir / "key_audio.txt").read_text().splitlines() if line.strip()]
    tonic, mode = max(spans, key=lambda s: float(s[1]) - float(s[0]))[2].split(":")
    return f"{tonic} {'major' if mode == 'maj' else 'minor'}"


def evaluate_song(num: int, tracks: str, pedal: bool, params: RecognitionParams) -> dict[str, float]:
    song_dir = DATA / f"{num:03d}"
    midi = read_midi(song_dir / f"{num:03d}.mid")
    notes: list[Note]
    if tracks == "auto" and pedal:
        prog = analyze_midi_chords(midi, params=params)
    else:
        if tracks == "auto":
            notes = accompaniment_notes(midi, pedal_extend_beats=0.0)
        elif tracks == "all":
            notes = list(midi.notes)
        elif tracks == "unnamed":  # track names stripped: the choice rests on polyphony alone
            anonymous = [replace(t, name="") for t in midi.tracks]
            notes = accompaniment_notes(replace(midi, tracks=tuple(anonymous)), pedal_extend_beats=0.0)
        else:
            track = midi.track_named(tracks)
            if track is None:
                raise SystemExit(f"song {num:03d} has no track named {tracks}")
            notes = list(track.notes)
        if pedal and tracks != "auto":
            notes = apply_sustain(notes, midi.pedal_spans)
        prog = chords_from_notes(notes, midi.tempo_map, params=params)
    doc = chords_to_json(prog, midi.tempo_map)
    chords = [c for c in doc["chords"] if c["end_s"] > c["start_s"]]
    est_int = np.array([[c["start_s"], c["end_s"]] for c in chords])
    est_lab = [c["label"] for c in chords]
    ref_int, ref_lab = load_reference(song_dir)
    est_int, est_lab = mir_eval.util.adjust_intervals(
        est_int, est_lab, ref_int.min(), ref_int.max(), mir_eval.chord.NO_CHORD, mir_eval.chord.NO_CHORD
    )
    scores = mir_eval.chord.evaluate(ref_int, ref_lab, est_int, est_lab)
    ref_key = reference_key(song_dir)
    key_score = mir_eval.key.weighted_score(ref_key, doc["key"]) if doc["key"] else 0.0
    return {"majmin": scores["majmin"], "root": scores["root"], "mirex": scores["mirex"],
            "key": float(key_score == 1.0), "key_weighted": key_score}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--songs", default="41-60", help="song range, e.g. 1-40 (default 41-60, held out)")
    ap.add_argument("--tracks", default="auto", help="auto (accompaniment), all, unnamed (auto with track names stripped), or a track name such as PIANO")
    ap.add_argument("--no-pedal", action="store_true", help="ignore the sustain pedal")
    ap.add_argument("--params", default="{}", help='JSON overrides of RecognitionParams, e.g. {"change_penalty": 2}')
    ap.add_argument("--quiet", action="store_true", help="print only the means")
    args = ap.parse_args()
    overrides = json.loads(args.params)
    if "quality_penalty" in overrides:
        overrides["quality_penalty"] = tuple(tuple(x) for x in overrides["quality_penalty"])
    params = replace(DEFAULT_PARAMS, **overrides)
    rows = []
    for num in parse_range(args.songs):
        if not (DATA / f"{num:03d}").is_dir():
            continue
        r = evaluate_song(num, args.tracks, not args.no_pedal, params)
        rows.append(r)
        if not args.quiet:
            print(f"{num:03d}  majmin {r['majmin']:.3f}  root {r['root']:.3f}  mirex {r['mirex']:.3f}  key {int(r['key'])}")
    means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print(f"MEAN over {len(rows)} songs ({args.songs}, tracks={args.tracks}, pedal={not args.no_pedal}): "
          + "  ".join(f"{k} {v:.4f}" for k, v in means.items()))


if __name__ == "__main__":
    main()

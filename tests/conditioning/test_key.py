"""Key estimation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conditioning.chords import chords_from_symbols
from conditioning.key import estimate_key, key_scores, pitch_class_histogram, tonic_triad_shares
from conditioning.types import Note

POP909 = Path(os.environ.get("STEMBRIDGE_POP909", Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909-dev"))


def scale_notes(tonic: int, steps: tuple[int, ...], weights: tuple[float, ...]) -> list[Note]:
    notes, t = [], 0.0
    for s, w in zip(steps, weights, strict=True):
        notes.append(Note(60 + tonic + s, t, t + w))
        t += w
    return notes


@pytest.mark.parametrize("tonic", [0, 2, 7, 10])
def test_major_scale_with_tonic_emphasis(tonic: int) -> None:
    notes = scale_notes(tonic, (0, 2, 4, 5, 7, 9, 11, 0, 4, 7), (2, 1, 1, 1, 2, 1, 0.5, 2, 1, 1))
    key = estimate_key(notes)
    assert (key.tonic, key.mode) == (tonic, "major")


def test_minor_key_from_chroma() -> None:
    chroma = np.zeros(12)
    for pc, w in {9: 5, 0: 3, 4: 4, 2: 1.5, 11: 1, 5: 1.5, 7: 1, 8: 1}.items():
        chroma[pc] = w
    key = estimate_key(chroma)
    assert key.name == "A minor"
    assert estimate_key(np.tile(chroma / 4, (4, 1))).name == "A minor"


def test_chords_settle_relative_keys() -> None:
    # The same pitch content (C major / A minor scale) — the chords decide.
    chroma = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=float)
    minor_song = chords_from_symbols([["A:min", 0, 8], ["D:min", 8, 12], ["E:7", 12, 14], ["A:min", 14, 20]])
    major_song = chords_from_symbols([["C:maj", 0, 8], ["F:maj", 8, 12], ["G:7", 12, 14], ["C:maj", 14, 20]])
    assert estimate_key(chroma, chords=minor_song).name == "A minor"
    assert estimate_key(chroma, chords=major_song).name == "C major"
    shares = tonic_triad_shares(minor_song)
    assert shares[12 + 9] == pytest.approx(14 / 20)
    assert shares.sum() == pytest.approx(1.0)


def test_histogram_and_scores_shapes() -> None:
    hist = pitch_class_histogram([Note(48, 0, 2), Note(64, 0, 1, 50)], bass_boost=1.0)
    assert hist[0] == pytest.approx(4.0) and hist[4] == pytest.approx(0.5)
    assert key_scores(hist).shape == (24,)


def test_errors() -> None:
    with pytest.raises(ValueError, match="no notes"):
        estimate_key([])
    with pytest.raises(ValueError, match="silent"):
        estimate_key(np.zeros(12))
    with pytest.raises(ValueError, match="12 pitch classes"):
        estimate_key(np.ones(7))
    with pytest.raises(ValueError, match="profile"):
        key_scores(np.ones(12), "nonsense")


@pytest.mark.slow  # reads and analyses 40 POP909 songs: about 6 s
@pytest.mark.skipif(not (POP909 / "001" / "001.mid").is_file(), reason="POP909 dev data not present")
def test_pop909_keys_mostly_right() -> None:
    mir_eval = pytest.importorskip("mir_eval")
    from conditioning.chords import analyze_midi_chords
    from conditioning.io.midi import read_midi

    scores = []
    for num in range(1, 11):
        song = POP909 / f"{num:03d}"
        spans = [line.split() for line in (song / "key_audio.txt").read_text().splitlines() if line.strip()]
        tonic, mode = max(spans, key=lambda s: float(s[1]) - float(s[0]))[2].split(":")
        ref = f"{tonic} {'major' if mode == 'maj' else 'minor'}"
        prog = analyze_midi_chords(read_midi(song / f"{num:03d}.mid"))
        assert prog.key is not None
        scores.append(mir_eval.key.weighted_score(ref, prog.key.name))
    assert float(np.mean(scores)) >= 0.7

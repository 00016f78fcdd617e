"""Key estimation from notes or a chroma: correlation with major/minor key profiles.

The pitch-class histogram (duration x velocity weighted, with extra weight for low notes, which
tend to state the harmony) is correlated with each of the 24 rotated key profiles. When the
chord progression is known, the share of time spent on each key's tonic triad is added, which
settles most relative major/minor confusions (a song in A minor dwells on A:min, not C:maj).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conditioning.harte import parse_harte
from conditioning.types import ChordProgression, Key, Note

#: Krumhansl & Kessler (1982) probe-tone ratings, C major / C minor.
KRUMHANSL_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KRUMHANSL_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
#: Temperley (2001, Kostka-Payne corpus) profiles.
TEMPERLEY_MAJOR = (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0)
TEMPERLEY_MINOR = (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)

PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "krumhansl": (KRUMHANSL_MAJOR, KRUMHANSL_MINOR),
    "temperley": (TEMPERLEY_MAJOR, TEMPERLEY_MINOR),
}


def pitch_class_histogram(notes: Sequence[Note], bass_boost: float = 2.0) -> np.ndarray:
    """Duration- and velocity-weighted pitch-class histogram, shape (12,).

    Args:
        notes: notes in beats.
        bass_boost: extra relative weight for notes below middle C (MIDI 60).
    """
    hist = np.zeros(12)
    for n in notes:
        w = n.length_beats * n.velocity / 100.0
        if n.pitch < 60:
            w *= 1.0 + bass_boost
        hist[n.pitch % 12] += w
    return hist


def key_scores(chroma: np.ndarray, profile: str = "krumhansl") -> np.ndarray:
    """Correlation of a chroma with each key profile.

    Args:
        chroma: shape (12,) or (frames, 12) (summed over frames); pitch class 0 = C.
        profile: a key of :data:`PROFILES`.

    Returns:
        Shape (24,): index ``tonic`` for major keys, ``12 + tonic`` for minor keys.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown key profile {profile!r}; choose one of {', '.join(PROFILES)}")
    vec = np.asarray(chroma, dtype=float)
    if vec.ndim == 2 and vec.shape[1] == 12:
        vec = vec.sum(axis=0)
    if vec.shape != (12,):
        raise ValueError(f"a chroma must have 12 pitch classes, shaped (12,) or (frames, 12); got {vec.shape}")
    major, minor = (np.asarray(p, dtype=float) for p in PROFILES[profile])
    scores = np.zeros(24)
    x = vec - vec.mean()
    norm_x = np.linalg.norm(x)
    for tonic in range(12):
        for m, prof in enumerate((major, minor)):
            p = np.roll(prof, tonic)
            p = p - p.mean()
            scores[m * 12 + tonic] = float(x @ p / (norm_x * np.linalg.norm(p))) if norm_x > 0 else 0.0
    return scores


def tonic_triad_shares(prog: ChordProgression) -> np.ndarray:
    """Share of the chorded time spent on each key's tonic triad, shape (24,).

    Index ``tonic`` counts major-family chords on that root, ``12 + tonic`` minor-family ones
    (sevenths and inversions included); shares sum to 1 (all zeros when no such chord).
    """
    shares = np.zeros(24)
    for span in prog.spans:
        chord = parse_harte(span.label)
        if chord.root is None or 7 not in chord.intervals:
            continue
        if 4 in chord.intervals:
            shares[chord.root] += span.end_beat - span.start_beat
        elif 3 in chord.intervals:
            shares[12 + chord.root] += span.end_beat - span.start_beat
    total = shares.sum()
    return shares / total if total > 0 else shares


def estimate_key(
    source: Sequence[Note] | np.ndarray,
    profile: str = "krumhansl",
    *,
    chords: ChordProgression | None = None,
    chord_weight: float = 0.75,
) -> Key:
    """Estimate the key of notes or of a chroma.

    Args:
        source: notes (beats) or a chroma shaped (12,) / (frames, 12).
        profile: key profile family, see :data:`PROFILES`.
        chords: the recognised progression, when known; its tonic-triad time shares are added
            to the profile correlations with weight ``chord_weight``.
        chord_weight: weight of the chord evidence (0 ignores it).

    Returns:
        The best-scoring :class:`Key`.

    Raises:
        ValueError: no notes, or a silent chroma.
    """
    if isinstance(source, np.ndarray):
        chroma = source
    else:
        if not source:
            raise ValueError("key estimation got no notes; select a clip with notes")
        chroma = pitch_class_histogram(source)
    if not np.any(np.asarray(chroma) > 0):
        raise ValueError("key estimation got a silent chroma (all zeros); give material with notes")
    scores = key_scores(chroma, profile)
    if chords is not None:
        scores = scores + chord_weight * tonic_triad_shares(chords)
    best = int(np.argmax(scores))
    return Key(best % 12, "major" if best < 12 else "minor")

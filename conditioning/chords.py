"""Chord recognition from MIDI notes and chord symbols (JSON for ``analyze`` is in ``bridge.cli``).

Recognition (:func:`chords_from_notes`) works in four steps, all in beats:

1. Frames: the piece is cut at every note onset and release (onset-synchronous frames, never
   on the MIDI file's own beat grid, which is often out of phase with the music); frames longer
   than ``max_frame_beats`` are split.
2. Salience: each note adds to its pitch class the integral over the frame of
   ``velocity * decay(time since onset)`` (a struck piano string fades), and the lowest sounding
   note adds to a separate bass salience.
3. Emission: every chord of the vocabulary (12 roots x qualities x bass tones) is scored with a
   log-likelihood of the frame's pitch-class distribution under a chord template plus the
   bass note under the chord's expected bass, scaled by the frame length.
4. Viterbi decoding with a chord-change penalty picks the best chord sequence; equal
   neighbours are merged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conditioning.harte import (
    NO_CHORD,
    QUALITY_INTERVALS,
    format_harte,
    label_pitch_classes,
    parse_harte,
)
from conditioning.key import estimate_key
from conditioning.roles import name_has_role
from conditioning.score import MidiFile
from conditioning.timeline import TempoMap
from conditioning.types import ChordProgression, ChordSpan, Key, Note

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecognitionParams:
    """Tunable constants of :func:`chords_from_notes` (defaults tuned on POP909 songs 001-040).

    Attributes:
        change_penalty: log-score cost of a chord change (in beat-weighted units).
        decay_beats: time constant of the note-salience decay, in beats.
        decay_floor: salience a held note keeps after decaying (0-1).
        max_frame_beats: frames longer than this many beats are split.
        onset_merge_beats: onsets closer than this many beats share a frame boundary.
        template_floor: probability mass given to pitch classes outside the chord template.
        bass_weight: weight of the bass-note term relative to the pitch-class term.
        bass_match: probability that the lowest note is the chord's bass.
        bass_chord_tone: probability that the lowest note is another chord tone.
        inversion_penalty: log-prior per beat of an inverted (slash) chord.
        silence_bonus: score per beat of "N" during silence (rests longer than about
            ``2 * change_penalty / silence_bonus`` beats become "N").
        quality_penalty: log-prior per beat of each quality (missing qualities are not used).
    """

    change_penalty: float = 1.2
    decay_beats: float = 2.0
    decay_floor: float = 0.25
    max_frame_beats: float = 1.0
    onset_merge_beats: float = 0.05
    template_floor: float = 0.08
    bass_weight: float = 0.5
    bass_match: float = 0.6
    bass_chord_tone: float = 0.3
    inversion_penalty: float = 0.15
    silence_bonus: float = 0.5
    quality_penalty: tuple[tuple[str, float], ...] = (
        ("maj", 0.0),
        ("min", 0.0),
        ("7", 0.1),
        ("maj7", 0.1),
        ("min7", 0.1),
        ("sus2", 0.4),
        ("sus4", 0.4),
        ("dim", 0.3),
        ("hdim7", 0.3),
        ("dim7", 0.3),
        ("aug", 0.4),
    )


DEFAULT_PARAMS = RecognitionParams()


@dataclass(frozen=True)
class _Vocabulary:
    labels: tuple[str, ...]  # index 0 is "N"
    log_pc: np.ndarray  # (chords, 12) log p(pitch class | chord); row 0 unused
    log_bass: np.ndarray  # (chords, 12)
    log_prior: np.ndarray  # (chords,) per beat


def _build_vocabulary(params: RecognitionParams) -> _Vocabulary:
    labels: list[str] = [NO_CHORD]
    log_pc = [np.full(12, np.log(1.0 / 12))]
    log_bass = [np.full(12, np.log(1.0 / 12))]
    prior = [0.0]
    for quality, q_pen in params.quality_penalty:
        intervals = sorted(QUALITY_INTERVALS[quality])
        n_in = len(intervals)
        for root in range(12):
            tones = [(root + i) % 12 for i in intervals]
            pc = np.full(12, params.template_floor / (12 - n_in))
            pc[tones] = (1.0 - params.template_floor) / n_in
            basses = [0] if quality in ("dim7", "aug") else intervals
            for bass in basses:
                b = np.full(12, (1.0 - params.bass_match - params.bass_chord_tone) / (12 - n_in))
                others = [t for t in tones if t != (root + bass) % 12]
                b[others] = params.bass_chord_tone / max(1, len(others))
                b[(root + bass) % 12] = params.bass_match
                labels.append(format_harte(root, quality, bass))
                log_pc.append(np.log(pc))
                log_bass.append(np.log(b))
                prior.append(-q_pen - (params.inversion_penalty if bass else 0.0))
    return _Vocabulary(tuple(labels), np.array(log_pc), np.array(log_bass), np.array(prior))


def _frame_boundaries(notes: Sequence[Note], params: RecognitionParams) -> np.ndarray:
    """Sorted frame boundaries in beats: onsets and releases, merged and split.

    Points closer than ``onset_merge_beats`` share one boundary. An onset wins over a release
    it is merged with: legato playing releases a chord just before the next one starts (at
    beat 3.96 for a change at 4.0), and the change belongs where the new chord is struck.
    """
    onsets = {float(n.start_beat) for n in notes}
    points = sorted(onsets | {float(n.end_beat) for n in notes})
    merged = [points[0]]
    merged_is_onset = [points[0] in onsets]
    for p in points[1:]:
        if p - merged[-1] >= params.onset_merge_beats:
            merged.append(p)
            merged_is_onset.append(p in onsets)
        elif p in onsets and not merged_is_onset[-1]:
            merged[-1], merged_is_onset[-1] = p, True
    last = max(n.end_beat for n in notes)
    if last - merged[-1] > 1e-6:
        merged.append(last)
    else:
        merged[-1] = last
    out = [merged[0]]
    for p in merged[1:]:
        gap = p - out[-1]
        pieces = int(np.ceil(gap / params.max_frame_beats - 1e-9))
        base = out[-1]
        out.extend([base + gap * (k + 1) / pieces for k in range(pieces - 1)])
        out.append(p)
    return np.asarray(out)


def _salience(
    notes: Sequence[Note], bounds: np.ndarray, params: RecognitionParams
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch-class and bass salience per frame, each shaped (frames, 12)."""
    frames = len(bounds) - 1
    chroma = np.zeros((frames, 12))
    lowest = np.full(frames, 128)
    lowest_w = np.zeros(frames)
    tau, floor = params.decay_beats, params.decay_floor
    for n in notes:
        i0 = max(0, int(np.searchsorted(bounds, n.start_beat + 1e-6, side="right")) - 1)
        i1 = int(np.searchsorted(bounds, n.end_beat - 1e-6, side="left"))
        if i1 <= i0:
            i1 = i0 + 1
        a = np.maximum(bounds[i0:i1], n.start_beat) - n.start_beat
        b = np.minimum(bounds[i0 + 1 : i1 + 1], n.end_beat) - n.start_beat
        ok = b > a
        w = floor * (b - a) + (1 - floor) * tau * (np.exp(-a / tau) - np.exp(-b / tau))
        w = np.where(ok, w, 0.0) * (n.velocity / 100.0)
        idx = np.arange(i0, i1)
        chroma[idx, n.pitch % 12] += w
        lower = ok & (n.pitch < lowest[idx])
        lowest[idx[lower]] = n.pitch
        lowest_w[idx[lower]] = w[lower]
    bass = np.zeros((frames, 12))
    has = lowest < 128
    bass[np.nonzero(has)[0], lowest[has] % 12] = 1.0
    return chroma, bass


def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best state path for per-frame ``scores`` (frames, states) with a uniform switch cost."""
    frames, states = scores.shape
    back = np.zeros((frames, states), dtype=np.int32)
    delta = scores[0].copy()
    for t in range(1, frames):
        best = int(np.argmax(delta))
        switch = delta[best] - penalty
        stay = delta >= switch
        back[t] = np.where(stay, np.arange(states), best)
        delta = np.where(stay, delta, switch) + scores[t]
    path = np.zeros(frames, dtype=np.int32)
    path[-1] = int(np.argmax(delta))
    for t in range(frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def chords_from_notes(
    notes: Sequence[Note],
    tempo_map: TempoMap,
    *,
    params: RecognitionParams = DEFAULT_PARAMS,
    with_key: bool = True,
) -> ChordProgression:
    """Recognise the chord progression played by ``notes``.

    Args:
        notes: the accompaniment notes (beats). Block chords, arpeggios, inversions, sevenths,
            sus chords and passing notes are handled; extend note ends with
            :func:`apply_sustain` first when the clip uses the sustain pedal.
        tempo_map: the clip's tempo map (used only to validate the span; recognition is in beats).
        params: recognition constants (see :class:`RecognitionParams`).
        with_key: also estimate the key and store it on the progression.

    Returns:
        Chord spans in beats (Harte labels, "N" where nothing sounds), consecutive equal
        chords merged, plus the estimated key.

    Raises:
        ValueError: ``notes`` is empty.
    """
    if not notes:
        raise ValueError("the chord clip has no notes; select a clip with notes (a MIDI item with chords in it)")
    del tempo_map  # recognition is in beats; kept in the signature for the seconds-aware callers
    vocab = _build_vocabulary(params)
    bounds = _frame_boundaries(notes, params)
    chroma, bass = _salience(notes, bounds, params)
    dur = np.diff(bounds)
    energy = chroma.sum(axis=1)
    silent = energy <= 1e-9
    dist = chroma / np.maximum(energy, 1e-12)[:, None]
    scores = dist @ vocab.log_pc.T + params.bass_weight * (bass @ vocab.log_bass.T)
    scores = (scores + vocab.log_prior[None, :]) * dur[:, None]
    # "N" only where nothing sounds; a short rest keeps the chord around it, a long one is "N".
    scores[:, 0] = -1e9
    scores[silent, :] = 0.0
    scores[silent, 0] = params.silence_bonus * dur[silent]
    path = _viterbi(scores, params.change_penalty)
    # A short rest scores the same under the chord before and after it; the chord before rings
    # on into the rest, so the next chord starts at its own onset.
    for i in range(1, len(path)):
        if silent[i] and path[i] != 0 and path[i - 1] != 0:
            path[i] = path[i - 1]
    spans: list[ChordSpan] = []
    for i, state in enumerate(path):
        label = vocab.labels[state]
        start, end = float(bounds[i]), float(bounds[i + 1])
        if spans and spans[-1].label == label:
            spans[-1] = ChordSpan(label, spans[-1].start_beat, end)
        else:
            spans.append(ChordSpan(label, start, end))
    prog = ChordProgression(tuple(spans), None)
    if not with_key:
        return prog
    return ChordProgression(prog.spans, estimate_key(notes, chords=prog))


def chords_from_symbols(symbols: Sequence[Sequence[Any]]) -> ChordProgression:
    """Build a progression from inline chord symbols ``[[label, start_beat, end_beat], ...]``.

    Args:
        symbols: e.g. ``[["A:min", 0, 4], ["F:maj", 4, 8]]`` (beats, end exclusive).

    Raises:
        ValueError: empty list, a malformed entry, a bad label, a span that runs backwards,
            or overlapping spans; the message names the entry.
    """
    if not isinstance(symbols, Sequence) or isinstance(symbols, str) or not symbols:
        raise ValueError('chord symbols must be a non-empty list like [["A:min", 0, 4], ["F:maj", 4, 8]]')
    spans: list[ChordSpan] = []
    for i, entry in enumerate(symbols):
        if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) != 3:
            raise ValueError(f"chord symbol #{i + 1} {entry!r} must be [label, start_beat, end_beat], e.g. [\"C:maj\", 0, 4]")
        label, start, end = entry
        if not isinstance(label, str):
            raise ValueError(f"chord symbol #{i + 1}: the label {label!r} must be text like 'C:maj'")
        try:
            chord = parse_harte(label)
        except ValueError as exc:
            raise ValueError(f"chord symbol #{i + 1}: {exc}") from None
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (start, end)):
            raise ValueError(f"chord symbol #{i + 1} ({label}): start and end must be beats (numbers), e.g. [\"C:maj\", 0, 4]")
        if start < 0 or end <= start:
            raise ValueError(
                f"chord symbol #{i + 1} ({label}) runs from beat {start:g} to {end:g}; "
                "beats start at 0 and the end must be after the start"
            )
        spans.append(ChordSpan(chord.label, float(start), float(end)))
    spans.sort(key=lambda s: s.start_beat)
    for a, b in zip(spans, spans[1:], strict=False):
        if b.start_beat < a.end_beat - 1e-9:
            raise ValueError(
                f"chord symbols {a.label} (beats {a.start_beat:g}-{a.end_beat:g}) and {b.label} "
                f"(beats {b.start_beat:g}-{b.end_beat:g}) overlap; end one where the next starts"
            )
    prog = ChordProgression(tuple(spans), None)
    return ChordProgression(prog.spans, symbols_key(prog))


def symbols_key(prog: ChordProgression) -> Key | None:
    """The key of a progression known only by its labels: chord tones weighted by duration
    (roots twice), plus the tonic-triad evidence of :func:`estimate_key`. None for only "N"."""
    chroma = np.zeros(12)
    for span in prog.spans:
        length = span.end_beat - span.start_beat
        chord = parse_harte(span.label)
        for pc in label_pitch_classes(span.label):
            chroma[pc] += length
        if chord.root is not None:
            chroma[chord.root] += length
    if not np.any(chroma > 0):
        return None
    return estimate_key(chroma, chords=prog)


def apply_sustain(
    notes: Sequence[Note], pedal_spans: Sequence[tuple[float, float]], max_extend_beats: float = 0.5
) -> list[Note]:
    """Extend notes released while the pedal is down to the pedal's release (beats).

    Args:
        notes: notes in beats.
        pedal_spans: (down_beat, up_beat) spans, e.g. :attr:`conditioning.score.MidiFile.pedal_spans`.
        max_extend_beats: a note is never extended by more than this many beats. For chord
            recognition a short extension (0.5 beat) works best: it bridges the gaps between
            short piano notes without smearing one chord into the next.
    """
    if not pedal_spans:
        return list(notes)
    starts = np.array([s for s, _ in pedal_spans])
    out = []
    for n in notes:
        i = int(np.searchsorted(starts, n.end_beat, side="right")) - 1
        end = n.end_beat
        if i >= 0 and pedal_spans[i][0] <= n.end_beat < pedal_spans[i][1]:
            end = min(pedal_spans[i][1], n.end_beat + max_extend_beats)
        out.append(Note(n.pitch, n.start_beat, end, n.velocity) if end > n.end_beat else n)
    return out


def _is_monophonic(notes: Sequence[Note]) -> bool:
    """True for a melody-like line: under 10% of its notes start while another still sounds."""
    overlapping = 0
    latest_end = -1.0
    for n in notes:
        if n.start_beat < latest_end - 0.05:
            overlapping += 1
        latest_end = max(latest_end, n.end_beat)
    return overlapping < 0.1 * len(notes)


def accompaniment_notes(midi: MidiFile, *, pedal_extend_beats: float = 0.5) -> list[Note]:
    """The notes of a MIDI file that carry its harmony.

    Tracks named like an accompaniment ("PIANO", "Chords", "Keys", ...; the chord words of
    :mod:`conditioning.roles`) are used when present; otherwise every pitched track except ones
    named like a melody ("MELODY", "Vocal", "Lead", ...) and, when a polyphonic track remains, except monophonic (melody-like) ones; otherwise
    every pitched track. Notes released while the sustain pedal (CC64) is down are extended by
    up to ``pedal_extend_beats``.

    Args:
        midi: a parsed MIDI file.
        pedal_extend_beats: longest pedal extension in beats (0 ignores the pedal).

    Raises:
        ValueError: the file has no pitched notes.
    """
    pitched = [t for t in midi.tracks if not t.is_drum]
    chosen = [t for t in pitched if name_has_role(t.name, "chords")]
    if not chosen:
        chosen = [t for t in pitched if not name_has_role(t.name, "melody")]
        chordal = [t for t in chosen if not _is_monophonic(t.notes)]
        chosen = chordal or chosen
    if not chosen:
        chosen = pitched
    notes = sorted((n for t in chosen for n in t.notes), key=lambda n: (n.start_beat, n.pitch))
    if not notes:
        raise ValueError(
            f"{midi.path.name} has no pitched notes; select a clip with notes "
            "(drum tracks are not read for chords)"
        )
    if pedal_extend_beats > 0:
        notes = apply_sustain(notes, midi.pedal_spans, pedal_extend_beats)
    return notes


def analyze_midi_chords(midi: MidiFile, *, params: RecognitionParams = DEFAULT_PARAMS) -> ChordProgression:
    """Chords and key of a whole MIDI file (what ``stembridge analyze --role chords`` reports).

    Chords come from :func:`accompaniment_notes`; the key from every pitched note of the file
    (melody included) together with the recognised chords.

    Args:
        midi: a parsed MIDI file (:func:`conditioning.io.midi.read_midi`).
        params: recognition constants.

    Raises:
        ValueError: the file has no pitched notes.
    """
    prog = chords_from_notes(accompaniment_notes(midi), midi.tempo_map, params=params, with_key=False)
    key_notes = midi.notes or tuple(n for t in midi.tracks for n in t.notes)
    return ChordProgression(prog.spans, estimate_key(key_notes, chords=prog))

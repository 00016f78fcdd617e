"""Chords for the arranger: a small Harte-label reader and the section's chord timeline.

When the musician gives no chords, harmony is derived from the melody (one diatonic chord per bar
that best fits its notes) or, with no melody either, from a common progression in the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from conditioning.harte import parse_harte
from conditioning.types import PITCH_CLASS_NAMES, ChordProgression, Key, Note

from .grid import Bar


@dataclass(frozen=True)
class Chord:
    """A parsed chord.

    Attributes:
        label: the Harte label it came from.
        root: root pitch class 0-11 (0 = C), or None for "N" (no chord).
        pitch_classes: pitch classes of the chord tones, root first.
        intervals: semitones (0-11) above the root of each chord tone, ascending.
        bass: pitch class of the bass note (the slash note, else the root), or None.
    """

    label: str
    root: int | None
    pitch_classes: tuple[int, ...]
    intervals: tuple[int, ...]
    bass: int | None

    @property
    def is_minor(self) -> bool:
        """True when the chord has a minor third and no major third."""
        return 3 in self.intervals and 4 not in self.intervals


NO_CHORD = Chord("N", None, (), (), None)


def parse_chord(label: str) -> Chord:
    """Parse a Harte chord label such as ``"A:min7"``, ``"G:7/3"``, ``"C"`` or ``"N"``.

    Parsing is :func:`conditioning.harte.parse_harte`; this keeps what the arranger needs.

    Raises:
        ValueError: the label is not Harte syntax; the message shows the expected form.
    """
    parsed = parse_harte(label)
    if parsed.root is None:
        return NO_CHORD
    intervals = tuple(sorted(parsed.intervals))
    root = parsed.root
    bass = parsed.bass_pitch_class
    return Chord(label.strip(), root, tuple((root + i) % 12 for i in intervals), intervals, root if bass is None else bass)


@dataclass(frozen=True)
class ChordEvent:
    """A chord sounding over ``[start, end)`` beats."""

    chord: Chord
    start: float
    end: float


def chord_at(events: Sequence[ChordEvent], beat: float) -> Chord:
    """The chord sounding at ``beat`` (the last one before it when in a gap)."""
    current = NO_CHORD
    for ev in events:
        if ev.start <= beat + 1e-9:
            current = ev.chord
        if ev.start <= beat < ev.end:
            return ev.chord
    return current if current.root is not None else (events[0].chord if events else NO_CHORD)


def estimate_key(notes: Sequence[Note]) -> Key:
    """Guess the key from melody notes (duration-weighted pitch-class fit to each scale)."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.length_beats
    if notes:
        hist[notes[-1].pitch % 12] += 0.5 * max(n.length_beats for n in notes)
    best, best_score = Key(0, "major"), -1.0
    for tonic in range(12):
        for mode in ("major", "minor"):
            key = Key(tonic, mode)
            score = float(sum(hist[pc] for pc in key.scale) + 0.6 * hist[tonic])
            score += 0.3 * hist[key.scale[4]]
            if score > best_score + 1e-9:
                best, best_score = key, score
    return best


def _diatonic_triad(key: Key, degree: int) -> Chord:
    scale = key.scale
    pcs = (scale[degree % 7], scale[(degree + 2) % 7], scale[(degree + 4) % 7])
    third = (pcs[1] - pcs[0]) % 12
    fifth = (pcs[2] - pcs[0]) % 12
    quality = {(4, 7): "maj", (3, 7): "min", (3, 6): "dim"}.get((third, fifth), "maj")
    return parse_chord(f"{PITCH_CLASS_NAMES[pcs[0]]}:{quality}")


#: Scale degrees (0-based) of default progressions, one chord per bar.
_DEFAULT_MAJOR = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4))
_DEFAULT_MINOR = ((0, 5, 2, 6), (0, 3, 6, 2), (0, 6, 5, 4))


def section_chords(
    chords: ChordProgression | None,
    bars: Sequence[Bar],
    melody: Sequence[Note],
    key: Key | None,
    variant: int,
) -> tuple[list[ChordEvent], Key]:
    """The chord timeline of a section and the key it is in.

    Args:
        chords: the song's chords (Harte labels), or None.
        bars: the section's bars.
        melody: melody notes in the section (beats), possibly empty.
        key: the known song key, or None.
        variant: picks among default progressions when nothing else is known.

    Returns:
        Chord events covering the section in time order, and the key.
    """
    start, end = bars[0].start, bars[-1].end
    events: list[ChordEvent] = []
    if chords is not None:
        for span in chords.in_range(start, end):
            chord = parse_chord(span.label)
            if chord.root is not None:
                events.append(ChordEvent(chord, span.start_beat, span.end_beat))
    if key is None and chords is not None:
        key = chords.key
    if key is None:
        key = estimate_key(melody) if melody else _key_from_events(events)
    if events:
        # fill gaps by holding the previous chord (and the first chord before it starts)
        filled: list[ChordEvent] = []
        cursor = start
        for ev in events:
            if ev.start > cursor + 1e-9:
                prev = filled[-1].chord if filled else ev.chord
                filled.append(ChordEvent(prev, cursor, ev.start))
            filled.append(ev)
            cursor = ev.end
        if cursor < end - 1e-9:
            filled.append(ChordEvent(filled[-1].chord, cursor, end))
        return filled, key
    if melody:
        return _chords_from_melody(bars, melody, key), key
    table = _DEFAULT_MAJOR if key.mode == "major" else _DEFAULT_MINOR
    prog = table[variant % len(table)]
    return [
        ChordEvent(_diatonic_triad(key, prog[b.index % len(prog)]), b.start, b.end) for b in bars
    ], key


def _key_from_events(events: Sequence[ChordEvent]) -> Key:
    if not events:
        return Key(0, "major")
    first = events[0].chord
    return Key(first.root or 0, "minor" if first.is_minor else "major")


def _chords_from_melody(bars: Sequence[Bar], melody: Sequence[Note], key: Key) -> list[ChordEvent]:
    candidates = [_diatonic_triad(key, d) for d in range(7) if not (key.mode == "major" and d == 6)]
    events: list[ChordEvent] = []
    for bar in bars:
        weights = np.zeros(12)
        for n in melody:
            overlap = min(n.end_beat, bar.end) - max(n.start_beat, bar.start)
            if overlap > 0:
                strong = 1.5 if abs(n.start_beat - bar.start) < 1e-6 else 1.0
                weights[n.pitch % 12] += overlap * strong
        if weights.sum() == 0 and events:
            events.append(ChordEvent(events[-1].chord, bar.start, bar.end))
            continue
        scores = []
        for i, c in enumerate(candidates):
            fit = sum(weights[pc] for pc in c.pitch_classes)
            clash = sum(weights[pc] for pc in range(12) if pc not in c.pitch_classes)
            prefer = 0.2 if i in (0, 3, 4) else 0.0  # I, IV, V (i, iv, v) slightly favoured
            scores.append(fit - 0.5 * clash + prefer * (weights.sum() + 1))
        events.append(ChordEvent(candidates[int(np.argmax(scores))], bar.start, bar.end))
    return events

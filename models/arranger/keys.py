"""The keys part: voice-led chord voicings in a middle register, comped in the style's rhythm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conditioning.types import Note

from .grid import Bar
from .harmony import Chord, ChordEvent, chord_at
from .style import Shape, Style, clamp_velocity

#: Lowest note a voicing may start on and highest note it may reach (C3 .. G5).
KEYS_LOW, KEYS_HIGH = 48, 79


#: Chord tones by how much they define a chord (semitones above the root): third, seventh,
#: colour tones, then the rest; the root and fifth are added when there is room.
_TONE_PRIORITY = (3, 4, 10, 11, 9, 2, 5, 6, 8, 1)


def voicing_tones(chord: Chord) -> list[int]:
    """The pitch classes to voice: all of a triad or seventh chord; for larger chords at most
    four, guide tones and colour before the fifth."""
    pcs = list(chord.pitch_classes)
    if len(pcs) == 1:
        return pcs
    if len(pcs) == 2:
        return pcs + [pcs[0]]
    if len(pcs) <= 4:
        return pcs
    root = chord.root or 0
    picked = [(root + iv) % 12 for iv in _TONE_PRIORITY if iv in chord.intervals][:3]
    return picked + [root]


def _candidates(tones: Sequence[int]) -> list[tuple[int, ...]]:
    """Close and drop-2 voicings of ``tones`` in every inversion inside the keys register."""
    out: list[tuple[int, ...]] = []
    n = len(tones)
    for inv in range(n):
        order = list(tones[inv:]) + list(tones[:inv])
        for base in range(KEYS_LOW - 12, KEYS_HIGH):
            if base % 12 != order[0]:
                continue
            close = [base]
            for pc in order[1:]:
                nxt = close[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                close.append(nxt)
            shapes = [tuple(close)]
            if n >= 4:
                drop2 = sorted([close[-2] - 12] + close[:-2] + close[-1:])
                shapes.append(tuple(drop2))
            for shape in shapes:
                if shape[0] >= KEYS_LOW and shape[-1] <= KEYS_HIGH:
                    out.append(shape)
    return sorted(set(out))


def voice_lead(chord: Chord, previous: tuple[int, ...] | None, centre: float, rng: np.random.Generator) -> tuple[int, ...]:
    """The voicing of ``chord`` that moves least from ``previous`` and sits near ``centre`` (MIDI).

    A little seeded noise breaks near-ties, so other seeds voice some chords differently.
    """
    cands = _candidates(voicing_tones(chord))
    if not cands:
        root = (chord.root or 0) + 60
        return (root,)

    def cost(v: tuple[int, ...]) -> float:
        mean = float(np.mean(v))
        c = 0.25 * abs(mean - centre)
        if previous:
            if len(previous) == len(v):
                c += float(sum(abs(a - b) for a, b in zip(sorted(previous), v, strict=False)))
            else:
                c += sum(min(abs(p - q) for q in previous) for p in v) * 1.0
        return c + float(rng.uniform(0.0, 1.5))

    return min(cands, key=cost)


def _comp_onsets(bar: Bar, comp: str, energy: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(onset, length) pairs in beats for one bar of comping."""
    out: list[tuple[float, float]] = []
    if comp == "pulse":
        for p in bar.pulses:
            push = energy >= 0.9 and rng.random() < 0.5 and not p.compound
            out.append((p.start, p.length * (0.45 if push else 0.9)))
            if push:  # an off-beat push in full sections
                out.append((p.offbeat, p.end - p.offbeat))
    elif comp == "strum":
        for p in bar.pulses:
            out.append((p.start, p.length * 0.5))
            if rng.random() < 0.35 + 0.5 * energy:
                out.append((p.offbeat, (p.end - p.offbeat) * 0.9))
    elif comp == "funk":
        for p in bar.pulses:
            for b in p.sixteenths():
                if rng.random() < 0.22 + 0.2 * energy:
                    out.append((b, 0.18))
        if not out:
            out.append((bar.pulses[0].offbeat, 0.2))
    elif comp == "charleston":
        for p in bar.pulses:
            r = rng.random()
            if r < 0.35:
                out.append((p.start, p.length * 0.6))
            elif r < 0.6:
                out.append((p.start + p.length * 2 / 3, p.length * 0.3))
    elif comp == "offbeat":
        out = [(p.offbeat, 0.3) for p in bar.pulses]
    elif comp == "lazy":
        out = [(bar.start + 0.03, bar.length * 0.7)]
        if rng.random() < 0.5 and len(bar.pulses) > 1:
            out.append((bar.pulses[-1].offbeat, bar.end - bar.pulses[-1].offbeat))
    elif comp == "bossa":
        pattern = (0.0, 1.5, 2.5) if bar.index % 2 == 0 else (0.5, 2.0, 3.0)
        out = [(bar.start + c, 0.45) for c in pattern if c < bar.length - 1e-6]
    elif comp == "arpeggio":
        out = [(b, -1.0) for p in bar.pulses for b in p.eighths()]  # -1: arpeggiate
    else:  # sustain
        out = [(bar.start, bar.length)]
    return out


def keys_part(
    bars: Sequence[Bar],
    chords: Sequence[ChordEvent],
    style: Style,
    shape: Shape,
    rng: np.random.Generator,
    *,
    fill: bool,
) -> list[Note]:
    """The keys notes (beats, MIDI pitches C3..G5) for a section.

    Args:
        bars: the section's bars.
        chords: the chord timeline.
        style: style from the prompt (comping rhythm).
        shape: the role's shape (sustained chords when soft, higher register in bridges).
        rng: the section's random generator.
        fill: a section follows.

    Returns:
        Notes sorted by onset.
    """
    comp = "sustain" if shape.keys_sustain and style.comp != "arpeggio" else style.comp
    centre = 67.0 if shape.alternate else 62.0
    start, end = bars[0].start, bars[-1].end
    hits: list[tuple[float, float]] = []
    for bar in bars:
        if shape.ending and not fill and bar.index == len(bars) - 1:
            hits.append((bar.start, bar.length))
            continue
        hits += _comp_onsets(bar, comp, shape.energy, rng)
    changes = [ev.start for ev in chords if start - 1e-6 <= ev.start < end]
    for c in changes:
        if not any(abs(c - b) < 0.05 for b, _ in hits):
            sustain = comp in ("sustain", "lazy", "arpeggio")
            hits.append((c, -1.0 if comp == "arpeggio" else (1.0 if not sustain else 0.0)))
    hits.sort()
    notes: list[Note] = []
    voicing: tuple[int, ...] | None = None
    current: Chord | None = None
    base_vel = (62 + 28 * shape.energy) * shape.velocity * style.velocity
    arp_index = 0
    for i, (b, length) in enumerate(hits):
        if not start - 1e-6 <= b < end - 1e-6:
            continue
        chord = chord_at(chords, b)
        if chord.root is None:
            continue
        if chord != current or voicing is None:
            voicing = voice_lead(chord, voicing, centre, rng)
            current = chord
            arp_index = 0
        change_after = next((c for c in changes if c > b + 1e-6), end)
        nxt = hits[i + 1][0] if i + 1 < len(hits) else end
        if length == 0.0:  # sustain to the next hit
            length = nxt - b
        accent = 1.08 if any(abs(b - bar.start) < 1e-6 for bar in bars) else 1.0
        vel = clamp_velocity(base_vel * accent * float(rng.uniform(0.92, 1.05)))
        if length < 0:  # arpeggio: one voicing tone per step, ringing to the chord change
            order = list(voicing) + list(voicing[-2:0:-1])
            pitch = order[arp_index % len(order)]
            arp_index += 1
            notes.append(Note(pitch, b, min(change_after, end, b + 2.0), clamp_velocity(vel * 0.9)))
            continue
        stop = min(b + length, change_after, end)
        if stop <= b:
            stop = min(b + 0.1, end)
        strum = 0.015 if 24 <= style.keys_program <= 31 else 0.0
        pitches = list(voicing)
        if shape.energy >= 0.95 and len(pitches) >= 3 and pitches[-1] + 12 <= KEYS_HIGH + 5:
            pitches.append(pitches[-1] + 12)
        for j, p in enumerate(pitches):
            on = b + j * strum
            if on < stop:
                notes.append(Note(p, on, stop, vel))
    return sorted(notes, key=lambda n: (n.start_beat, n.pitch))

"""The bass part: chord roots (or the slash-chord bass note) locked to the kick, per style."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conditioning.types import Key, Note

from .grid import Bar
from .harmony import Chord, ChordEvent, chord_at
from .style import Shape, Style, clamp_velocity

#: Lowest and highest bass pitches (E1 .. C3).
BASS_LOW, BASS_HIGH = 28, 48


def bass_pitch(pitch_class: int, previous: int) -> int:
    """The bass pitch of ``pitch_class`` nearest to ``previous`` within E1..C3, leaning low."""
    candidates = [pitch_class + 12 * k for k in range(2, 5) if BASS_LOW <= pitch_class + 12 * k <= BASS_HIGH]
    return min(candidates, key=lambda c: abs(c - previous) + 0.35 * max(0, c - 40))


def _fifth(chord: Chord) -> int:
    for i, iv in enumerate(chord.intervals):
        if iv % 12 in (7, 6, 8):
            return chord.pitch_classes[i]
    return chord.bass if chord.bass is not None else 0


def _onsets(bar: Bar, rhythm: str, kicks: Sequence[float], energy: float, rng: np.random.Generator) -> list[tuple[float, str]]:
    """Onsets in a bar with a tone role: "root", "fifth", "octave", "walk"."""
    bar_kicks = [k for k in kicks if bar.start - 1e-6 <= k < bar.end - 1e-6]
    out: list[tuple[float, str]] = []
    if rhythm == "eighths":
        if energy >= 0.7:
            out = [(b, "root") for p in bar.pulses for b in p.eighths()]
            if rng.random() < 0.5:
                out[-1] = (out[-1][0], "fifth" if rng.random() < 0.5 else "octave")
        else:
            out = [(k, "root") for k in bar_kicks] + [(p.start, "root") for p in bar.downbeats]
    elif rhythm == "kick":
        out = [(k, "root") for k in bar_kicks] or [(bar.start, "root")]
        if rng.random() < 0.4 and len(bar.pulses) > 1:
            out.append((bar.pulses[-1].offbeat, "octave" if rng.random() < 0.5 else "fifth"))
    elif rhythm == "funk":
        out = [(k, "root") for k in bar_kicks] or [(bar.start, "root")]
        for p in bar.pulses:
            for b in p.sixteenths()[1:]:
                if rng.random() < 0.18 + 0.15 * energy:
                    out.append((b, "octave" if rng.random() < 0.45 else "fifth"))
    elif rhythm == "walking":
        out = [(p.start, "walk") for p in bar.pulses]
        out[0] = (bar.start, "root")
    elif rhythm == "offbeat":
        out = [(p.offbeat, "root") for p in bar.pulses]
        if energy >= 0.8:
            out += [(p.offbeat + 0.25, "octave") for p in bar.pulses if rng.random() < 0.3 and not p.compound]
    elif rhythm == "rootfifth":
        out = [(p.start, "root" if i % 2 == 0 else "fifth") for i, p in enumerate(bar.downbeats)]
        if len(bar.downbeats) == 1 and len(bar.pulses) > 1:
            out.append((bar.pulses[-1].start, "fifth"))
    elif rhythm == "reggae":
        out = [(bar.start, "root")]
        for p in bar.pulses[1:]:
            if rng.random() < 0.65:
                out.append((p.offbeat if rng.random() < 0.6 else p.start, "fifth" if rng.random() < 0.3 else "root"))
    elif rhythm == "bossa":
        for p in bar.pulses:
            out.append((p.start, "root") if p.index % 2 == 0 else (p.offbeat, "fifth"))
    elif rhythm == "octaves":
        out = [(b, "root" if i % 2 == 0 else "octave") for i, b in enumerate(b for p in bar.pulses for b in p.eighths())]
    else:  # sustain
        out = [(bar.start, "root")]
        if energy > 0.5 and len(bar.pulses) > 2:
            out.append((bar.pulses[len(bar.pulses) // 2].start, "root" if rng.random() < 0.6 else "fifth"))
    return out


def bass_part(
    bars: Sequence[Bar],
    chords: Sequence[ChordEvent],
    kicks: Sequence[float],
    style: Style,
    shape: Shape,
    key: Key,
    rng: np.random.Generator,
    *,
    fill: bool,
) -> list[Note]:
    """The bass notes (beats, MIDI pitches E1..C3) for a section.

    Args:
        bars: the section's bars.
        chords: the chord timeline (bass note = slash note, else root).
        kicks: kick-drum onsets (beats) the bass locks to.
        style: style from the prompt (picks the rhythm).
        shape: section-role shape (sparser when soft).
        key: the key, for walking lines' passing notes.
        rng: the section's random generator.
        fill: a section follows (the last bar may lead into it).

    Returns:
        Notes sorted by onset, non-overlapping (a monophonic line).
    """
    rhythm = style.bass_rhythm
    if shape.energy < 0.4 or shape.drums == "minimal":
        rhythm = "sustain"
    elif shape.alternate and rhythm in ("eighths", "kick", "offbeat"):
        rhythm = "rootfifth"
    start, end = bars[0].start, bars[-1].end
    onsets: dict[float, str] = {}
    for bar in bars:
        if shape.ending and not fill and bar.index == len(bars) - 1:
            onsets[round(bar.start, 6)] = "root"
            continue
        for b, role in _onsets(bar, rhythm, kicks, shape.energy, rng):
            onsets.setdefault(round(b, 6), role)
        onsets.setdefault(round(bar.start, 6), "root")  # the bass always speaks on the bar line
    for ev in chords:  # the bass always moves with the chords
        if start - 1e-6 <= ev.start < end and not any(abs(ev.start - b) < 0.05 for b in onsets):
            onsets[round(ev.start, 6)] = "root"
    times = sorted(b for b in onsets if start - 1e-6 <= b < end - 1e-6)
    articulation = {"walking": 0.92, "offbeat": 0.45, "funk": 0.5, "reggae": 0.8, "octaves": 0.45}.get(rhythm, 0.88)
    notes: list[Note] = []
    prev = 36
    base_vel = (74 + 22 * shape.energy) * shape.velocity * style.velocity
    for i, b in enumerate(times):
        nxt = times[i + 1] if i + 1 < len(times) else end
        chord = chord_at(chords, b)
        if chord.root is None:
            continue
        root_pc = chord.bass if chord.bass is not None else chord.root
        role = onsets[b]
        if role == "walk":
            pitch = _walk(chord, chord_at(chords, nxt) if nxt < end else chord, prev, key, rng)
        else:
            pitch = bass_pitch(root_pc, prev)
            if role == "fifth":
                pitch = bass_pitch(_fifth(chord), pitch)
            elif role == "octave" and pitch + 12 <= BASS_HIGH + 7:
                pitch += 12
        length = (nxt - b) * articulation if i + 1 < len(times) else (end - b)
        length = max(length, 0.1)
        on_bar = any(abs(b - bar.start) < 1e-6 for bar in bars)
        vel = clamp_velocity(base_vel * (1.1 if on_bar else 1.0) * float(rng.uniform(0.93, 1.05)))
        notes.append(Note(pitch, b, min(b + length, end) if b + length > b else end, vel))
        if role != "octave":
            prev = pitch
    return notes


def _walk(chord: Chord, nxt: Chord, prev: int, key: Key, rng: np.random.Generator) -> int:
    """A walking-bass note: a chord tone, or an approach a step from the next chord's bass."""
    if nxt.root is not None and rng.random() < 0.45:
        target = bass_pitch(nxt.bass if nxt.bass is not None else nxt.root, prev)
        step = int(rng.choice([-1, 1, -2, 2]))
        candidate = target + step
        if BASS_LOW <= candidate <= BASS_HIGH and candidate != prev:
            return candidate
    tones = [pc for pc in chord.pitch_classes if pc != prev % 12] or list(chord.pitch_classes)
    pcs = tones + [pc for pc in key.scale if pc not in tones][:1]
    pc = int(rng.choice(pcs))
    return bass_pitch(pc, prev)

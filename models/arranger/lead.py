"""The lead part: the musician's melody moved into the lead instrument's register, or an
improvised line from chord tones and the key's scale when there is no melody."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from conditioning.types import Key, Note

from .grid import Bar
from .harmony import ChordEvent, chord_at
from .style import Shape, Style, clamp_velocity

#: Sounding ranges (MIDI low, high) of General MIDI lead instruments.
LEAD_RANGES: dict[int, tuple[int, int]] = {
    22: (60, 84),  # harmonica
    29: (52, 86),  # overdriven guitar
    30: (52, 86),  # distortion guitar
    40: (55, 96),  # violin
    42: (36, 76),  # cello
    53: (55, 79),  # voice oohs
    56: (54, 82),  # trumpet
    57: (40, 72),  # trombone
    65: (49, 80),  # alto sax
    66: (44, 75),  # tenor sax
    68: (58, 89),  # oboe
    71: (50, 89),  # clarinet
    73: (60, 93),  # flute
    78: (60, 78),  # whistle (TimGM6mb's whistle is silent above F#5)
    80: (55, 91),  # square lead
    81: (55, 91),  # saw lead
}
_DEFAULT_RANGE = (55, 84)


def lead_range(program: int) -> tuple[int, int]:
    """(lowest, highest) MIDI pitch the lead instrument ``program`` plays comfortably."""
    return LEAD_RANGES.get(program, _DEFAULT_RANGE)


def lead_centre(program: int) -> float:
    """The MIDI pitch a lead line should centre on: a little above the middle of the range."""
    lo, hi = lead_range(program)
    return lo + 0.55 * (hi - lo)


def place_melody(notes: Sequence[Note], program: int, shape: Shape, end: float) -> list[Note]:
    """The melody transposed by whole octaves into the lead's range, made monophonic.

    Args:
        notes: melody notes in the section (beats).
        program: the lead's General MIDI program.
        shape: the role's shape (velocity scale).
        end: section end in beats; notes are cut there.
    """
    if not notes:
        return []
    lo, hi = lead_range(program)
    weights = np.array([n.length_beats for n in notes])
    pitches = np.array([n.pitch for n in notes])
    order = np.argsort(pitches)
    cum = np.cumsum(weights[order])
    median = float(pitches[order][int(np.searchsorted(cum, cum[-1] / 2))])
    centre = lead_centre(program)

    def cost(k: int) -> tuple[int, float]:
        shifted = pitches + 12 * k
        outside = int(np.sum((shifted < lo) | (shifted > hi)))
        return outside, abs(median + 12 * k - centre)

    shift = 12 * min(range(-5, 6), key=cost)
    mean_vel = float(np.mean([n.velocity for n in notes])) or 90.0
    gain = 92.0 * shape.velocity / mean_vel
    out: list[Note] = []
    ordered = sorted(notes, key=lambda n: n.start_beat)
    for i, n in enumerate(ordered):
        stop = min(n.end_beat, end)
        if i + 1 < len(ordered):
            stop = min(stop, ordered[i + 1].start_beat)
        if stop - n.start_beat < 1e-3:
            continue
        pitch = int(min(127, max(0, n.pitch + shift)))
        out.append(Note(pitch, n.start_beat, stop, clamp_velocity(n.velocity * gain)))
    return out


def _scale(key: Key, style: Style) -> list[int]:
    if style.groove in ("rock", "lofi", "funk", "hiphop"):
        steps = (0, 2, 4, 7, 9) if key.mode == "major" else (0, 3, 5, 7, 10)
        return sorted((key.tonic + s) % 12 for s in steps)
    return sorted(key.scale)


def _phrase_rhythm(bars: Sequence[Bar], density: float, style: Style, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(onset, length) pairs for a phrase spanning ``bars``: notes in the first part, then a breath."""
    out: list[tuple[float, float]] = []
    phrase_end = bars[-1].end - (bars[-1].length * (0.5 if len(bars) > 1 else 0.25))
    for bar in bars:
        for p in bar.pulses:
            if p.start >= phrase_end - 1e-6:
                break
            r = rng.random()
            if r < density * 0.55:
                subs = p.eighths() if not p.compound else p.eighths()
                for b in subs:
                    if b < phrase_end and rng.random() < 0.85:
                        out.append((b, 0.5))
            elif r < 0.35 + density * 0.5:
                out.append((p.start, p.length))
            elif r < 0.5 + density * 0.3 and not p.compound:
                out.append((p.offbeat, p.end - p.offbeat))
    if not out:  # an unlucky draw must not leave a played phrase (or a short section) silent
        first = bars[0].pulses[0]
        out.append((first.start, first.length))
    last_on, _ = out[-1]
    out[-1] = (last_on, max(0.5, phrase_end - last_on + 0.5))
    return out


def improvise(
    bars: Sequence[Bar],
    chords: Sequence[ChordEvent],
    key: Key,
    style: Style,
    shape: Shape,
    rng: np.random.Generator,
) -> list[Note]:
    """An improvised lead line: two-bar phrases of scale steps that land on chord tones.

    Pulse onsets take chord tones; other notes step through the scale. Every other phrase
    answers the previous one with its rhythm. Notes stay in the lead instrument's range.
    """
    lo, hi = lead_range(style.lead_program)
    centre = lead_centre(style.lead_program)
    scale = _scale(key, style)
    pool = [p for p in range(lo, hi + 1) if p % 12 in scale]
    density = min(1.0, shape.lead_density * (1.2 if style.groove in ("jazz", "funk") else 1.0))
    end = bars[-1].end
    pulse_starts = {round(p.start, 6) for bar in bars for p in bar.pulses}
    notes: list[Note] = []
    pitch = int(min(pool, key=lambda p: abs(p - centre)))
    last = -1
    previous_rhythm: list[tuple[float, float]] | None = None
    base_vel = (70 + 22 * shape.energy) * shape.velocity * style.velocity
    for i in range(0, len(bars), 2):
        group = list(bars[i : i + 2])
        if shape.lead_density < 0.35 and (i // 2) % 2 == 1:
            previous_rhythm = None
            continue  # sparse roles leave every other phrase empty
        offset = group[0].start
        if previous_rhythm is not None and rng.random() < 0.6:
            span = group[-1].end
            rhythm = [(offset + b, length) for b, length in previous_rhythm if offset + b < span - 0.25]
            previous_rhythm = None
        else:
            rhythm = _phrase_rhythm(group, density, style, rng)
            previous_rhythm = [(b - offset, length) for b, length in rhythm]
        for j, (b, length) in enumerate(rhythm):
            chord = chord_at(chords, b)
            step = int(rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]))
            if abs(pitch - centre) > 5:  # drifted away: step back towards the centre
                step = abs(step) if pitch < centre else -abs(step)
            idx = min(range(len(pool)), key=lambda k: abs(pool[k] - pitch))
            idx = int(np.clip(idx + step, 0, len(pool) - 1))
            pitch = pool[idx]
            strong = round(b, 6) in pulse_starts or j == len(rhythm) - 1
            if strong and chord.pitch_classes:
                target = pitch
                tones = sorted(
                    (p for p in range(lo, hi + 1) if p % 12 in chord.pitch_classes),
                    key=lambda p: abs(p - target),
                )
                if tones:
                    pitch = tones[0]
                    # avoid hammering one note: move to the next chord tone most of the time
                    if pitch == last and len(tones) > 1 and abs(tones[1] - target) <= 5 and rng.random() < 0.7:
                        pitch = tones[1]
            stop = min(b + length * 0.95, end)
            if j + 1 < len(rhythm):
                stop = min(stop, rhythm[j + 1][0])
            if stop - b < 0.05:
                continue
            vel = clamp_velocity(base_vel * (1.06 if strong else 0.94) * float(rng.uniform(0.93, 1.05)))
            notes.append(Note(pitch, b, stop, vel))
            last = pitch
    return notes

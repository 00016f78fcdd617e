"""The bar and pulse grid of a section, in any metre, from the project's tempo map.

A *pulse* is the felt beat of a bar: a quarter note in 4/4 or 3/4, a dotted quarter in 6/8, and
the 2+2+3 eighth-note groups of 7/8. Patterns in this package are written against pulses so they
work in every metre.
"""

from __future__ import annotations

from dataclasses import dataclass

from conditioning.timeline import BEAT_EPSILON, TempoMap


@dataclass(frozen=True)
class Pulse:
    """One felt beat of a bar.

    Attributes:
        start: onset in beats from the project start.
        length: length in beats.
        compound: True when the pulse divides into three eighth notes (6/8, 7/8's last group).
        index: position of the pulse in its bar (0 = downbeat).
    """

    start: float
    length: float
    compound: bool
    index: int

    @property
    def end(self) -> float:
        """End in beats (exclusive)."""
        return self.start + self.length

    def eighths(self) -> list[float]:
        """Onsets (beats) of the eighth notes inside the pulse."""
        count = max(1, round(self.length / 0.5))
        return [self.start + 0.5 * i for i in range(count)]

    def sixteenths(self) -> list[float]:
        """Onsets (beats) of the sixteenth notes inside the pulse."""
        count = max(1, round(self.length / 0.25))
        return [self.start + 0.25 * i for i in range(count)]

    @property
    def offbeat(self) -> float:
        """The "and" of the pulse in beats: the middle of a simple pulse, the last eighth of a compound one."""
        if self.compound:
            return self.start + self.length - 0.5
        return self.start + self.length / 2


@dataclass(frozen=True)
class Bar:
    """One bar (or the partial bar at a section edge).

    Attributes:
        index: 0-based index of the bar in the section.
        start: start in beats from the project start.
        length: length in beats (quarter notes).
        numerator: time-signature numerator in force.
        denominator: time-signature denominator in force.
        pulses: the felt beats of the bar.
    """

    index: int
    start: float
    length: float
    numerator: int
    denominator: int
    pulses: tuple[Pulse, ...]

    @property
    def end(self) -> float:
        """End in beats (exclusive)."""
        return self.start + self.length

    @property
    def backbeats(self) -> tuple[Pulse, ...]:
        """Pulses that carry the snare in a backbeat groove (2 and 4 in 4/4; 2 and 3 in 3/4)."""
        if len(self.pulses) == 3 and not self.pulses[-1].compound and self.numerator == 3:
            return self.pulses[1:]
        if len(self.pulses) == 1:
            return ()
        return tuple(p for p in self.pulses if p.index % 2 == 1)

    @property
    def downbeats(self) -> tuple[Pulse, ...]:
        """Pulses that carry the kick in a backbeat groove (1 and 3 in 4/4)."""
        return tuple(p for p in self.pulses if p.index % 2 == 0)


def _group_lengths(numerator: int, denominator: int) -> list[tuple[float, bool]]:
    """Pulse lengths (beats) and compound flags of one full bar."""
    unit = 4.0 / denominator
    if denominator <= 4:
        return [(unit, False)] * numerator
    if numerator % 3 == 0 and numerator > 3:
        return [(3 * unit, True)] * (numerator // 3)
    if numerator == 3:
        return [(3 * unit, True)]
    if numerator % 2 == 0:
        return [(2 * unit, False)] * (numerator // 2)
    # odd metres: groups of two ending on a group of three (5 = 2+3, 7 = 2+2+3)
    return [(2 * unit, False)] * ((numerator - 3) // 2) + [(3 * unit, True)]


def section_bars(tempo_map: TempoMap, start_beat: float, end_beat: float) -> list[Bar]:
    """Bars (and their pulses) covering ``[start_beat, end_beat)``.

    Args:
        tempo_map: the project's tempo map (bar lines, metre changes).
        start_beat: section start in beats.
        end_beat: section end in beats.

    Returns:
        Bars in time order; a section that starts or ends off a bar line gets partial bars.
    """
    lines = [b for b in tempo_map.bar_lines(start_beat, end_beat)]
    if not lines or lines[0] > start_beat + BEAT_EPSILON:
        lines.insert(0, start_beat)
    lines.append(end_beat)
    bars: list[Bar] = []
    for i, (a, b) in enumerate(zip(lines, lines[1:], strict=False)):
        if b - a <= BEAT_EPSILON:
            continue
        ts = tempo_map.time_signature_at_beat(a + BEAT_EPSILON)
        full = ts.beats_per_bar
        # a partial bar at the section start is aligned to its end (pickup), otherwise to its start
        pickup = i == 0 and b - a < full - BEAT_EPSILON and b < end_beat
        offset = full - (b - a) if pickup else 0.0
        pulses: list[Pulse] = []
        pos = 0.0
        for length, compound in _group_lengths(ts.numerator, ts.denominator):
            lo, hi = pos - offset, pos + length - offset
            pos += length
            lo_c, hi_c = max(lo, 0.0), min(hi, b - a)
            if hi_c - lo_c > BEAT_EPSILON and lo >= -BEAT_EPSILON:
                pulses.append(Pulse(a + lo_c, hi_c - lo_c, compound, len(pulses)))
        if not pulses:
            pulses.append(Pulse(a, b - a, False, 0))
        bars.append(Bar(len(bars), a, b - a, ts.numerator, ts.denominator, tuple(pulses)))
    return bars

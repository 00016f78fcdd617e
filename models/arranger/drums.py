"""The drum part: the musician's drum track when given, otherwise a groove in the prompt's style.

Grooves are written against pulses (see :mod:`models.arranger.grid`), so they play in 4/4, 3/4,
6/8, 7/8 and other metres. A fill closes the last bar before the next section; energetic roles
open with a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from conditioning.types import DrumPattern, Note

from .grid import Bar, Pulse
from .style import Shape, Style, clamp_velocity

KICK, RIM, SNARE, CLAP, HAT, PEDAL, OPEN = 36, 37, 38, 39, 42, 44, 46
CRASH, RIDE, SHAKER, TAMB = 49, 51, 70, 54
TOMS = (50, 48, 47, 45, 43, 41)
CYMBALS = frozenset({CRASH, 52, 55, 57, RIDE, 53, 59, OPEN})
KICKS = frozenset({35, 36})
_TIME_KEEPERS = frozenset({HAT, PEDAL, OPEN, RIDE, 53, 59, SHAKER, TAMB, 69, 82})
#: General MIDI brush kit (program 41 in GM2/GS terms: preset 40 of bank 128 in a SoundFont).
BRUSH_KIT = 40


@dataclass(frozen=True)
class Feel:
    """Section-wide choices drawn once from the seed so each seed grooves a little differently."""

    kick_variant: int
    hat_variant: int
    ghosts: float
    open_hat: bool
    fill_kind: int


Hits = list[tuple[float, int, float]]
Groove = Callable[[Bar, Feel, float, np.random.Generator], Hits]


def swing_at(beat: float, pulse: Pulse, swing: float) -> float:
    """Delay off-beat eighths (and sixteenths) of a simple pulse by ``swing`` (0-1, 1 = triplet)."""
    if pulse.compound or swing <= 0:
        return beat
    rel = (beat - pulse.start) / pulse.length
    if abs(rel - 0.5) < 1e-6:
        return beat + swing * pulse.length / 6
    if abs(rel - 0.25) < 1e-6 or abs(rel - 0.75) < 1e-6:
        return beat + swing * pulse.length / 12
    return beat


def _hats(bar: Bar, pitch: int, base: float, sixteenths: bool, accent: float = 1.25) -> Hits:
    out: Hits = []
    for p in bar.pulses:
        steps = p.sixteenths() if sixteenths else p.eighths()
        for i, b in enumerate(steps):
            out.append((b, pitch, base * (accent if i == 0 else 1.0)))
    return out


def _kicks_and_snares(bar: Bar, feel: Feel, kick_v: float, snare_v: float, snare: int = SNARE) -> Hits:
    out: Hits = [(p.start, KICK, kick_v) for p in bar.downbeats]
    out += [(p.start, snare, snare_v) for p in bar.backbeats]
    backs = bar.backbeats
    if backs and feel.kick_variant % 3 == 1:
        out.append((backs[0].offbeat, KICK, kick_v * 0.8))
    elif backs and feel.kick_variant % 3 == 2 and len(bar.pulses) > 1:
        out.append((bar.pulses[-1].offbeat, KICK, kick_v * 0.75))
    return out


def _groove_pop(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out = _kicks_and_snares(bar, feel, 100, 100)
    out += _hats(bar, RIDE if e > 0.95 and feel.hat_variant % 2 else HAT, 62 + 20 * e, e > 0.9 and feel.hat_variant == 2)
    if feel.open_hat and e > 0.5:
        out.append((bar.pulses[-1].offbeat, OPEN, 80))
    return out


def _groove_rock(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out = _kicks_and_snares(bar, feel, 110, 115)
    if feel.kick_variant % 2 == 0 and len(bar.pulses) > 2:
        out.append((bar.pulses[0].offbeat, KICK, 90))
    out += _hats(bar, RIDE if e > 0.9 else HAT, 70 + 20 * e, False)
    return out


def _groove_funk(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out: Hits = [(bar.pulses[0].start, KICK, 108)]
    for p in bar.pulses[1:]:
        if p.index % 2 == 0:
            out.append((p.start + (0.5 if feel.kick_variant % 2 else 0.0) * p.length, KICK, 96))
    out.append((bar.pulses[0].start + 0.75 * bar.pulses[0].length, KICK, 90))
    out += [(p.start, SNARE, 110) for p in bar.backbeats]
    for p in bar.pulses:
        for b in p.sixteenths()[1:]:
            if rng.random() < feel.ghosts:
                out.append((b, SNARE, 38))
    out += _hats(bar, HAT, 55 + 20 * e, True, accent=1.45)
    return out


def _groove_jazz(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out: Hits = []
    for p in bar.pulses:
        out.append((p.start, RIDE, 78 + 18 * e))
        if p.index % 2 == 1 or p.compound:
            out.append((p.start + p.length * 2 / 3, RIDE, 62 + 15 * e))
            out.append((p.start, PEDAL, 60))
        out.append((p.start, KICK, 32))  # feathered
        if rng.random() < 0.25 + 0.3 * e:
            out.append((p.start + p.length * 2 / 3, SNARE, 40 + 25 * rng.random()))
    return out


def _groove_four(bar: Bar, feel: Feel, e: float, rng: np.random.Generator, house: bool) -> Hits:
    out: Hits = [(p.start, KICK, 115) for p in bar.pulses]
    out += [(p.start, CLAP, 100) for p in bar.backbeats]
    for p in bar.pulses:
        out.append((p.offbeat, OPEN if (house or e > 0.8) else HAT, 85))
        if house or feel.hat_variant:
            out += [(b, HAT, 50) for b in p.sixteenths() if abs(b - p.offbeat) > 1e-6 and b != p.start]
    return out


def _groove_techno(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    return _groove_four(bar, feel, e, rng, house=False)


def _groove_house(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    return _groove_four(bar, feel, e, rng, house=True)


def _groove_disco(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out: Hits = [(p.start, KICK, 110) for p in bar.pulses]
    out += [(p.start, SNARE, 105) for p in bar.backbeats]
    out += [(p.offbeat, OPEN, 85) for p in bar.pulses]
    out += [(p.start, HAT, 70) for p in bar.pulses]
    return out


def _groove_hiphop(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out = _kicks_and_snares(bar, feel, 110, 108, CLAP if feel.hat_variant == 1 else SNARE)
    if len(bar.pulses) > 2:
        out.append((bar.pulses[1].offbeat if feel.kick_variant % 2 else bar.pulses[2].offbeat, KICK, 95))
    out += _hats(bar, HAT, 58 + 20 * e, e > 0.85 and feel.hat_variant != 0)
    return out


def _groove_lofi(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out = _kicks_and_snares(bar, feel, 95, 88, RIM if feel.hat_variant == 0 else SNARE)
    if len(bar.pulses) > 1 and feel.kick_variant != 0:
        out.append((bar.pulses[1].offbeat, KICK, 80))
    out += [h for h in _hats(bar, HAT, 50 + 15 * e, False) if rng.random() > 0.12]
    return out


def _groove_train(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out: Hits = [(p.start, KICK, 100) for p in bar.downbeats]
    backs = {p.index for p in bar.backbeats}
    for p in bar.pulses:
        for i, b in enumerate(p.sixteenths()):
            accent = p.index in backs and i == 0
            out.append((b, SNARE, 112 if accent else 45 + (12 if i == 2 else 0)))
    return out


def _groove_onedrop(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    mid = bar.pulses[len(bar.pulses) // 2]
    out: Hits = [(mid.start, KICK, 105), (mid.start, RIM if e < 0.8 else SNARE, 100)]
    out += _hats(bar, HAT, 55 + 15 * e, False)
    if feel.open_hat:
        out.append((bar.pulses[-1].offbeat, OPEN, 70))
    return out


def _groove_bossa(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    out: Hits = []
    for p in bar.pulses:
        if p.index % 2 == 0:
            out.append((p.start, KICK, 85))
        else:
            out.append((p.offbeat, KICK, 75))
    clave = (0.0, 1.5, 3.0) if bar.index % 2 == 0 else (1.0, 2.5)
    out += [(bar.start + c, RIM, 90) for c in clave if c < bar.length - 1e-6]
    out += _hats(bar, SHAKER if feel.hat_variant else HAT, 55, False)
    return out


def _groove_ballad(bar: Bar, feel: Feel, e: float, rng: np.random.Generator) -> Hits:
    mid = bar.pulses[len(bar.pulses) // 2] if len(bar.pulses) > 1 else None
    out: Hits = [(bar.pulses[0].start, KICK, 95)]
    if mid is not None:
        out.append((mid.start, SNARE if e > 0.5 else RIM, 95))
        if feel.kick_variant % 2:
            out.append((mid.offbeat, KICK, 70))
    out += _hats(bar, RIDE if feel.hat_variant == 2 else HAT, 50 + 20 * e, False)
    return out


GROOVES: dict[str, Groove] = {
    "pop": _groove_pop,
    "rock": _groove_rock,
    "funk": _groove_funk,
    "jazz": _groove_jazz,
    "techno": _groove_techno,
    "house": _groove_house,
    "disco": _groove_disco,
    "hiphop": _groove_hiphop,
    "lofi": _groove_lofi,
    "train": _groove_train,
    "onedrop": _groove_onedrop,
    "bossa": _groove_bossa,
    "ballad": _groove_ballad,
}


#: Grooves defined by an empty "one": their bar lines are carried by the bass (always on 1),
#: the accented hi-hat and the crash at the section start instead of a kick.
_NO_KICK_ON_ONE = frozenset({_groove_onedrop})


def _fill(bar: Bar, kind: int, e: float, rng: np.random.Generator) -> tuple[float, Hits]:
    """A fill over the bar's last pulses; returns (fill start beat, hits)."""
    pulses = bar.pulses[-2:] if (e > 0.6 and len(bar.pulses) > 2) else bar.pulses[-1:]
    start = pulses[0].start
    steps = [b for p in pulses for b in (p.eighths() if p.compound else p.sixteenths())]
    out: Hits = []
    n = len(steps)
    for i, b in enumerate(steps):
        ramp = 70 + 45 * (i + 1) / n
        if kind == 0:  # snare crescendo
            out.append((b, SNARE, ramp))
        elif kind == 1:  # toms down
            out.append((b, TOMS[min(len(TOMS) - 1, i * len(TOMS) // n)], ramp))
        elif kind == 2:  # snare then toms, kick under the pulses
            out.append((b, SNARE if i < n // 2 else TOMS[2 + (i % 3)], ramp))
        elif i % 2 == 0 or rng.random() < 0.4:  # sparse broken fill
            out.append((b, TOMS[int(rng.integers(0, len(TOMS)))], ramp))
    out += [(p.start, KICK, 100) for p in pulses]
    return start, out


def _build_roll(bars: Sequence[Bar]) -> Hits:
    out: Hits = []
    total = bars[-1].end - bars[0].start
    for bar in bars:
        for p in bar.pulses:
            sub = p.sixteenths() if bar.index == bars[-1].index else p.eighths()
            for b in sub:
                out.append((b, SNARE, 55 + 65 * (b - bars[0].start) / total))
    return out


def drum_part(
    bars: Sequence[Bar],
    style: Style,
    shape: Shape,
    rng: np.random.Generator,
    *,
    given: DrumPattern | None,
    fill: bool,
) -> list[Note]:
    """The drum notes (beats, GM drum pitches) for a section.

    Args:
        bars: the section's bars.
        style: the style from the prompt.
        shape: the section role's shape.
        rng: the section's random generator.
        given: the musician's drum track; its notes inside the section are played as they are.
        fill: end the last bar with a fill (a section follows).

    Returns:
        Notes sorted by onset.
    """
    start, end = bars[0].start, bars[-1].end
    if given is not None and (given.notes or given.hits):
        if given.notes:
            notes = [n for n in given.notes if start <= n.start_beat < end]
        else:
            notes = [Note(h.pitch, h.beat, h.beat + 0.25, h.velocity) for h in given.in_range(start, end)]
        if notes:
            return sorted(notes, key=lambda n: (n.start_beat, n.pitch))
    feel = Feel(
        kick_variant=int(rng.integers(0, 3)),
        hat_variant=int(rng.integers(0, 3)),
        ghosts=float(rng.uniform(0.1, 0.35)),
        open_hat=bool(rng.random() < 0.5),
        fill_kind=int(rng.integers(0, 4)),
    )
    groove = GROOVES.get(style.groove, _groove_pop)
    if shape.alternate and style.groove in ("pop", "rock", "hiphop", "lofi"):
        groove = _groove_ballad  # half-time feel for bridges and interludes
    hits: Hits = []
    build_from = len(bars) - max(1, min(2, len(bars) // 2))
    for bar in bars:
        bar_hits = groove(bar, feel, shape.energy, rng)
        last = bar.index == len(bars) - 1
        if shape.drums == "light":
            bar_hits = [(b, p if p != SNARE else RIM, v * 0.8) for b, p, v in bar_hits if p in _TIME_KEEPERS or p in (SNARE, RIM, CLAP) or (p in KICKS and abs(b - bar.start) < 1e-6)]
        elif shape.drums == "minimal":
            keep = bar.index % 2 == 0
            bar_hits = [(b, p, v * 0.75) for b, p, v in bar_hits if keep and (p in _TIME_KEEPERS or abs(b - bar.start) < 1e-6) and p not in (SNARE, CLAP)]
        if shape.drums == "build" and bar.index >= build_from and fill:
            bar_hits = [h for h in bar_hits if h[1] not in (SNARE, CLAP, RIM)]
            if bar.index == build_from:
                hits += _build_roll(bars[build_from:])
        elif last and fill and shape.drums != "minimal":
            fill_start, fill_hits = _fill(bar, feel.fill_kind, shape.energy, rng)
            bar_hits = [h for h in bar_hits if h[0] < fill_start - 1e-6] + fill_hits
        elif bar.index % 4 == 3 and feel.open_hat and shape.drums == "full":
            bar_hits.append((bar.pulses[-1].offbeat, OPEN, 75))
        if last and shape.ending and not fill:
            bar_hits = [(bar.start, CRASH, 110), (bar.start, KICK, 110)]
        if (shape.drums != "minimal" and groove not in _NO_KICK_ON_ONE
                and not any(p in KICKS and abs(b - bar.start) < 1e-6 for b, p, _ in bar_hits)):
            bar_hits.append((bar.start, KICK, 92))  # every bar line is heard: a kick on 1
        hits += bar_hits
    if shape.drums != "minimal":
        # a crash marks where the section starts (loudest where the role asks for it)
        hits.insert(0, (bars[0].start, CRASH, 112 if shape.crash else 88))
    if style.drum_kit == BRUSH_KIT:
        # brushes sweep the snare where sticks would play the hi-hat
        hits = [(b, SNARE, v * 0.6) if p in (HAT, PEDAL) else (b, p, v) for b, p, v in hits]
    return _to_notes(hits, bars, style, shape, rng, end)


def on_pulses_only(notes: Sequence[Note], bars: Sequence[Bar]) -> list[Note]:
    """The notes of a drum part that start on a pulse (a sparse version of the part)."""
    starts = [p.start for bar in bars for p in bar.pulses]
    return [n for n in notes if any(abs(n.start_beat - s) < 1e-6 for s in starts)]


def _to_notes(hits: Hits, bars: Sequence[Bar], style: Style, shape: Shape, rng: np.random.Generator, end: float) -> list[Note]:
    pulses = [p for bar in bars for p in bar.pulses]
    starts = [p.start for p in pulses]
    scale = shape.velocity * style.velocity
    seen: dict[tuple[int, int], Note] = {}
    for beat, pitch, vel in hits:
        idx = max(0, int(np.searchsorted(starts, beat + 1e-9)) - 1)
        b = swing_at(beat, pulses[idx], style.swing) if pitch not in (CRASH, RIDE) or style.groove != "jazz" else beat
        if not bars[0].start - 1e-9 <= b < end - 1e-6:
            continue
        length = 4.0 if pitch in (CRASH, 57) else 0.25
        v = clamp_velocity(vel * scale * float(rng.uniform(0.92, 1.06)))
        key = (round(b * 480), pitch)
        if key not in seen or seen[key].velocity < v:
            seen[key] = Note(pitch, b, min(b + length, end) if min(b + length, end) > b else b + 1e-3, v)
    return sorted(seen.values(), key=lambda n: (n.start_beat, n.pitch))


def kick_onsets(notes: Sequence[Note]) -> list[float]:
    """Beats of the kick drum hits in a drum part."""
    return sorted({round(n.start_beat, 6) for n in notes if n.pitch in KICKS})

"""Musical time: tempo maps, bars, beats, seconds and samples, and song sections.

Units (contract, see DESIGN.md):
    * beats are quarter notes (float) from the project start, as REAPER's QN and Live's beats;
    * bars are 1-based;
    * seconds from the project start;
    * tempo in quarter notes per minute.

A time signature of ``n/d`` makes a bar ``n * 4 / d`` beats long (6/8 is 3 beats, 7/8 is 3.5).
Tempo is constant between tempo points (no ramps). A time-signature change must fall on a bar
line of the metre before it.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conditioning.schema import unknown_keys_message

#: Tolerance in beats when checking that a position sits on a bar line.
BEAT_EPSILON = 1e-6

_VALID_DENOMINATORS = frozenset({1, 2, 4, 8, 16, 32, 64})


@dataclass(frozen=True)
class TimeSignature:
    """A metre such as 4/4, 6/8 or 7/8."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        if not isinstance(self.numerator, int) or not 1 <= self.numerator <= 64:
            raise ValueError(
                f"time signature numerator {self.numerator!r} is not a whole number 1-64; "
                "write the metre as [beats, note value], e.g. [4, 4] or [7, 8]"
            )
        if self.denominator not in _VALID_DENOMINATORS:
            raise ValueError(
                f"time signature denominator {self.denominator!r} is not a power of two "
                "(1, 2, 4, 8, 16, 32 or 64); e.g. [6, 8] for six-eight"
            )

    @property
    def beats_per_bar(self) -> float:
        """Length of one bar in quarter-note beats."""
        return self.numerator * 4.0 / self.denominator

    def as_list(self) -> list[int]:
        """The ``[numerator, denominator]`` form used in requests and manifests."""
        return [self.numerator, self.denominator]

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True)
class TempoPoint:
    """A tempo and metre that hold from ``beat`` until the next point.

    Attributes:
        beat: position in quarter-note beats from the project start.
        bpm: tempo in quarter notes per minute (> 0).
        time_signature: metre in force from this point.
    """

    beat: float
    bpm: float
    time_signature: TimeSignature = TimeSignature(4, 4)

    def __post_init__(self) -> None:
        if not math.isfinite(self.beat) or self.beat < 0:
            raise ValueError(f"tempo point at beat {self.beat!r}: beats must be >= 0")
        if not math.isfinite(self.bpm) or self.bpm <= 0:
            raise ValueError(
                f"tempo of {self.bpm!r} bpm at beat {self.beat:g} is not playable; "
                "give a tempo above 0 bpm (e.g. 92)"
            )
        if self.bpm > 1000:
            raise ValueError(f"tempo of {self.bpm:g} bpm at beat {self.beat:g} is above 1000 bpm")

    def to_json(self) -> dict[str, Any]:
        """The request/manifest v1 form: ``{"beat", "bpm", "time_signature"}``."""
        return {"beat": self.beat, "bpm": self.bpm, "time_signature": self.time_signature.as_list()}


@dataclass(frozen=True)
class _BarSegment:
    """A run of bars of one metre: bar ``first_bar`` starts at ``beat``."""

    first_bar: float
    beat: float
    beats_per_bar: float


class TempoMap:
    """Exact conversions between bars, beats, seconds and samples.

    Args:
        points: tempo points; sorted by beat on construction. If the first point is after
            beat 0, its tempo and metre also hold before it (as in REAPER).

    Raises:
        ValueError: no points, two points at one beat, or a metre change off a bar line.
    """

    def __init__(self, points: Iterable[TempoPoint]) -> None:
        pts = sorted(points, key=lambda p: p.beat)
        if not pts:
            raise ValueError("the tempo map is empty; give at least one tempo point, e.g. 120 bpm 4/4")
        if pts[0].beat > 0:
            first = pts[0]
            pts.insert(0, TempoPoint(0.0, first.bpm, first.time_signature))
        for a, b in zip(pts, pts[1:], strict=False):
            if b.beat - a.beat <= BEAT_EPSILON:
                raise ValueError(
                    f"two tempo points at beat {b.beat:g}; keep one tempo point per position"
                )
        self._points: tuple[TempoPoint, ...] = tuple(pts)
        self._beats = [p.beat for p in pts]
        # Seconds at each point.
        secs = [0.0]
        for a, b in zip(pts, pts[1:], strict=False):
            secs.append(secs[-1] + (b.beat - a.beat) * 60.0 / a.bpm)
        self._seconds = secs
        self._bar_segments = self._build_bar_segments(pts)
        self._bar_seg_beats = [s.beat for s in self._bar_segments]
        self._bar_seg_bars = [s.first_bar for s in self._bar_segments]

    @staticmethod
    def _build_bar_segments(pts: Sequence[TempoPoint]) -> list[_BarSegment]:
        segments = [_BarSegment(1.0, 0.0, pts[0].time_signature.beats_per_bar)]
        current = pts[0].time_signature
        for p in pts[1:]:
            if p.time_signature == current:
                continue
            seg = segments[-1]
            bars_elapsed = (p.beat - seg.beat) / seg.beats_per_bar
            if abs(bars_elapsed - round(bars_elapsed)) > BEAT_EPSILON:
                prev_line = seg.beat + math.floor(bars_elapsed) * seg.beats_per_bar
                raise ValueError(
                    f"time signature change to {p.time_signature} at beat {p.beat:g} is not on a "
                    f"bar line (the bar in {current} starts at beat {prev_line:g}); "
                    "move the change to the start of a bar"
                )
            segments.append(
                _BarSegment(
                    seg.first_bar + round(bars_elapsed), p.beat, p.time_signature.beats_per_bar
                )
            )
            current = p.time_signature
        return segments

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def constant(cls, bpm: float, time_signature: tuple[int, int] = (4, 4)) -> TempoMap:
        """A tempo map with one tempo and one metre."""
        return cls([TempoPoint(0.0, bpm, TimeSignature(*time_signature))])

    @classmethod
    def from_json(cls, data: Sequence[Mapping[str, Any]]) -> TempoMap:
        """Parse the request v1 ``tempo_map`` list.

        Raises:
            ValueError: a point is malformed; the message names which one.
        """
        if not isinstance(data, Sequence) or isinstance(data, str | bytes) or not data:
            raise ValueError(
                "tempo_map must be a non-empty list like "
                '[{"beat": 0, "bpm": 92, "time_signature": [4, 4]}]'
            )
        points = []
        for i, raw in enumerate(data):
            if not isinstance(raw, Mapping):
                raise ValueError(f"tempo_map[{i}] must be an object with beat, bpm, time_signature")
            unknown = unknown_keys_message(raw, ("beat", "bpm", "time_signature"), f"tempo_map[{i}]")
            if unknown:
                raise ValueError(unknown)
            try:
                beat = float(raw.get("beat", 0.0))
                bpm = float(raw["bpm"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"tempo_map[{i}] needs numeric 'beat' and 'bpm' ({exc})") from None
            ts_raw = raw.get("time_signature", [4, 4])
            if (
                not isinstance(ts_raw, Sequence)
                or isinstance(ts_raw, str)
                or len(ts_raw) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in ts_raw)
            ):
                raise ValueError(
                    f"tempo_map[{i}].time_signature must be two whole numbers like [4, 4]"
                )
            try:
                points.append(TempoPoint(beat, bpm, TimeSignature(ts_raw[0], ts_raw[1])))
            except ValueError as exc:
                raise ValueError(f"tempo_map[{i}]: {exc}") from None
        return cls(points)

    def to_json(self) -> list[dict[str, Any]]:
        """The request/manifest v1 ``tempo_map`` list."""
        return [p.to_json() for p in self._points]

    # -- queries --------------------------------------------------------------------------
    @property
    def points(self) -> tuple[TempoPoint, ...]:
        """Tempo points sorted by beat; the first is at beat 0."""
        return self._points

    def _index_at_beat(self, beat: float) -> int:
        return max(0, bisect.bisect_right(self._beats, beat) - 1)

    def point_at_beat(self, beat: float) -> TempoPoint:
        """The tempo point in force at ``beat``."""
        return self._points[self._index_at_beat(beat)]

    def bpm_at_beat(self, beat: float) -> float:
        """Tempo (quarter notes per minute) in force at ``beat``."""
        return self.point_at_beat(beat).bpm

    def time_signature_at_beat(self, beat: float) -> TimeSignature:
        """Metre in force at ``beat``."""
        return self.point_at_beat(beat).time_signature

    def beat_to_seconds(self, beat: float) -> float:
        """Seconds from the project start at ``beat`` (beats before 0 use the first tempo)."""
        i = self._index_at_beat(beat)
        p = self._points[i]
        return self._seconds[i] + (beat - p.beat) * 60.0 / p.bpm

    def seconds_to_beat(self, seconds: float) -> float:
        """Beat position at ``seconds`` from the project start."""
        i = max(0, bisect.bisect_right(self._seconds, seconds) - 1)
        p = self._points[i]
        return p.beat + (seconds - self._seconds[i]) * p.bpm / 60.0

    def bar_to_beat(self, bar: float) -> float:
        """Beat at which (1-based, possibly fractional) ``bar`` starts."""
        i = max(0, bisect.bisect_right(self._bar_seg_bars, bar) - 1)
        seg = self._bar_segments[i]
        return seg.beat + (bar - seg.first_bar) * seg.beats_per_bar

    def beat_to_bar(self, beat: float) -> float:
        """1-based fractional bar position of ``beat`` (bar 1 starts at beat 0)."""
        i = max(0, bisect.bisect_right(self._bar_seg_beats, beat + BEAT_EPSILON) - 1)
        seg = self._bar_segments[i]
        return seg.first_bar + (beat - seg.beat) / seg.beats_per_bar

    def beats_per_bar_at(self, bar: int) -> float:
        """Length of (1-based) ``bar`` in beats."""
        return self.bar_to_beat(bar + 1) - self.bar_to_beat(bar)

    def bar_lines(self, start_beat: float, end_beat: float) -> list[float]:
        """Beats of every bar line in ``[start_beat, end_beat)``."""
        first = math.ceil(self.beat_to_bar(start_beat) - BEAT_EPSILON)
        lines = []
        bar = max(1, first)
        while True:
            b = self.bar_to_beat(bar)
            if b >= end_beat - BEAT_EPSILON:
                break
            lines.append(b)
            bar += 1
        return lines

    @staticmethod
    def seconds_to_samples(seconds: float, sample_rate: int) -> int:
        """Sample index nearest to ``seconds`` at ``sample_rate`` Hz."""
        return int(round(seconds * sample_rate))

    def beat_to_samples(self, beat: float, sample_rate: int) -> int:
        """Sample index nearest to ``beat`` at ``sample_rate`` Hz."""
        return self.seconds_to_samples(self.beat_to_seconds(beat), sample_rate)

    def span_samples(self, start_beat: float, end_beat: float, sample_rate: int) -> int:
        """Exact length in samples of ``[start_beat, end_beat)``; adjacent spans tile exactly."""
        return self.beat_to_samples(end_beat, sample_rate) - self.beat_to_samples(start_beat, sample_rate)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TempoMap) and self._points == other._points

    def __hash__(self) -> int:
        return hash(self._points)

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.beat:g}:{p.bpm:g}bpm {p.time_signature}" for p in self._points)
        return f"TempoMap([{inner}])"


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------

_ROLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pre-chorus", re.compile(r"\bpre[\s_-]*(chorus|hook|refrain)\b|\bprechorus\b|\bpre\b")),
    ("post-chorus", re.compile(r"\bpost[\s_-]*(chorus|hook|refrain)\b|\bpostchorus\b")),
    ("intro", re.compile(r"\bintro(duction)?\b|\bopening\b")),
    ("verse", re.compile(r"\bverse\b|\bvs\b|\bv \d+\b|\bstrophe\b")),
    ("chorus", re.compile(r"\bchorus\b|\brefrain\b|\bhook\b|\bch\b|\bc \d+\b")),
    ("bridge", re.compile(r"\bbridge\b|\bmiddle[\s_-]*(8|eight)\b")),
    ("breakdown", re.compile(r"\bbreak[\s_-]*down\b")),
    ("break", re.compile(r"\bbreak\b")),
    ("drop", re.compile(r"\bdrop\b")),
    ("build", re.compile(r"\bbuild(up|[\s_-]*up)?\b|\briser\b")),
    ("solo", re.compile(r"\bsolo\b")),
    ("interlude", re.compile(r"\binterlude\b|\binstrumental\b")),
    ("outro", re.compile(r"\boutro\b|\bending\b|\bcoda\b|\bend\b|\btag\b")),
)


def role_from_name(name: str) -> str:
    """Infer a section role from a marker/region name.

    "Chorus 2", "CHORUS", "chorus-b" are choruses; "Pre-Chorus" is a pre-chorus;
    an unrecognised name gives ``"section"``.
    """
    text = re.sub(r"([a-z])(\d)", r"\1 \2", name.strip().lower())
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(text):
            return role
    return "section"


@dataclass(frozen=True)
class Section:
    """A named span of the song.

    Attributes:
        name: the name the musician gave (region or locator name).
        role: the role parsed from the name by :func:`role_from_name` ("section" when none fits).
        start_beat: start in beats (inclusive).
        end_beat: end in beats (exclusive).
        start_bar: 1-based bar at the start (fractional when the section is off the bar grid).
        end_bar: 1-based bar at the end (exclusive).
    """

    name: str
    role: str
    start_beat: float
    end_beat: float
    start_bar: float
    end_bar: float

    @classmethod
    def from_bars(cls, name: str, start_bar: float, end_bar: float, tempo_map: TempoMap) -> Section:
        """A section covering bars ``[start_bar, end_bar)`` (1-based, end exclusive).

        Raises:
            ValueError: bars start before 1 or run backwards.
        """
        if start_bar < 1:
            raise ValueError(f"section {name!r} starts at bar {start_bar:g}; bars are counted from 1")
        if end_bar <= start_bar:
            raise ValueError(
                f"section {name!r} runs from bar {start_bar:g} to bar {end_bar:g}; "
                "the end bar must be after the start bar (end is exclusive: bars 1-9 is 8 bars)"
            )
        return cls(
            name=name,
            role=role_from_name(name),
            start_beat=tempo_map.bar_to_beat(start_bar),
            end_beat=tempo_map.bar_to_beat(end_bar),
            start_bar=float(start_bar),
            end_bar=float(end_bar),
        )

    @classmethod
    def from_beats(cls, name: str, start_beat: float, end_beat: float, tempo_map: TempoMap) -> Section:
        """A section covering beats ``[start_beat, end_beat)``.

        Raises:
            ValueError: negative start or a span that runs backwards.
        """
        if start_beat < 0:
            raise ValueError(f"section {name!r} starts at beat {start_beat:g}; beats start at 0")
        if end_beat <= start_beat:
            raise ValueError(
                f"section {name!r} runs from beat {start_beat:g} to {end_beat:g}; "
                "the end must be after the start"
            )
        return cls(
            name=name,
            role=role_from_name(name),
            start_beat=float(start_beat),
            end_beat=float(end_beat),
            start_bar=tempo_map.beat_to_bar(start_beat),
            end_bar=tempo_map.beat_to_bar(end_beat),
        )

    @property
    def length_beats(self) -> float:
        """Length in beats."""
        return self.end_beat - self.start_beat

    def start_seconds(self, tempo_map: TempoMap) -> float:
        """Start in seconds from the project start."""
        return tempo_map.beat_to_seconds(self.start_beat)

    def length_seconds(self, tempo_map: TempoMap) -> float:
        """Length in seconds."""
        return tempo_map.beat_to_seconds(self.end_beat) - tempo_map.beat_to_seconds(self.start_beat)

    def length_samples(self, tempo_map: TempoMap, sample_rate: int) -> int:
        """Exact length in samples at ``sample_rate``; consecutive sections tile exactly."""
        return tempo_map.span_samples(self.start_beat, self.end_beat, sample_rate)

    def contains_beat(self, beat: float) -> bool:
        """True when ``beat`` lies in ``[start_beat, end_beat)``."""
        return self.start_beat - BEAT_EPSILON <= beat < self.end_beat - BEAT_EPSILON

    @property
    def slug(self) -> str:
        """A file-name-safe form of the name: "Chorus 1" -> "chorus-1"."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        return slug or "section"


def validate_sections(sections: Sequence[Section]) -> list[Section]:
    """Sort sections by start and check they do not overlap.

    Returns:
        The sections in time order.

    Raises:
        ValueError: no sections, or two sections overlap; the message names both.
    """
    if not sections:
        raise ValueError("no sections: mark at least one region/locator, or give a bar range")
    ordered = sorted(sections, key=lambda s: s.start_beat)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start_beat < a.end_beat - BEAT_EPSILON:
            raise ValueError(
                f"sections {a.name!r} (bars {a.start_bar:g}-{a.end_bar:g}) and {b.name!r} "
                f"(bars {b.start_bar:g}-{b.end_bar:g}) overlap; end one where the next starts"
            )
    return ordered

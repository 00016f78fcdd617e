"""Harte chord labels (the syntax mir_eval reads): parsing, formatting, pitch-class sets.

A label is ``root:quality(extensions)/bass`` — ``C:maj``, ``A:min7``, ``G:7/3``, ``F:maj/3``,
``G:sus4(b7)``, ``C:(3,5)`` — or ``N`` for "no chord". The bass is an interval above the root
(``/3`` is the third, ``/b7`` the flat seventh). A bare root (``C``) means ``C:maj``.
Pitch classes are integers with 0 = C.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conditioning.types import PITCH_CLASS_NAMES

#: The "no chord" label.
NO_CHORD = "N"

#: Shorthand qualities and their intervals in semitones above the root.
QUALITY_INTERVALS: dict[str, frozenset[int]] = {
    "maj": frozenset({0, 4, 7}),
    "min": frozenset({0, 3, 7}),
    "dim": frozenset({0, 3, 6}),
    "aug": frozenset({0, 4, 8}),
    "maj7": frozenset({0, 4, 7, 11}),
    "min7": frozenset({0, 3, 7, 10}),
    "7": frozenset({0, 4, 7, 10}),
    "dim7": frozenset({0, 3, 6, 9}),
    "hdim7": frozenset({0, 3, 6, 10}),
    "minmaj7": frozenset({0, 3, 7, 11}),
    "maj6": frozenset({0, 4, 7, 9}),
    "min6": frozenset({0, 3, 7, 9}),
    "9": frozenset({0, 4, 7, 10, 2}),
    "maj9": frozenset({0, 4, 7, 11, 2}),
    "min9": frozenset({0, 3, 7, 10, 2}),
    "11": frozenset({0, 4, 7, 10, 2, 5}),
    "min11": frozenset({0, 3, 7, 10, 2, 5}),
    "13": frozenset({0, 4, 7, 10, 2, 9}),
    "maj13": frozenset({0, 4, 7, 11, 2, 9}),
    "min13": frozenset({0, 3, 7, 10, 2, 9}),
    "sus2": frozenset({0, 2, 7}),
    "sus4": frozenset({0, 5, 7}),
    "5": frozenset({0, 7}),
    "1": frozenset({0}),
}

_NATURAL_ROOTS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11}
#: How a bass interval (semitones above the root) is written after the slash.
_INTERVAL_NAMES = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")
_LABEL_RE = re.compile(
    r"^(?P<root>[A-G][#b]*)(?::(?P<quality>[A-Za-z0-9]*)(?:\((?P<ext>[^()]*)\))?)?(?:/(?P<bass>[#b]*\d+))?$"
)
_INTERVAL_RE = re.compile(r"^(?P<acc>[#b]*)(?P<deg>\d+)$")
_EXAMPLE = "e.g. 'C:maj', 'A:min7', 'G:7/3' or 'N'"


@dataclass(frozen=True)
class HarteChord:
    """A parsed chord label.

    Attributes:
        root: root pitch class 0-11 (0 = C), or None for "N".
        quality: shorthand quality ("maj", "min7", ...); "" for "N" or a bare interval list.
        intervals: chord tones as semitones above the root (always contains 0 unless "N").
        bass: bass as semitones above the root (0 = root position).
        extensions: the raw parenthesised interval list, e.g. ("b7",) for ``sus4(b7)``.
    """

    root: int | None
    quality: str
    intervals: frozenset[int]
    bass: int = 0
    extensions: tuple[str, ...] = ()

    @property
    def is_no_chord(self) -> bool:
        """True for the "N" label."""
        return self.root is None

    @property
    def pitch_classes(self) -> frozenset[int]:
        """Absolute pitch classes of the chord (empty for "N"), bass included."""
        if self.root is None:
            return frozenset()
        return frozenset((self.root + i) % 12 for i in self.intervals | {self.bass})

    @property
    def bass_pitch_class(self) -> int | None:
        """Absolute pitch class of the bass note, or None for "N"."""
        return None if self.root is None else (self.root + self.bass) % 12

    @property
    def label(self) -> str:
        """The canonical Harte label, e.g. "F#:min7/b7"."""
        if self.root is None:
            return NO_CHORD
        text = f"{PITCH_CLASS_NAMES[self.root]}:{self.quality}"
        if self.extensions:
            text += "(" + ",".join(self.extensions) + ")"
        if self.bass:
            text += "/" + _INTERVAL_NAMES[self.bass]
        return text


def interval_semitones(interval: str) -> int:
    """Semitones (0-11) of a Harte interval such as "3", "b7", "#11".

    Raises:
        ValueError: the text is not an interval.
    """
    m = _INTERVAL_RE.match(interval.strip())
    if not m or not 1 <= int(m.group("deg")) <= 15:
        raise ValueError(f"{interval!r} is not a chord interval; write one like '3', 'b7' or '#11'")
    deg = int(m.group("deg"))
    base = _DEGREE_SEMITONES[(deg - 1) % 7 + 1]
    acc = m.group("acc")
    return (base + acc.count("#") - acc.count("b")) % 12


def parse_pitch_class(name: str) -> int:
    """Pitch class of a note name such as "C", "F#", "Bb", "Cb".

    Raises:
        ValueError: not a note name.
    """
    text = name.strip()
    if not text or text[0] not in _NATURAL_ROOTS or any(c not in "#b" for c in text[1:]):
        raise ValueError(f"{name!r} is not a note name; use a letter A-G with optional # or b, e.g. 'F#'")
    return (_NATURAL_ROOTS[text[0]] + text.count("#") - text[1:].count("b")) % 12


def parse_harte(label: str) -> HarteChord:
    """Parse a Harte chord label.

    Args:
        label: e.g. "C:maj", "A:min7", "G:7/3", "G:sus4(b7)", "C:(3,5)", "C", "N" ("X" is read
            as "N").

    Returns:
        The parsed chord.

    Raises:
        ValueError: the label is not Harte syntax or names an unknown quality; the message
            names the label and shows a good one.
    """
    if not isinstance(label, str):
        raise TypeError(f"a chord label must be text like 'C:maj', got {type(label).__name__}")
    text = label.strip()
    if text in ("N", "X"):
        return HarteChord(None, "", frozenset())
    m = _LABEL_RE.match(text)
    if not m:
        raise ValueError(f"chord label {label!r} is not Harte syntax; write it as root:quality, {_EXAMPLE}")
    root = parse_pitch_class(m.group("root"))
    quality = m.group("quality")
    ext_text = m.group("ext")
    if quality is None:  # bare root
        quality = "maj"
    if quality and quality not in QUALITY_INTERVALS:
        known = ", ".join(QUALITY_INTERVALS)
        raise ValueError(f"chord label {label!r} has unknown quality {quality!r}; known: {known} ({_EXAMPLE})")
    if not quality and ext_text is None:
        raise ValueError(f"chord label {label!r} has no quality after ':'; {_EXAMPLE}")
    intervals = set(QUALITY_INTERVALS[quality]) if quality else {0}
    extensions: tuple[str, ...] = ()
    if ext_text is not None:
        extensions = tuple(e.strip() for e in ext_text.split(",") if e.strip())
        for ext in extensions:
            try:
                if ext.startswith("*"):
                    intervals.discard(interval_semitones(ext[1:]))
                else:
                    intervals.add(interval_semitones(ext))
            except ValueError:
                raise ValueError(f"chord label {label!r}: {ext!r} is not an interval ({_EXAMPLE})") from None
    bass = 0
    if m.group("bass") is not None:
        try:
            bass = interval_semitones(m.group("bass"))
        except ValueError:
            raise ValueError(f"chord label {label!r}: the bass after '/' must be an interval like '3' or 'b7'") from None
    return HarteChord(root, quality, frozenset(intervals), bass, extensions)


def is_valid_label(label: str) -> bool:
    """True when :func:`parse_harte` accepts ``label``."""
    try:
        parse_harte(label)
    except (ValueError, TypeError):
        return False
    return True


def format_harte(root: int | None, quality: str = "maj", bass: int = 0) -> str:
    """Build a Harte label from a root pitch class, a shorthand quality and a bass interval.

    Args:
        root: pitch class 0-11, or None for "N".
        quality: a key of :data:`QUALITY_INTERVALS`.
        bass: bass note in semitones above the root (0 = root position).

    Raises:
        ValueError: unknown quality or out-of-range root.
    """
    if root is None:
        return NO_CHORD
    if not 0 <= root < 12:
        raise ValueError(f"root pitch class {root} must be 0-11 (0 = C)")
    if quality not in QUALITY_INTERVALS:
        raise ValueError(f"unknown chord quality {quality!r}; known: {', '.join(QUALITY_INTERVALS)}")
    return HarteChord(root, quality, QUALITY_INTERVALS[quality], bass % 12).label


def label_pitch_classes(label: str) -> frozenset[int]:
    """Absolute pitch classes of a label ("C:maj" -> {0, 4, 7}; "N" -> empty)."""
    return parse_harte(label).pitch_classes

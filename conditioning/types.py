"""Typed values that travel between conditioning, models and the bridge.

All musical positions are in quarter-note beats from the project start; audio always carries
its sample rate. These are frozen dataclasses: build new ones instead of mutating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conditioning.timeline import Section, TempoMap

PITCH_CLASS_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class Note:
    """One MIDI note.

    Attributes:
        pitch: MIDI note number 0-127.
        start_beat: onset in beats from the project start.
        end_beat: release in beats (> start_beat).
        velocity: MIDI velocity 1-127.
    """

    pitch: int
    start_beat: float
    end_beat: float
    velocity: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"note pitch {self.pitch} is outside MIDI's 0-127")
        if not self.end_beat > self.start_beat:
            raise ValueError(
                f"note {self.pitch} at beat {self.start_beat:g} ends at {self.end_beat:g}; "
                "a note must end after it starts"
            )
        if not 0 <= self.velocity <= 127:
            raise ValueError(f"note velocity {self.velocity} is outside MIDI's 0-127")

    @property
    def length_beats(self) -> float:
        """Duration in beats."""
        return self.end_beat - self.start_beat


@dataclass(frozen=True, eq=False)
class Audio:
    """Audio samples with their sample rate.

    Attributes:
        samples: float32 array shaped ``(channels, samples)``, nominally in [-1, 1].
        sample_rate: samples per second.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2:
            raise ValueError(f"audio must be shaped (channels, samples), got {self.samples.shape}")
        if self.samples.dtype != np.float32:
            object.__setattr__(self, "samples", self.samples.astype(np.float32))
        if self.sample_rate <= 0:
            raise ValueError(f"sample rate {self.sample_rate} must be positive")

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[0])

    @property
    def num_samples(self) -> int:
        """Length in samples (per channel)."""
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.num_samples / self.sample_rate

    @classmethod
    def silence(cls, num_samples: int, sample_rate: int, channels: int = 2) -> Audio:
        """Digital silence of ``num_samples`` samples."""
        return cls(np.zeros((channels, num_samples), dtype=np.float32), sample_rate)

    def mono(self) -> np.ndarray:
        """The channel mean as a 1-D float32 array of length ``num_samples``."""
        return self.samples.mean(axis=0).astype(np.float32)


@dataclass(frozen=True)
class Key:
    """A musical key: tonic pitch class (0 = C) and mode ("major" or "minor")."""

    tonic: int
    mode: str

    def __post_init__(self) -> None:
        if not 0 <= self.tonic < 12 or self.mode not in ("major", "minor"):
            raise ValueError(f"invalid key tonic={self.tonic} mode={self.mode!r}")

    @property
    def name(self) -> str:
        """Readable name, e.g. "A minor" (the form mir_eval's key metrics read)."""
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the scale (natural minor for minor keys)."""
        steps = (0, 2, 4, 5, 7, 9, 11) if self.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
        return tuple((self.tonic + s) % 12 for s in steps)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ChordSpan:
    """A chord held over ``[start_beat, end_beat)``; ``label`` is Harte syntax ("A:min7", "N")."""

    label: str
    start_beat: float
    end_beat: float


@dataclass(frozen=True)
class ChordNotes:
    """The notes a chord part plays, with its sustain pedal, known over ``[start_beat, end_beat)``.

    Attributes:
        notes: the part's notes in project beats, as played (sustain not yet applied).
        pedal_spans: (down_beat, up_beat) sustain-pedal spans in project beats.
        start_beat: start of the span the notes describe (beats); outside the span nothing
            is known about the part (a piano roll there is masked, not silent).
        end_beat: end of that span (beats, exclusive).
    """

    notes: tuple[Note, ...]
    pedal_spans: tuple[tuple[float, float], ...] = ()
    start_beat: float = 0.0
    end_beat: float = 0.0

    def __post_init__(self) -> None:
        if not self.end_beat > self.start_beat:
            raise ValueError(
                f"chord notes cover beats {self.start_beat:g} to {self.end_beat:g}; the end must be after the start"
            )

    @classmethod
    def played(cls, notes: tuple[Note, ...], pedal_spans: tuple[tuple[float, float], ...] = ()) -> ChordNotes:
        """Notes known from the first onset to the last release (pedal included).

        Raises:
            ValueError: no notes.
        """
        if not notes:
            raise ValueError("a chord part needs at least one note")
        end = max(n.end_beat for n in notes)
        for down, up in pedal_spans:
            if down <= end < up:
                end = up
        return cls(tuple(notes), tuple(pedal_spans), min(n.start_beat for n in notes), end)

    def in_range(self, start_beat: float, end_beat: float, *, sustain_beats: float) -> ChordNotes | None:
        """The part over ``[start_beat, end_beat)`` (clipped to what is known), or None outside it.

        Notes and pedal spans are kept whole when they can sound in the range: a note released
        up to ``sustain_beats`` before ``start_beat`` may still ring under the pedal.
        """
        a, b = max(start_beat, self.start_beat), min(end_beat, self.end_beat)
        if not b > a:
            return None
        notes = tuple(n for n in self.notes if n.start_beat < b and n.end_beat + sustain_beats > a)
        pedal = tuple((d, u) for d, u in self.pedal_spans if d < b and u + sustain_beats > a)
        return ChordNotes(notes, pedal, a, b)


@dataclass(frozen=True)
class ChordProgression:
    """Chords of the song in time order, with the estimated key (None when unknown).

    ``notes`` is the chord part as played when the chords came from notes (a MIDI clip or
    inline notes), None when only chord symbols were given.
    """

    spans: tuple[ChordSpan, ...]
    key: Key | None = None
    notes: ChordNotes | None = None

    def in_range(self, start_beat: float, end_beat: float) -> tuple[ChordSpan, ...]:
        """Spans overlapping ``[start_beat, end_beat)``, clipped to it."""
        out = []
        for s in self.spans:
            a, b = max(s.start_beat, start_beat), min(s.end_beat, end_beat)
            if b > a:
                out.append(ChordSpan(s.label, a, b))
        return tuple(out)

    def label_at(self, beat: float) -> str:
        """The chord sounding at ``beat``, or "N"."""
        for s in self.spans:
            if s.start_beat <= beat < s.end_beat:
                return s.label
        return "N"


@dataclass(frozen=True)
class DrumHit:
    """One drum hit: General MIDI ``pitch``, the ``role`` it plays, onset ``beat``, ``velocity``."""

    pitch: int
    role: str
    beat: float
    velocity: int = 100


@dataclass(frozen=True)
class DrumPattern:
    """A drum performance: hits in time order plus the original notes (for rendering)."""

    hits: tuple[DrumHit, ...]
    notes: tuple[Note, ...]

    def in_range(self, start_beat: float, end_beat: float) -> tuple[DrumHit, ...]:
        """Hits with onsets in ``[start_beat, end_beat)``."""
        return tuple(h for h in self.hits if start_beat <= h.beat < end_beat)


@dataclass(frozen=True)
class Melody:
    """A monophonic melody line (notes do not overlap), in beats."""

    notes: tuple[Note, ...]
    source: str = "midi"

    def in_range(self, start_beat: float, end_beat: float) -> tuple[Note, ...]:
        """Notes with onsets in ``[start_beat, end_beat)``."""
        return tuple(n for n in self.notes if start_beat <= n.start_beat < end_beat)


@dataclass(frozen=True)
class SectionConditioning:
    """Everything a generator needs to make one section.

    Attributes:
        section: the section to generate.
        tempo_map: the project's tempo map (beats <-> seconds).
        sample_rate: the project sample rate in Hz; generated stems are returned at this rate.
        prompt: the full text prompt for this section (global + section + role + tempo + key).
        stems: stem names to produce, e.g. ("drums", "bass", "keys", "lead").
        chords: the song's chord progression (whole song; use ``in_range``), or None.
        drums: the song's drum pattern, or None.
        melody: the song's melody, or None.
        key: the song key, or None.
        previous: the section before this one in the song, for continuity, or None.
        next: the section after this one, for fills and transitions, or None.
        extra: backend-specific options from the request (kept small).
    """

    section: Section
    tempo_map: TempoMap
    sample_rate: int
    prompt: str
    stems: tuple[str, ...]
    chords: ChordProgression | None = None
    drums: DrumPattern | None = None
    melody: Melody | None = None
    key: Key | None = None
    previous: Section | None = None
    next: Section | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def length_samples(self) -> int:
        """Exact section length in samples at ``sample_rate``."""
        return self.section.length_samples(self.tempo_map, self.sample_rate)

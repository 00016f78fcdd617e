"""Score data as the conditioning maths sees it: parsed MIDI tracks and inline request notes.

Pure data and parsing of already-decoded values; reading files is :mod:`conditioning.io.midi`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conditioning.schema import unknown_keys_message
from conditioning.timeline import TempoMap
from conditioning.types import Note

#: The keys of one inline note of request v1.
NOTE_KEYS = ("pitch", "start_beat", "end_beat", "velocity")


@dataclass(frozen=True)
class MidiTrack:
    """One instrument of a MIDI file.

    Attributes:
        name: the track/instrument name ("" when unnamed).
        program: General MIDI program 0-127.
        is_drum: True for channel-10 (GM percussion) instruments.
        notes: notes in beats, sorted by onset then pitch.
    """

    name: str
    program: int
    is_drum: bool
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class MidiFile:
    """A parsed MIDI file: its tempo map and its tracks (empty tracks dropped)."""

    path: Path
    tempo_map: TempoMap
    tracks: tuple[MidiTrack, ...]
    #: (down_beat, up_beat) spans where a sustain pedal (CC64) is down on any pitched channel.
    pedal_spans: tuple[tuple[float, float], ...] = ()

    @property
    def notes(self) -> tuple[Note, ...]:
        """Every pitched (non-drum) note of every track, sorted by onset."""
        return tuple(
            sorted(
                (n for t in self.tracks if not t.is_drum for n in t.notes),
                key=lambda n: (n.start_beat, n.pitch),
            )
        )

    @property
    def drum_notes(self) -> tuple[Note, ...]:
        """Every note of drum tracks (or of every track when none is marked as drums)."""
        drums = [t for t in self.tracks if t.is_drum] or list(self.tracks)
        return tuple(sorted((n for t in drums for n in t.notes), key=lambda n: (n.start_beat, n.pitch)))

    def track_named(self, *names: str) -> MidiTrack | None:
        """The first track whose name contains one of ``names`` (case-insensitive), or None."""
        for t in self.tracks:
            low = t.name.lower()
            if any(n.lower() in low for n in names):
                return t
        return None


def notes_from_json(data: object, what: str) -> tuple[Note, ...]:
    """Parse inline request notes (``[{"pitch", "start_beat", "end_beat", "velocity"}]``).

    Args:
        data: the decoded JSON list.
        what: where the notes came from, for error messages (e.g. "inputs.drums.notes").

    Raises:
        ValueError: not a list, a note is malformed, or the list is empty.
    """
    if not isinstance(data, list):
        raise ValueError(f"{what} must be a list of notes like "
                         '[{"pitch": 60, "start_beat": 0, "end_beat": 1, "velocity": 100}]')
    if not data:
        raise ValueError(f"{what} is empty: the selection has no notes; select a clip with notes")
    notes = []
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise ValueError(f"{what}[{i}] must be an object with pitch, start_beat, end_beat, velocity")
        unknown = unknown_keys_message(raw, NOTE_KEYS, f"{what}[{i}]")
        if unknown:
            raise ValueError(unknown)
        try:
            pitch = raw["pitch"]
            if isinstance(pitch, bool) or not isinstance(pitch, int | float) or pitch != int(pitch):
                raise TypeError("pitch must be a whole number")
            notes.append(
                Note(
                    int(pitch),
                    float(raw["start_beat"]),
                    float(raw["end_beat"]),
                    int(raw.get("velocity", 100)),
                )
            )
        except KeyError as exc:
            raise ValueError(f"{what}[{i}] is missing {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}[{i}]: {exc}") from None
    notes.sort(key=lambda n: (n.start_beat, n.pitch))
    return tuple(notes)

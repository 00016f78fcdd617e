"""Reading Standard MIDI Files into notes in beats plus the file's tempo map.

Positions come from MIDI ticks (``tick / ticks_per_quarter``), so they are exact beats whatever
the file's tempo changes; seconds come from the file's own tempo map.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conditioning.quiet_import import import_quietly
from conditioning.timeline import TempoMap, TempoPoint, TimeSignature
from conditioning.types import Note

log = logging.getLogger(__name__)


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


def _tempo_map_from_pretty_midi(pm: object) -> TempoMap:
    """Build a :class:`TempoMap` from a pretty_midi object's tempo and metre events."""
    resolution = float(pm.resolution)  # type: ignore[attr-defined]
    times, tempi = pm.get_tempo_changes()  # type: ignore[attr-defined]
    events: dict[float, dict[str, object]] = {}
    for t, bpm in zip(times, tempi, strict=False):
        beat = float(round(pm.time_to_tick(float(t)) / resolution, 6))  # type: ignore[attr-defined]
        events.setdefault(beat, {})["bpm"] = float(bpm)
    for ts in pm.time_signature_changes:  # type: ignore[attr-defined]
        beat = float(round(pm.time_to_tick(float(ts.time)) / resolution, 6))  # type: ignore[attr-defined]
        events.setdefault(beat, {})["ts"] = (int(ts.numerator), int(ts.denominator))
    bpm, ts_now = 120.0, (4, 4)
    points_with_ts: list[TempoPoint] = []
    points_tempo_only: list[TempoPoint] = []
    for beat in sorted(events):
        ev = events[beat]
        bpm = float(ev.get("bpm", bpm))  # type: ignore[arg-type]
        ts_now = ev.get("ts", ts_now)  # type: ignore[assignment]
        try:
            sig = TimeSignature(*ts_now)
        except ValueError:
            sig = TimeSignature(4, 4)
        points_with_ts.append(TempoPoint(beat, bpm, sig))
        points_tempo_only.append(TempoPoint(beat, bpm, points_with_ts[0].time_signature))
    if not points_with_ts:
        return TempoMap.constant(120.0)
    try:
        return TempoMap(points_with_ts)
    except ValueError as exc:
        log.warning("ignoring time-signature changes of the MIDI file: %s", exc)
        return TempoMap(points_tempo_only)


def read_midi(path: str | Path) -> MidiFile:
    """Read a Standard MIDI File.

    Args:
        path: the ``.mid`` file.

    Returns:
        The file's tempo map and its non-empty tracks, notes in beats.

    Raises:
        ValueError: the file is missing, unreadable, corrupt, or holds no notes; the message
            names the file and says how to fix it.
    """
    pretty_midi = import_quietly("pretty_midi")  # heavy-ish import, kept local

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"MIDI file {str(p)!r} does not exist; check the path (relative paths are inside the project folder)")
    import mido

    unreadable = (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, ZeroDivisionError)
    def not_readable(exc: Exception) -> ValueError:
        return ValueError(
            f"{p.name} is not a readable MIDI file ({type(exc).__name__}: {exc}); "
            "export the clip again as a Standard MIDI File (.mid)"
        )

    try:
        raw = mido.MidiFile(str(p))
    except unreadable as exc:
        raise not_readable(exc) from None
    if not any(msg.type == "note_on" and msg.velocity > 0 for track in raw.tracks for msg in track):
        raise ValueError(
            f"{p.name} contains no notes; select a MIDI item with notes in it (an empty clip "
            "gives nothing to condition on)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(p))
    except unreadable as exc:
        raise not_readable(exc) from None
    tempo_map = _tempo_map_from_pretty_midi(pm)
    resolution = float(pm.resolution)
    tracks = []
    for inst in pm.instruments:
        notes = []
        for n in inst.notes:
            start = pm.time_to_tick(n.start) / resolution
            end = pm.time_to_tick(n.end) / resolution
            if end <= start:
                end = start + 1.0 / resolution
            notes.append(Note(int(n.pitch), float(start), float(end), int(np.clip(n.velocity, 1, 127))))
        if notes:
            notes.sort(key=lambda n: (n.start_beat, n.pitch))
            tracks.append(MidiTrack(inst.name.strip(), int(inst.program), bool(inst.is_drum), tuple(notes)))
    if not tracks:
        raise ValueError(
            f"{p.name} contains no notes; select a MIDI item with notes in it (an empty clip "
            "gives nothing to condition on)"
        )
    return MidiFile(path=p, tempo_map=tempo_map, tracks=tuple(tracks))


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
        unknown = set(raw) - {"pitch", "start_beat", "end_beat", "velocity"}
        if unknown:
            raise ValueError(f"{what}[{i}] has unknown key(s) {sorted(unknown)}")
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

"""Reading Standard MIDI Files into notes in beats plus the file's tempo map.

Positions come from MIDI ticks (``tick / ticks_per_quarter``), so they are exact beats whatever
the file's tempo changes; seconds come from the file's own tempo map.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from conditioning.io.quiet_import import import_quietly
from conditioning.score import MidiFile, MidiTrack
from conditioning.timeline import TempoMap, TempoPoint, TimeSignature
from conditioning.types import Note

log = logging.getLogger(__name__)


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
        why = "the file ends in the middle of its data" if isinstance(exc, EOFError) else f"{type(exc).__name__}: {exc}"
        return ValueError(
            f"{p.name} is not a readable MIDI file ({why}); export the clip again as a Standard MIDI File (.mid)"
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
    return MidiFile(path=p, tempo_map=tempo_map, tracks=tuple(tracks), pedal_spans=_pedal_spans(pm, tempo_map))


def _pedal_spans(pm: object, tempo_map: TempoMap, threshold: int = 64) -> tuple[tuple[float, float], ...]:
    """Spans in beats where a sustain pedal (CC64 >= ``threshold``) is down, on any pitched channel.

    Read from the already-parsed file, so a chord MIDI is parsed once.

    Args:
        pm: the file as parsed by pretty_midi.
        tempo_map: the file's tempo map.
        threshold: CC64 value from which the pedal counts as down (MIDI convention: 64).
    """
    spans: list[tuple[float, float]] = []
    for inst in pm.instruments:  # type: ignore[attr-defined]
        if inst.is_drum:
            continue
        down: float | None = None
        for cc in sorted((c for c in inst.control_changes if c.number == 64), key=lambda c: c.time):
            beat = tempo_map.seconds_to_beat(float(cc.time))
            if cc.value >= threshold and down is None:
                down = beat
            elif cc.value < threshold and down is not None:
                if beat > down:
                    spans.append((down, beat))
                down = None
    return tuple(sorted(spans))

"""Write the arrangement as a Standard MIDI File: tempo map, section markers, one track per part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import mido

from conditioning.io.atomic import atomic_output
from conditioning.timeline import Section, TempoMap
from conditioning.types import Note

TICKS_PER_BEAT = 960
DRUM_CHANNEL = 9


def _tick(beat: float) -> int:
    return int(round(beat * TICKS_PER_BEAT))


def _absolute_to_delta(events: list[tuple[int, int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    now = 0
    for tick, _order, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def arrangement_midi(
    tempo_map: TempoMap,
    sections: Sequence[Section],
    parts: Mapping[str, Sequence[Note]],
    programs: Mapping[str, int],
) -> mido.MidiFile:
    """Build the arrangement MIDI in memory.

    Args:
        tempo_map: written as set_tempo / time_signature events at their beats.
        sections: written as marker events at their starts.
        parts: stem name -> notes (absolute beats); "drums" goes to channel 10.
        programs: stem name -> General MIDI program.

    Returns:
        A type-1 MIDI file: a conductor track then one track per part, named after the stem.
    """
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    conductor: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
        (0, 0, mido.MetaMessage("track_name", name="stembridge"))
    ]
    last_ts = None
    for p in tempo_map.points:
        conductor.append((_tick(p.beat), 1, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(p.bpm))))
        if p.time_signature != last_ts:
            ts = p.time_signature
            conductor.append(
                (_tick(p.beat), 1, mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator))
            )
            last_ts = p.time_signature
    for sec in sections:
        conductor.append((_tick(sec.start_beat), 2, mido.MetaMessage("marker", text=sec.name)))
    mid.tracks.append(_absolute_to_delta(conductor))
    channels = iter(c for c in range(16) if c != DRUM_CHANNEL)
    for stem, notes in parts.items():
        channel = DRUM_CHANNEL if stem == "drums" else next(channels, 0)
        events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [
            (0, 0, mido.MetaMessage("track_name", name=stem)),
        ]
        if channel != DRUM_CHANNEL:
            events.append((0, 1, mido.Message("program_change", channel=channel, program=int(programs.get(stem, 0)))))
        for n in notes:
            on, off = _tick(n.start_beat), max(_tick(n.end_beat), _tick(n.start_beat) + 1)
            events.append((on, 3, mido.Message("note_on", channel=channel, note=n.pitch, velocity=max(1, n.velocity))))
            events.append((off, 2, mido.Message("note_off", channel=channel, note=n.pitch, velocity=0)))
        mid.tracks.append(_absolute_to_delta(events))
    return mid


def write_arrangement_midi(
    path: Path,
    tempo_map: TempoMap,
    sections: Sequence[Section],
    parts: Mapping[str, Sequence[Note]],
    programs: Mapping[str, int],
) -> Path:
    """Write :func:`arrangement_midi` to ``path`` (must not exist yet; written via a temp file)."""
    midi = arrangement_midi(tempo_map, sections, parts, programs)
    with atomic_output(path) as tmp:
        midi.save(str(tmp))
    return path

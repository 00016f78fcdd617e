"""Turn a request's inputs (MIDI files, inline notes, chord symbols, audio) into conditioning values.

Every problem with the musician's material becomes a :class:`RequestError` with code "input".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from bridge.job.request import MAX_SONG_SECONDS, InputSource, Request, RequestError
from conditioning.io.midi import read_midi
from conditioning.roles import role_notes
from conditioning.score import MidiFile
from conditioning.types import Audio, ChordNotes, ChordProgression, DrumPattern, Melody, Note

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Material:
    """The song's material, all positions in project beats."""

    chords: ChordProgression | None = None
    drums: DrumPattern | None = None
    melody: Melody | None = None


def _shift(notes: tuple[Note, ...], offset_beats: float) -> tuple[Note, ...]:
    if offset_beats == 0:
        return notes
    return tuple(replace(n, start_beat=n.start_beat + offset_beats, end_beat=n.end_beat + offset_beats) for n in notes)


def _read(source: InputSource, role: str) -> MidiFile:
    if source.path is None:  # guaranteed by parse_request
        raise RequestError("schema", f"inputs.{role} names no MIDI file")
    try:
        return read_midi(source.path)
    except ValueError as exc:
        raise RequestError("input", f"inputs.{role}: {exc}") from None


def _midi_notes(source: InputSource, role: str, midi: MidiFile | None = None) -> tuple[Note, ...]:
    """Notes of the right track of a MIDI input (``midi``: the file, when already read), in project beats."""
    midi = _read(source, role) if midi is None else midi
    if source.track is not None:
        track = midi.track_named(source.track)
        if track is None:
            names = ", ".join(repr(t.name) for t in midi.tracks) or "none"
            raise RequestError(
                "input",
                f"inputs.{role}: {source.path.name if source.path else 'the MIDI file'} has no track "
                f"named like {source.track!r} (tracks: {names}); fix the track name or leave it out",
            )
        notes = track.notes
    else:
        notes = role_notes(midi, role)
    return _shift(notes, source.offset_beats)


def load_chords(source: InputSource, request: Request) -> ChordProgression:
    """Chords from a MIDI clip, inline notes or inline symbols."""
    from conditioning.chords import (
        accompaniment_notes,
        analyze_midi_chords,
        chords_from_notes,
        chords_from_symbols,
    )

    try:
        if source.kind == "symbols":
            return chords_from_symbols([[s.label, s.start_beat, s.end_beat] for s in source.symbols])
        if source.kind == "notes":
            return replace(chords_from_notes(source.notes, request.tempo_map), notes=ChordNotes.played(source.notes))
        midi = _read(source, "chords")
        pedal = tuple((a + source.offset_beats, b + source.offset_beats) for a, b in midi.pedal_spans)
        if source.track is None:
            # the whole file: pick the accompaniment tracks and honour the sustain pedal
            prog = analyze_midi_chords(midi)
            played = _shift(tuple(accompaniment_notes(midi, pedal_extend_beats=0)), source.offset_beats)
            return ChordProgression(
                tuple(replace(s, start_beat=s.start_beat + source.offset_beats, end_beat=s.end_beat + source.offset_beats)
                      for s in prog.spans),
                prog.key,
                ChordNotes.played(played, pedal),
            )
        notes = _midi_notes(source, "chords", midi)
        return replace(chords_from_notes(notes, request.tempo_map), notes=ChordNotes.played(notes, pedal))
    except RequestError:
        raise
    except ValueError as exc:
        raise RequestError("input", f"inputs.chords: {exc}") from None


def load_drums(source: InputSource) -> DrumPattern:
    """Drums from a MIDI track or inline notes (General MIDI key map)."""
    from conditioning.drums import drums_from_notes

    notes = source.notes if source.kind == "notes" else _midi_notes(source, "drums")
    try:
        return drums_from_notes(notes, what="inputs.drums")
    except ValueError as exc:
        raise RequestError("input", str(exc)) from None


def _melody_audio(source: InputSource) -> Audio:
    from conditioning.io.audio import read_audio

    if source.path is None:
        raise RequestError("schema", "inputs.melody names no audio file")
    try:
        audio = read_audio(source.path)
    except ValueError as exc:
        raise RequestError("input", f"inputs.melody: {exc}") from None
    first = int(round(source.source_offset_s * audio.sample_rate))
    last = audio.num_samples if source.length_s is None else first + int(round(source.length_s * audio.sample_rate))
    samples = audio.samples[:, first:last]
    if samples.shape[1] == 0:
        raise RequestError(
            "input",
            f"inputs.melody: {source.path.name} has no audio after source_offset_s={source.source_offset_s:g} s; "
            "check the item's start offset",
        )
    if samples.shape[1] / audio.sample_rate > MAX_SONG_SECONDS:
        raise RequestError("limit", f"inputs.melody is longer than {MAX_SONG_SECONDS / 60:.0f} minutes; trim it")
    if not np.any(np.abs(samples) > 1e-4):
        raise RequestError("input", f"inputs.melody: {source.path.name} is silent; record the melody again")
    return Audio(np.ascontiguousarray(samples), audio.sample_rate)


def load_melody(source: InputSource, request: Request) -> Melody:
    """Melody from a hummed/sung recording (basic-pitch), a MIDI clip or inline notes."""
    from conditioning.melody import melody_from_notes

    if source.kind == "audio":
        from conditioning.io.basic_pitch import transcribe_melody

        audio = _melody_audio(source)
        melody = transcribe_melody(audio, request.tempo_map, offset_s=source.offset_s)
        if not melody.notes:
            raise RequestError(
                "input",
                f"inputs.melody: no notes were heard in {source.path.name if source.path else 'the recording'}; "
                "hum or sing louder and closer to the microphone",
            )
        return melody
    notes = source.notes if source.kind == "notes" else _midi_notes(source, "melody")
    try:
        return melody_from_notes(notes)
    except ValueError as exc:
        raise RequestError("input", f"inputs.melody: {exc}") from None


def load_material(request: Request) -> Material:
    """Load every input the request names.

    Raises:
        RequestError: an input is unreadable, empty or malformed (code "input").
    """
    return Material(
        chords=load_chords(request.chords, request) if request.chords else None,
        drums=load_drums(request.drums) if request.drums else None,
        melody=load_melody(request.melody, request) if request.melody else None,
    )

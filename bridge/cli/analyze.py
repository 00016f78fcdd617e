"""``stembridge analyze``: what the conditioning pipeline understood of one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conditioning.io.midi import read_midi
from conditioning.roles import role_notes
from conditioning.timeline import TempoMap

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3"}


def analyze_file(path: Path, role: str) -> dict[str, Any]:
    """Analyse ``path`` for ``role`` ("chords", "drums" or "melody").

    Returns:
        chords: ``{"key", "tempo_bpm", "chords": [{"start_s", "end_s", "start_beat", "end_beat", "label"}]}``;
        melody: ``{"notes": [{"start_s", "end_s", "pitch", "velocity"}]}``;
        drums: ``{"tempo_bpm", "roles", "onsets", "bars"}``.

    Raises:
        ValueError: unreadable file, no notes, or a role the file cannot serve.
    """
    if not path.is_file():
        raise ValueError(f"{path} does not exist; give the path of a .mid or audio file")
    if path.suffix.lower() in AUDIO_SUFFIXES:
        if role != "melody":
            raise ValueError(f"{path.name} is audio; only --role melody reads audio (give a .mid for {role})")
        from conditioning.io.audio import read_audio
        from conditioning.io.basic_pitch import transcribe_melody
        from conditioning.melody import melody_to_json

        tempo_map = TempoMap.constant(120.0)
        melody = transcribe_melody(read_audio(path), tempo_map)
        return melody_to_json(melody, tempo_map)
    midi = read_midi(path)
    if role == "chords":
        from conditioning.chords import analyze_midi_chords, chords_to_json

        return chords_to_json(analyze_midi_chords(midi), midi.tempo_map)
    notes = role_notes(midi, role)
    if not notes:
        raise ValueError(f"{path.name} has no notes for {role}")
    if role == "drums":
        from conditioning.drums import drums_from_notes, drums_to_json

        return drums_to_json(drums_from_notes(notes, what=path.name), midi.tempo_map)
    from conditioning.melody import melody_from_notes, melody_to_json

    return melody_to_json(melody_from_notes(notes), midi.tempo_map)


def summary_text(result: dict[str, Any], role: str) -> str:
    """A readable summary of :func:`analyze_file`'s result."""
    lines: list[str] = []
    if role == "chords":
        lines.append(f"key: {result.get('key')}   tempo: {result.get('tempo_bpm')} bpm")
        for c in result["chords"]:
            lines.append(f"  {c['start_s']:8.2f}s  beat {c['start_beat']:7.2f}  {c['label']}")
    elif role == "melody":
        from conditioning.types import PITCH_CLASS_NAMES

        lines.append(f"{len(result['notes'])} notes")
        for n in result["notes"]:
            name = f"{PITCH_CLASS_NAMES[n['pitch'] % 12]}{n['pitch'] // 12 - 1}"
            lines.append(f"  {n['start_s']:8.2f}s - {n['end_s']:8.2f}s  {name:<4} vel {n['velocity']}")
    else:
        roles = ", ".join(f"{r} {c}" for r, c in result["roles"].items())
        lines.append(f"tempo: {result['tempo_bpm']} bpm   hits: {roles}")
        for bar in result["bars"]:
            lines.append(f"  bar {bar['bar']}")
            for r, grid in bar["grid"].items():
                lines.append(f"    {r:<10} {grid}")
    return "\n".join(lines)

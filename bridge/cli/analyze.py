"""``stembridge analyze``: what the conditioning pipeline understood of one file.

The conditioning maths returns typed values; this module turns them into the ``--json``
documents (:func:`chords_to_json`, :func:`melody_to_json`, :func:`drums_to_json`) and the
readable summary.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from conditioning.drums import DRUM_ROLES, bar_onset_grid
from conditioning.io.midi import read_midi
from conditioning.roles import role_notes
from conditioning.timeline import TempoMap
from conditioning.types import ChordProgression, DrumPattern, Melody

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3"}


def chords_to_json(prog: ChordProgression, tempo_map: TempoMap) -> dict[str, Any]:
    """The ``stembridge analyze --role chords --json`` document.

    Returns:
        ``{"key": "A minor" | None, "tempo_bpm": float, "tempo_map": [...], "chords":
        [{"start_s", "end_s", "start_beat", "end_beat", "start_bar", "end_bar", "label"}]}``;
        seconds and bars come from ``tempo_map`` (written out as in a request); bars are 1-based and fractional like a request's ``range``
        (``start_bar`` 2.5 is the middle of bar 2 in 4/4; ``end_bar`` is exclusive);
        ``tempo_bpm`` is the tempo at the first chord.
    """
    first = prog.spans[0].start_beat if prog.spans else 0.0
    return {
        "key": prog.key.name if prog.key is not None else None,
        "tempo_bpm": round(tempo_map.bpm_at_beat(first), 3),
        "tempo_map": tempo_map.to_json(),
        "chords": [
            {
                "start_s": round(tempo_map.beat_to_seconds(s.start_beat), 6),
                "end_s": round(tempo_map.beat_to_seconds(s.end_beat), 6),
                "start_beat": round(s.start_beat, 6),
                "end_beat": round(s.end_beat, 6),
                "start_bar": round(tempo_map.beat_to_bar(s.start_beat), 6),
                "end_bar": round(tempo_map.beat_to_bar(s.end_beat), 6),
                "label": s.label,
            }
            for s in prog.spans
        ],
    }


def bar_and_beat(bar: float, tempo_map: TempoMap) -> tuple[int, float]:
    """Split a fractional 1-based bar position into (bar, beat within the bar from 1).

    Beats are the tempo map's beats (quarter notes): in 4/4, bar 2.5 is (2, 3.0).
    """
    whole = math.floor(bar + 1e-6)
    beat = (bar - whole) * tempo_map.beats_per_bar_at(whole)
    return whole, round(1.0 + max(0.0, beat), 3)


def melody_to_json(melody: Melody, tempo_map: TempoMap) -> dict[str, Any]:
    """The ``stembridge analyze --role melody --json`` form.

    Returns:
        ``{"notes": [{"start_s", "end_s", "pitch", "velocity"}, ...]}`` with seconds from the
        project start (rounded to 0.1 ms) in time order.
    """
    return {
        "notes": [
            {
                "start_s": round(tempo_map.beat_to_seconds(n.start_beat), 4),
                "end_s": round(tempo_map.beat_to_seconds(n.end_beat), 4),
                "pitch": int(n.pitch),
                "velocity": int(n.velocity),
            }
            for n in sorted(melody.notes, key=lambda n: n.start_beat)
        ]
    }


def drums_to_json(pattern: DrumPattern, tempo_map: TempoMap) -> dict[str, Any]:
    """What ``stembridge analyze --role drums --json`` prints.

    Returns:
        ``{"tempo_bpm", "roles": {role: count}, "onsets": [{"start_s", "beat", "bar", "pitch",
        "role", "velocity"}], "bars": [{"bar", "grid": {role: "x..x...."}}]}``; a grid string
        has one character per sixteenth: ``x`` loud hit, ``o`` soft hit, ``.`` rest.
    """
    counts = Counter(h.role for h in pattern.hits)
    onsets = [
        {
            "start_s": round(tempo_map.beat_to_seconds(h.beat), 6),
            "beat": round(h.beat, 6),
            "bar": int(math.floor(tempo_map.beat_to_bar(h.beat))),
            "pitch": h.pitch,
            "role": h.role,
            "velocity": h.velocity,
        }
        for h in pattern.hits
    ]
    bars = []
    if pattern.hits:
        first = int(math.floor(tempo_map.beat_to_bar(pattern.hits[0].beat)))
        last = int(math.floor(tempo_map.beat_to_bar(pattern.hits[-1].beat)))
        for bar in range(first, last + 1):
            grid = bar_onset_grid(pattern, tempo_map, bar)
            rows = {}
            for role, row in zip(DRUM_ROLES, grid, strict=True):
                if row.any():
                    rows[role] = "".join("x" if v >= 0.6 else "o" if v > 0 else "." for v in row)
            bars.append({"bar": bar, "grid": rows})
    return {
        "tempo_bpm": round(tempo_map.bpm_at_beat(pattern.hits[0].beat if pattern.hits else 0.0), 3),
        "roles": {r: counts[r] for r in DRUM_ROLES if counts[r]},
        "onsets": onsets,
        "bars": bars,
    }


def analyze_file(path: Path, role: str) -> dict[str, Any]:
    """Analyse ``path`` for ``role`` ("chords", "drums" or "melody").

    Returns:
        chords: ``{"key", "tempo_bpm", "tempo_map", "chords": [{"start_s", "end_s", "start_beat",
        "end_beat", "start_bar", "end_bar", "label"}]}`` (see :func:`chords_to_json`);
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

        tempo_map = TempoMap.constant(120.0)
        melody = transcribe_melody(read_audio(path), tempo_map)
        return melody_to_json(melody, tempo_map)
    midi = read_midi(path)
    if role == "chords":
        from conditioning.chords import analyze_midi_chords

        return chords_to_json(analyze_midi_chords(midi), midi.tempo_map)
    notes = role_notes(midi, role)
    if not notes:
        raise ValueError(f"{path.name} has no notes for {role}")
    if role == "drums":
        from conditioning.drums import drums_from_notes

        return drums_to_json(drums_from_notes(notes, what=path.name), midi.tempo_map)
    from conditioning.melody import melody_from_notes

    return melody_to_json(melody_from_notes(notes), midi.tempo_map)


def summary_text(result: dict[str, Any], role: str) -> str:
    """A readable summary of :func:`analyze_file`'s result."""
    lines: list[str] = []
    if role == "chords":
        lines.append(f"key: {result.get('key')}   tempo: {result.get('tempo_bpm')} bpm")
        tempo_map = TempoMap.from_json(result["tempo_map"])
        for c in result["chords"]:
            bar, beat = bar_and_beat(c["start_bar"], tempo_map)
            lines.append(
                f"  {c['start_s']:8.2f}s  beat {c['start_beat']:7.2f}  bar {bar:>3} beat {beat:<5g}  {c['label']}"
            )
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

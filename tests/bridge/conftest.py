"""Fixtures for bridge tests: a project folder with small MIDI material made in code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mido
import pytest


def write_midi(path: Path, notes: list[tuple[int, float, float, int]], *, bpm: float = 120, drum: bool = False,
               name: str = "clip") -> Path:
    """Write (pitch, start_beat, end_beat, velocity) notes as a one-track MIDI file."""
    tpb = 480
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))]))
    ch = 9 if drum else 0
    events = []
    for pitch, a, b, vel in notes:
        events.append((round(a * tpb), 1, mido.Message("note_on", note=pitch, velocity=vel, channel=ch)))
        events.append((round(b * tpb), 0, mido.Message("note_off", note=pitch, channel=ch)))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
    now = 0
    for tick, _o, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.tracks.append(track)
    mid.save(str(path))
    return path


AM_F_C_G = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A DAW project folder with chords.mid (Am F C G, 1 bar each, 2x) and drums.mid."""
    chords = [(p, bar * 4.0, bar * 4.0 + 3.9, 80) for bar in range(8) for p in AM_F_C_G[bar % 4]]
    write_midi(tmp_path / "chords.mid", chords, name="chords")
    drums = []
    for bar in range(8):
        for beat in range(4):
            t = bar * 4.0 + beat
            drums.append((42, t, t + 0.1, 70))
            drums.append((36 if beat % 2 == 0 else 38, t, t + 0.1, 100))
    write_midi(tmp_path / "drums.mid", drums, drum=True, name="drums")
    return tmp_path


def base_request(project_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A small valid request v1 for the project folder ``project_dir``."""
    req: dict[str, Any] = {
        "version": 1,
        "project": {"dir": str(project_dir), "sample_rate": 48000,
                    "tempo_map": [{"beat": 0, "bpm": 120, "time_signature": [4, 4]}]},
        "sections": [{"name": "Verse 1", "start_bar": 1, "end_bar": 3},
                     {"name": "Chorus 1", "start_bar": 3, "end_bar": 5}],
        "inputs": {"chords": {"midi": "chords.mid"}, "drums": {"midi": "drums.mid"}},
        "prompt": "funk, rhodes",
        "stems": ["drums", "bass", "keys", "lead"],
        "model": "arranger",
        "seed": 7,
    }
    req.update(overrides)
    return req

"""The chord material's notes and sustain pedal travel with the chords (for the piano roll)."""

from __future__ import annotations

from pathlib import Path

import mido

from bridge.job.material import load_material
from bridge.job.request import parse_request
from tests.bridge.conftest import base_request, write_midi


def _add_pedal(path: Path, down_beat: float, up_beat: float) -> None:
    """Append a CC64 down/up pair to the file's note track."""
    mid = mido.MidiFile(str(path))
    tpb = mid.ticks_per_beat
    track = mid.tracks[1]
    events, now = [], 0
    for msg in track:
        now += msg.time
        events.append((now, msg))
    events += [(round(down_beat * tpb), mido.Message("control_change", control=64, value=127)),
               (round(up_beat * tpb), mido.Message("control_change", control=64, value=0))]
    events.sort(key=lambda e: (e[0], e[1].type == "end_of_track"))
    track.clear()
    now = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(str(path))


def test_chord_midi_notes_and_pedal_reach_the_chords(project: Path) -> None:
    write_midi(project / "pad.mid", [(60, 0.0, 1.0, 90), (64, 0.0, 1.0, 90), (67, 4.0, 5.0, 90)], name="keys")
    _add_pedal(project / "pad.mid", 0.5, 3.0)
    req = parse_request(base_request(project, inputs={"chords": {"midi": "pad.mid", "offset_beats": 8}}))
    played = load_material(req).chords
    assert played is not None and played.notes is not None
    assert [(n.pitch, n.start_beat, n.end_beat) for n in played.notes.notes] == [
        (60, 8.0, 9.0), (64, 8.0, 9.0), (67, 12.0, 13.0)]  # as played, pedal kept apart
    assert played.notes.pedal_spans == ((8.5, 11.0),)
    assert (played.notes.start_beat, played.notes.end_beat) == (8.0, 13.0)


def test_inline_notes_travel_and_symbols_carry_none(project: Path) -> None:
    notes = [{"pitch": 57, "start_beat": 0, "end_beat": 4, "velocity": 80},
             {"pitch": 60, "start_beat": 0, "end_beat": 4, "velocity": 80}]
    inline = load_material(parse_request(base_request(project, inputs={"chords": {"notes": notes}}))).chords
    assert inline is not None and inline.notes is not None and len(inline.notes.notes) == 2
    symbols = load_material(parse_request(base_request(
        project, inputs={"chords": {"symbols": [["A:min", 0, 8]]}}))).chords
    assert symbols is not None and symbols.notes is None  # voiced from symbols later, never as if played

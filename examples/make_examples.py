"""Make the example session's MIDI material: chords.mid (piano comping) and drums.mid.

Deterministic; run from anywhere: ``python examples/make_examples.py``. The hummed melody
(hum.wav) is made by ``make_hum.py``. Both write into ``bridge/cli/demo_session/``, where the
session ships as package data.
"""

from __future__ import annotations

from pathlib import Path

import mido

HERE = Path(__file__).resolve().parent
#: The example session ships inside the package (``stembridge demo`` reads it from there).
SESSION = HERE.parent / "bridge" / "cli" / "demo_session"
TPB = 480
BPM = 92
BARS = 24
# A minor: Am F C G, one chord a bar; the chorus (bars 13-20) uses F G Em Am.
VERSE = [(57, (0, 3, 7)), (53, (0, 4, 7)), (48, (0, 4, 7)), (55, (0, 4, 7))]
CHORUS = [(53, (0, 4, 7, 11)), (55, (0, 4, 7)), (52, (0, 3, 7, 10)), (57, (0, 3, 7))]


def _track(name: str, events: list[tuple[int, mido.Message]], program: int | None, channel: int) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
    if program is not None:
        track.append(mido.Message("program_change", program=program, channel=channel))
    now = 0
    for tick, msg in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def _conductor() -> mido.MidiTrack:
    return mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM)),
        mido.MetaMessage("time_signature", numerator=4, denominator=4),
    ])


def chords_events() -> list[tuple[int, mido.Message]]:
    """Piano comping: block chord on beat 1, broken chord on beats 3-4, bass note below."""
    ev: list[tuple[int, mido.Message]] = []
    for bar in range(BARS):
        root, shape = (CHORUS if 12 <= bar < 20 else VERSE)[bar % 4]
        t0 = bar * 4 * TPB
        bass = root - 12
        ev += [(t0, mido.Message("note_on", note=bass, velocity=80)),
               (t0 + 4 * TPB - 20, mido.Message("note_off", note=bass))]
        for iv in shape:
            ev += [(t0, mido.Message("note_on", note=root + iv, velocity=70)),
                   (t0 + 2 * TPB - 20, mido.Message("note_off", note=root + iv))]
        for k, iv in enumerate(shape[:3]):
            t = t0 + 2 * TPB + k * (2 * TPB // 3)
            ev += [(t, mido.Message("note_on", note=root + 12 + iv, velocity=60)),
                   (t + TPB // 2, mido.Message("note_off", note=root + 12 + iv))]
    return ev


def drums_events() -> list[tuple[int, mido.Message]]:
    """A laid-back groove: kick 1 and the "and" of 2, snare 2 and 4, swung-ish eighths on the hat."""
    ev: list[tuple[int, mido.Message]] = []

    def hit(tick: int, note: int, vel: int) -> None:
        ev.append((tick, mido.Message("note_on", note=note, velocity=vel, channel=9)))
        ev.append((tick + TPB // 8, mido.Message("note_off", note=note, channel=9)))

    for bar in range(BARS):
        t0 = bar * 4 * TPB
        intro = bar < 4
        for eighth in range(8):
            if not intro or eighth % 2 == 0:
                hit(t0 + eighth * TPB // 2, 42, 70 if eighth % 2 == 0 else 50)
        hit(t0, 36, 105)
        hit(t0 + 3 * TPB // 2, 36, 85)
        if not intro:
            hit(t0 + TPB, 38, 100)
            hit(t0 + 3 * TPB, 38, 105)
        if bar in (12, 20):
            hit(t0, 49, 110)
    return ev


def main() -> None:
    """Write chords.mid and drums.mid beside this script."""
    for name, events, program, channel in (
        ("chords", chords_events(), 0, 0),
        ("drums", drums_events(), None, 9),
    ):
        mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
        mid.tracks.append(_conductor())
        mid.tracks.append(_track(name, events, program, channel))
        mid.save(str(SESSION / f"{name}.mid"))


if __name__ == "__main__":
    main()

"""Regenerate tests/resources/golden_example.npz from the example session.

Run only when a change to the numeric pipelines is intended, and say why in the commit:
``.venv/bin/python tests/resources/make_golden.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conditioning.chord_features import coco_mulla_frames
from conditioning.chords import analyze_midi_chords
from conditioning.drums import drum_onset_frames, drums_from_notes
from conditioning.io.audio import read_audio
from conditioning.io.basic_pitch import transcribe_melody
from conditioning.io.midi import read_midi
from conditioning.timeline import TempoMap

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "bridge" / "cli" / "demo_session"
OUT = Path(__file__).resolve().parent / "golden_example.npz"
FRAME_RATE = 50.0
TEMPO = TempoMap.constant(92)


def compute_melody() -> dict[str, np.ndarray]:
    """The hum's transcription (runs basic-pitch: seconds, so its test is marked slow)."""
    melody = transcribe_melody(read_audio(EXAMPLES / "hum.wav"), TEMPO)
    notes = np.array(
        [[TEMPO.beat_to_seconds(n.start_beat), TEMPO.beat_to_seconds(n.end_beat), n.pitch] for n in melody.notes]
    )
    return {"melody_notes": notes}


def compute_frames() -> dict[str, np.ndarray]:
    """The chord and drum conditioning frames (pure maths over the MIDI files: fast)."""
    chords = analyze_midi_chords(read_midi(EXAMPLES / "chords.mid"))
    drums = drums_from_notes(read_midi(EXAMPLES / "drums.mid").drum_notes)
    return {
        "coco_mulla_frames": coco_mulla_frames(chords, TEMPO, 0.0, 96.0, FRAME_RATE),
        "drum_frames": drum_onset_frames(drums, TEMPO, 0.0, 96.0, FRAME_RATE),
    }


def compute() -> dict[str, np.ndarray]:
    """The values the golden test compares."""
    return {**compute_melody(), **compute_frames()}


if __name__ == "__main__":
    np.savez_compressed(OUT, **compute())
    print(f"wrote {OUT}")

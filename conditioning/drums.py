"""Drum conditioning: General MIDI drum notes -> roles, per-bar onset grids and onset frames.

Pure functions over :class:`~conditioning.types.Note` lists and a :class:`TempoMap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from conditioning.timeline import TempoMap
from conditioning.types import DrumHit, DrumPattern, Note

#: Drum roles in feature-row order.
DRUM_ROLES: tuple[str, ...] = ("kick", "snare", "hihat", "tom", "cymbal", "percussion")

#: General MIDI percussion key map (channel 10) -> role. Unlisted keys are "percussion".
GM_DRUM_ROLES: dict[int, str] = {
    35: "kick", 36: "kick",
    37: "snare", 38: "snare", 39: "snare", 40: "snare",  # side stick, snares, hand clap
    42: "hihat", 44: "hihat", 46: "hihat",
    41: "tom", 43: "tom", 45: "tom", 47: "tom", 48: "tom", 50: "tom",
    49: "cymbal", 51: "cymbal", 52: "cymbal", 53: "cymbal", 55: "cymbal", 57: "cymbal", 59: "cymbal",
}

#: Grid resolution of :func:`bar_onset_grid`: steps per quarter-note beat (4 = sixteenths).
STEPS_PER_BEAT = 4


def drum_role(pitch: int) -> str:
    """The role of a General MIDI percussion key ("kick", "snare", ..., "percussion")."""
    return GM_DRUM_ROLES.get(pitch, "percussion")


def drums_from_notes(notes: Sequence[Note], *, what: str = "the drum selection") -> DrumPattern:
    """Map drum notes to roles.

    Args:
        notes: drum notes in beats (General MIDI key map).
        what: how to name the source in error messages.

    Raises:
        ValueError: no notes.
    """
    if not notes:
        raise ValueError(f"{what} has no notes; select a drum MIDI item with hits in it")
    ordered = sorted(notes, key=lambda n: (n.start_beat, n.pitch))
    hits = tuple(DrumHit(n.pitch, drum_role(n.pitch), n.start_beat, n.velocity) for n in ordered)
    return DrumPattern(hits=hits, notes=tuple(ordered))


def bar_onset_grid(pattern: DrumPattern, tempo_map: TempoMap, bar: int) -> np.ndarray:
    """Onsets of one bar on a sixteenth-note grid.

    Args:
        pattern: the drum pattern.
        tempo_map: maps the 1-based ``bar`` to beats.
        bar: 1-based bar number.

    Returns:
        float32 array shaped ``(len(DRUM_ROLES), steps)`` with the loudest velocity / 127 per
        cell; ``steps = ceil(beats_per_bar * 4)`` (16 in 4/4, 12 in 6/8, 14 in 7/8).
    """
    start = tempo_map.bar_to_beat(bar)
    end = tempo_map.bar_to_beat(bar + 1)
    steps = math.ceil((end - start) * STEPS_PER_BEAT - 1e-9)
    grid = np.zeros((len(DRUM_ROLES), steps), dtype=np.float32)
    half_step = 0.5 / STEPS_PER_BEAT
    for hit in pattern.hits:
        if start - half_step <= hit.beat < end - half_step:
            step = min(steps - 1, max(0, round((hit.beat - start) * STEPS_PER_BEAT)))
            row = DRUM_ROLES.index(hit.role)
            grid[row, step] = max(grid[row, step], hit.velocity / 127.0)
    return grid


def drum_onset_frames(
    pattern: DrumPattern, tempo_map: TempoMap, start_beat: float, end_beat: float, frame_rate: float
) -> np.ndarray:
    """Onset features at a fixed frame rate over ``[start_beat, end_beat)``.

    Frame ``i`` covers seconds ``[t0 + i / frame_rate, t0 + (i + 1) / frame_rate)`` where ``t0``
    is ``start_beat`` in seconds. A hit sets its role's row in the frame containing its onset
    to velocity / 127 (the loudest wins).

    Returns:
        float32 array shaped ``(frames, len(DRUM_ROLES))``, ``frames = round(seconds * frame_rate)``.
    """
    if frame_rate <= 0:
        raise ValueError(f"frame rate {frame_rate} must be positive (frames per second)")
    t0 = tempo_map.beat_to_seconds(start_beat)
    frames = max(0, round((tempo_map.beat_to_seconds(end_beat) - t0) * frame_rate))
    out = np.zeros((frames, len(DRUM_ROLES)), dtype=np.float32)
    for hit in pattern.in_range(start_beat, end_beat):
        i = int((tempo_map.beat_to_seconds(hit.beat) - t0) * frame_rate)
        if 0 <= i < frames:
            col = DRUM_ROLES.index(hit.role)
            out[i, col] = max(out[i, col], hit.velocity / 127.0)
    return out

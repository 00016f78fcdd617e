"""Track-role hints: the words in a MIDI track's name that mark it as melody, chords or drums.

One list for everything that picks a track by its name: material loading for a request
(``bridge.job.material``), ``stembridge analyze`` and the chord recogniser's choice of
accompaniment tracks (:func:`conditioning.chords.accompaniment_notes`). A name matches a role
when it contains one of the role's words, case-insensitively ("Lead Vox" is melody, "E.Piano"
is chords). "bridge" and "solo" are melody words because POP909 names its second melody track
BRIDGE.
"""

from __future__ import annotations

from collections.abc import Mapping

from conditioning.score import MidiFile
from conditioning.types import Note

MELODY_WORDS: tuple[str, ...] = (
    "melody", "lead", "vocal", "voice", "hum", "sing", "topline", "bridge", "solo",
)
CHORD_WORDS: tuple[str, ...] = (
    "chord", "piano", "keys", "accomp", "comp", "pad", "harmony", "rhodes", "organ", "guitar",
)
DRUM_WORDS: tuple[str, ...] = ("drum", "beat", "kit", "perc")

#: The hint words by request input role ("chords", "drums", "melody").
TRACK_HINTS: Mapping[str, tuple[str, ...]] = {"chords": CHORD_WORDS, "drums": DRUM_WORDS, "melody": MELODY_WORDS}


def name_has_role(track_name: str, role: str) -> bool:
    """Whether ``track_name`` contains one of ``role``'s hint words (case-insensitive).

    Raises:
        ValueError: ``role`` is not "chords", "drums" or "melody".
    """
    try:
        words = TRACK_HINTS[role]
    except KeyError:
        raise ValueError(f"unknown track role {role!r}; use one of {', '.join(TRACK_HINTS)}") from None
    low = track_name.lower()
    return any(w in low for w in words)


def role_notes(midi: MidiFile, role: str) -> tuple[Note, ...]:
    """The notes a whole MIDI file gives ``role`` when no track was named explicitly.

    Drums read the drum tracks; chords and melody read the first track whose name has a hint
    word of the role when the file has several tracks, else every pitched note (or, in a file
    with only drum-channel notes, those). Beats are the file's own.

    Raises:
        ValueError: ``role`` is not "chords", "drums" or "melody".
    """
    if role not in TRACK_HINTS:
        raise ValueError(f"unknown track role {role!r}; use one of {', '.join(TRACK_HINTS)}")
    if role == "drums":
        return midi.drum_notes
    if len(midi.tracks) > 1 and (track := midi.track_named(*TRACK_HINTS[role])) is not None:
        return track.notes
    return midi.notes or midi.drum_notes

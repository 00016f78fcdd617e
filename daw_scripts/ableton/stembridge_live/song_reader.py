"""Read what the musician set up in Live into request v1 pieces.

Live's positions are beats (quarter notes) from the song start, the same unit as request v1, so
positions are passed on unchanged; the bridge does all further maths.

* tempo and time signature: ``Song.tempo``, ``Song.signature_numerator/denominator``
  (Live's API exposes the current values only, so the tempo map has one point);
* sections: locators (``Song.cue_points``, sorted by time); each runs to the next locator, the
  last locator marks the song's end. With fewer than two locators the loop brace is one section;
* the selection: the loop brace (``Song.loop_start`` + ``Song.loop_length``);
* notes: MIDI clips on tracks named like "chords", "drums", "melody": in Session view the clips
  of the selected scene (played from the first section's start), in Arrangement view the
  arrangement clips inside the song span, plus the clip open in the detail view.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from Live.Application import Application
    from Live.Clip import Clip
    from Live.Song import Song
    from Live.Track import Track

ROLE_WORDS: Sequence[Tuple[str, Sequence[str]]] = (
    ("drums", ("drum", "kit", "beat", "perc", "groove")),
    ("chords", ("chord", "harmon", "progression", "comp")),
    ("melody", ("melod", "hum", "lead", "vocal", "voice", "tune", "topline", "whistle")),
)
EPS = 1e-6


class SongError(ValueError):
    """The set is not ready for a request; the message says what to do."""


@dataclass(frozen=True)
class Span:
    """A named span of the song in beats (end exclusive)."""

    name: str
    start_beat: float
    end_beat: float


def role_from_track_name(name: str) -> Optional[str]:
    """"chords", "drums" or "melody" from a track name, or None when the name says nothing."""
    lower = name.lower()
    if lower.startswith("sb "):
        return None  # our own stem tracks
    for role, words in ROLE_WORDS:
        if any(w in lower for w in words):
            return role
    return None


def beats_per_bar(song: Song) -> float:
    """Length of a bar in beats from the set's time signature."""
    return song.signature_numerator * 4.0 / song.signature_denominator


def tempo_map(song: Song) -> List[Dict[str, Any]]:
    """The request v1 tempo map (one point: Live's API gives the current tempo and metre)."""
    return [{
        "beat": 0,
        "bpm": round(float(song.tempo), 6),
        "time_signature": [int(song.signature_numerator), int(song.signature_denominator)],
    }]


def beat_to_bar(song: Song, beat: float) -> float:
    """1-based bar of a beat position."""
    return beat / beats_per_bar(song) + 1.0


def loop_span(song: Song) -> Span:
    """The loop brace as a span named "Loop"."""
    start = float(song.loop_start)
    return Span("Loop", start, start + float(song.loop_length))


def sections(song: Song) -> List[Span]:
    """Sections from locators (sorted by time), or the loop brace when there are fewer than two.

    Raises:
        SongError: two locators share a name or a position.
    """
    cues = sorted(song.cue_points, key=lambda c: c.time)
    if len(cues) < 2:
        return [loop_span(song)]
    spans: List[Span] = []
    seen = set()
    for i in range(len(cues) - 1):
        a, b = cues[i], cues[i + 1]
        name = a.name.strip() or f"Section {i + 1}"
        if name in seen:
            raise SongError(f"two locators are named {name!r}; give each section its own name "
                            "(e.g. 'Chorus 1', 'Chorus 2')")
        if b.time - a.time <= EPS:
            raise SongError(f"two locators sit at beat {a.time:g}; delete one")
        seen.add(name)
        spans.append(Span(name, float(a.time), float(b.time)))
    return spans


def section_json(song: Song, span: Span) -> Dict[str, Any]:
    """A request v1 section: whole bars when on the bar grid, else exact beats."""
    b0, b1 = beat_to_bar(song, span.start_beat), beat_to_bar(song, span.end_beat)
    if abs(b0 - round(b0)) < EPS and abs(b1 - round(b1)) < EPS:
        return {"name": span.name, "start_bar": int(round(b0)), "end_bar": int(round(b1))}
    return {"name": span.name, "start_beat": span.start_beat, "end_beat": span.end_beat}


def snap_to_bars(song: Song, span: Span) -> Tuple[int, int]:
    """1-based bars covering a span: start rounded down, end (exclusive) rounded up."""
    b0 = math.floor(beat_to_bar(song, span.start_beat) + EPS)
    b1 = math.ceil(beat_to_bar(song, span.end_beat) - EPS)
    return b0, max(b1, b0 + 1)


# -- notes ------------------------------------------------------------------------------------

def _raw_notes(clip: Clip) -> List[Tuple[int, float, float, float, bool]]:
    """(pitch, time, duration, velocity, mute) in clip beats (Live 11+: get_notes_extended)."""
    span = max(float(clip.end_marker), float(clip.loop_end), float(clip.length)) + 1.0
    return [(int(n.pitch), float(n.start_time), float(n.duration), float(n.velocity), bool(n.mute))
            for n in clip.get_notes_extended(0, 128, 0.0, span)]


def _play_segments(clip: Clip, at_beat: float, until_beat: float) -> List[Tuple[float, float, float]]:
    """(clip_from, clip_to, song_offset) pieces: clip beat t in [from, to) plays at t + offset."""
    start_marker = float(clip.start_marker)
    if not clip.looping:
        end = min(float(clip.end_marker), start_marker + (until_beat - at_beat))
        return [(start_marker, end, at_beat - start_marker)]
    loop_start, loop_end = float(clip.loop_start), float(clip.loop_end)
    period = loop_end - loop_start
    segments = [(start_marker, loop_end, at_beat - start_marker)]
    song_pos = at_beat + (loop_end - start_marker)
    while period > EPS and song_pos < until_beat - EPS:
        segments.append((loop_start, loop_end, song_pos - loop_start))
        song_pos += period
    return segments


def clip_notes(clip: Clip, at_beat: float, until_beat: float) -> List[Dict[str, Any]]:
    """Notes of a MIDI clip played from ``at_beat`` up to ``until_beat`` (song beats).

    Follows the clip's start marker and loop; muted notes and notes starting outside are left out.
    """
    out: List[Dict[str, Any]] = []
    raw = _raw_notes(clip)
    for c0, c1, offset in _play_segments(clip, at_beat, until_beat):
        for pitch, t, dur, vel, mute in raw:
            if mute or not (c0 - EPS <= t < c1 - EPS):
                continue
            start = t + offset
            if start >= until_beat - EPS:
                continue
            out.append({
                "pitch": pitch,
                "start_beat": round(start, 9),
                "end_beat": round(min(start + dur, until_beat), 9),
                "velocity": max(1, min(127, int(round(vel)))),
            })
    return out


def _track_of(clip: Clip) -> Any:
    parent: Any = clip.canonical_parent
    if hasattr(parent, "clip_slots"):
        return parent  # arrangement clip: parent is the track
    return parent.canonical_parent  # session clip: parent is the clip slot


def gather_notes(song: Song, app: Application, window: Span,
                 log: Any = None) -> Dict[str, List[Dict[str, Any]]]:
    """Notes by role ("chords", "drums", "melody") from the role-named tracks.

    Args:
        song: the Live set.
        app: Live's application (to know whether the Arrangement is in front).
        window: the song span of the request (first section start to last section end).
        log: optional callable for notes to the musician.
    """
    notes: Dict[str, List[Dict[str, Any]]] = {"chords": [], "drums": [], "melody": []}
    used: List[Clip] = []
    arranger = app.view.focused_document_view == "Arranger"
    tracks: List[Track] = list(song.tracks)
    if arranger:
        for track in tracks:
            role = role_from_track_name(track.name)
            if role is None or not hasattr(track, "arrangement_clips"):
                continue
            for clip in track.arrangement_clips:
                if clip.is_midi_clip and clip.start_time < window.end_beat and clip.end_time > window.start_beat:
                    notes[role] += clip_notes(clip, float(clip.start_time), min(float(clip.end_time), window.end_beat))
                    used.append(clip)
    else:
        scene = song.view.selected_scene
        row = list(song.scenes).index(scene) if scene in list(song.scenes) else -1
        for track in tracks:
            role = role_from_track_name(track.name)
            if role is None or row < 0 or row >= len(track.clip_slots):
                continue
            slot = track.clip_slots[row]
            if slot.has_clip and slot.clip.is_midi_clip:
                notes[role] += clip_notes(slot.clip, window.start_beat, window.end_beat)
                used.append(slot.clip)
    detail = song.view.detail_clip
    if detail is not None and detail.is_midi_clip and not any(detail == c for c in used):
        track = _track_of(detail)
        role = role_from_track_name(track.name)
        if role is None:
            if log is not None:
                log(f"the selected clip is on track {track.name!r}; name the track chords, drums or "
                    "melody so StemBridge knows what it is")
        elif detail.is_arrangement_clip:
            notes[role] += clip_notes(detail, float(detail.start_time), min(float(detail.end_time), window.end_beat))
        else:
            notes[role] += clip_notes(detail, window.start_beat, window.end_beat)
    for role in notes:
        notes[role].sort(key=lambda n: (n["start_beat"], n["pitch"]))
    return notes


def _inside(path: str, folder: str) -> Optional[str]:
    """``path`` relative to ``folder`` with "/" separators (symlinks resolved), or None outside it."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    try:
        if os.path.commonpath([real, root]) != root:
            return None
    except ValueError:  # another drive on Windows
        return None
    return os.path.relpath(real, root).replace(os.sep, "/")


def hummed_melody(song: Song, project_folder: str, log: Any = None) -> Optional[Dict[str, Any]]:
    """The selected Arrangement audio clip as the request's melody audio input, or None.

    Returns ``{"audio": path inside the project, "offset_s": song seconds where the clip starts,
    "source_offset_s": seconds into the file where it starts playing, "length_s": seconds of the
    file it plays}``. Clip markers are in beats when the clip is warped (converted to file seconds
    with ``Clip.beat_to_sample_time``) and in seconds when it is not; a looping clip contributes
    its first pass.

    Raises:
        SongError: the clip's file is missing or outside the set's folder (the bridge only reads
            files inside the project folder), or the clip is too short.
    """
    clip = song.view.detail_clip
    if clip is None or not clip.is_audio_clip:
        return None
    if not clip.is_arrangement_clip:
        if log is not None:
            log("the selected audio clip is in Session view; select the hummed clip in the Arrangement "
                "to use it as the melody")
        return None
    if str(_track_of(clip).name).lower().startswith("sb "):
        return None  # a stem StemBridge made: never an input
    path = str(clip.file_path)
    if not path or not os.path.isfile(path):
        raise SongError(f"the selected audio clip {clip.name!r} plays {path!r}, which is missing; "
                        "locate it (File > Manage Files) or select another clip")
    rel = _inside(path, project_folder)
    if rel is None:
        raise SongError(f"the selected audio clip plays {path}, outside the set's folder {project_folder}, "
                        "where the bridge cannot read it; use File > Collect All and Save, then select "
                        "the clip again")
    seconds_per_beat = 60.0 / float(song.tempo)
    start, end = float(clip.start_time), float(clip.end_time)
    marker = float(clip.start_marker)
    play_end = float(clip.loop_end) if clip.looping else float(clip.end_marker)
    if clip.warping:  # markers in beats of the clip
        rate = float(clip.sample_rate)
        src0 = float(clip.beat_to_sample_time(marker)) / rate
        src1 = float(clip.beat_to_sample_time(min(play_end, marker + (end - start)))) / rate
        if log is not None:
            log("note: the hummed clip is warped; StemBridge reads its file at the file's own speed")
    else:  # markers in seconds of the file
        src0 = marker
        src1 = min(play_end, marker + (end - start) * seconds_per_beat)
    if src1 - src0 < 0.01:
        raise SongError(f"the selected audio clip {clip.name!r} plays less than 10 ms; select the hummed clip")
    return {"audio": rel, "offset_s": round(start * seconds_per_beat, 9),
            "source_offset_s": round(max(0.0, src0), 9), "length_s": round(src1 - src0, 9)}


def project_dir(song: Song, configured: str) -> str:
    """The folder of the saved set, else the configured folder.

    Raises:
        SongError: the set was never saved and no folder is configured.
    """
    path = getattr(song, "file_path", "") or ""
    if path:
        return os.path.dirname(os.path.abspath(path))
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    raise SongError("save the Live set first (StemBridge keeps requests and stems in a "
                    "'stembridge' folder beside it), or set project_dir in settings.json")

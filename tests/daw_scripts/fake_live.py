"""In-memory stand-ins for the Live objects the StemBridge Remote Script touches.

Attribute and method names follow Live's API (checked by mypy against ableton-live-stubs on the
script itself); only what the script uses is modelled. They refuse what Live refuses, the way
Live does: ``RuntimeError`` for a clip on a non-audio, frozen or recording track, an unreadable
file or a position outside [0, 1576800] beats, or deleting another track's clip;
``Live.Base.LimitationError`` for a track over the edition's limit. ``install_live_module`` puts
a ``Live`` module with those names in ``sys.modules`` (Live itself only exists inside Live).
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

MAX_POSITION_BEATS = 1576800.0


class LimitationError(Exception):
    """Live.Base.LimitationError: a limit of the Live edition (e.g. 16 tracks in Intro)."""


def install_live_module() -> types.ModuleType:
    """A ``Live`` package with ``Base.LimitationError`` and ``Application.get_application``."""
    live = sys.modules.get("Live")
    if live is not None and hasattr(live, "Base"):
        return live
    live = types.ModuleType("Live")
    base = types.ModuleType("Live.Base")
    base.LimitationError = LimitationError  # type: ignore[attr-defined]
    app = types.ModuleType("Live.Application")
    app.get_application = lambda: FakeApp()  # type: ignore[attr-defined]
    live.Base, live.Application = base, app  # type: ignore[attr-defined]
    sys.modules.update({"Live": live, "Live.Base": base, "Live.Application": app})
    return live


def _readable_audio(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head in (b"RIFF", b"FORM", b"fLaC", b"OggS", b"RF64")


@dataclass
class FakeNote:
    pitch: int
    start_time: float
    duration: float
    velocity: float = 100.0
    mute: bool = False


class FakeClip:
    def __init__(self, notes: list[FakeNote] | None = None, *, length: float = 4.0, looping: bool = False,
                 loop_start: float = 0.0, loop_end: float | None = None, start_marker: float = 0.0,
                 end_marker: float | None = None, start_time: float = 0.0, arrangement: bool = False,
                 midi: bool = True, name: str = "", file_path: str = "", warping: bool = False,
                 warp_bpm: float = 120.0, sample_rate: float = 44100.0) -> None:
        self._notes = notes or []
        self.length = length
        self.looping = looping
        self.loop_start = loop_start
        self.loop_end = length if loop_end is None else loop_end
        self.start_marker = start_marker
        self.end_marker = length if end_marker is None else end_marker
        self.start_time = start_time
        self.end_time = start_time + length
        self.is_arrangement_clip = arrangement
        self.is_midi_clip = midi
        self.is_audio_clip = not midi
        self.name = name
        self.file_path = file_path
        self.canonical_parent: Any = None
        self.warping = warping
        self.sample_rate = sample_rate
        self._warp_bpm = warp_bpm  # a warped clip here has one tempo: beat b is b*60/bpm s in the file

    def beat_to_sample_time(self, beat_time: float) -> float:
        if not self.warping:
            raise RuntimeError("beat_to_sample_time: the sample is not warped")
        return beat_time * 60.0 / self._warp_bpm * self.sample_rate

    def get_notes_extended(self, from_pitch: int, pitch_span: int, from_time: float, time_span: float) -> list[FakeNote]:
        return [n for n in self._notes if from_pitch <= n.pitch < from_pitch + pitch_span
                and from_time <= n.start_time < from_time + time_span]


class FakeClipSlot:
    def __init__(self, track: FakeTrack, clip: FakeClip | None = None) -> None:
        self.canonical_parent = track
        self.clip = clip
        if clip is not None:
            clip.canonical_parent = self

    @property
    def has_clip(self) -> bool:
        return self.clip is not None


def _new_audio_clip(track: FakeTrack, file_path: str, position: float) -> FakeClip:
    """What Live checks before Track/TakeLane.create_audio_clip (errors as RuntimeError)."""
    if not track.has_audio_input:
        raise RuntimeError("Cannot create an audio clip on a MIDI track")
    if track.is_frozen:
        raise RuntimeError("Cannot create a clip on a frozen track")
    if track.arm and track._recording:
        raise RuntimeError("Cannot create a clip on a track that is being recorded into")
    if not 0.0 <= position <= MAX_POSITION_BEATS:
        raise RuntimeError("Position out of range")
    if not _readable_audio(file_path):
        raise RuntimeError("Invalid audio file")
    # Live's "Auto-Warp Long Samples" default: a new clip of a long file comes in warped.
    return FakeClip(midi=False, start_time=position, arrangement=True, file_path=file_path, warping=True)


class FakeTakeLane:
    def __init__(self, track: FakeTrack) -> None:
        self.canonical_parent = track
        self.name = ""
        self.arrangement_clips: list[FakeClip] = []

    def create_audio_clip(self, file_path: str, start_time: float) -> FakeClip:
        clip = _new_audio_clip(self.canonical_parent, file_path, start_time)
        clip.canonical_parent = self
        self.arrangement_clips.append(clip)
        return clip


class FakeTrack:
    def __init__(self, name: str, *, audio: bool = False, clips: list[FakeClip | None] | None = None,
                 arrangement: list[FakeClip] | None = None, frozen: bool = False) -> None:
        self.name = name
        self.is_frozen = frozen
        self.arm = False
        self._recording = False  # armed and the transport recording into it (not an API name)
        self.has_audio_input = audio
        self.has_midi_input = not audio
        self.clip_slots = [FakeClipSlot(self, c) for c in (clips or [])]
        self.arrangement_clips: list[FakeClip] = list(arrangement or [])
        for c in self.arrangement_clips:
            c.canonical_parent = self
        self.take_lanes: list[FakeTakeLane] = []

    def create_audio_clip(self, file_path: str, position: float) -> FakeClip:
        clip = _new_audio_clip(self, file_path, position)
        clip.canonical_parent = self
        self.arrangement_clips.append(clip)
        return clip

    def delete_clip(self, clip: FakeClip) -> None:
        if clip not in self.arrangement_clips:
            raise RuntimeError("The clip belongs to another track")
        self.arrangement_clips.remove(clip)

    def create_take_lane(self) -> FakeTakeLane:
        lane = FakeTakeLane(self)
        self.take_lanes.append(lane)
        return lane


@dataclass
class FakeCue:
    name: str
    time: float


@dataclass
class FakeSongView:
    selected_scene: Any = None
    detail_clip: FakeClip | None = None


class FakeSong:
    def __init__(self, *, tempo: float = 120.0, signature: tuple[int, int] = (4, 4),
                 cues: list[FakeCue] | None = None, tracks: list[FakeTrack] | None = None,
                 scenes: int = 2, selected_scene: int = 0, loop: tuple[float, float] = (0.0, 16.0),
                 file_path: str = "", max_tracks: int = 1000) -> None:
        self.tempo = tempo
        self.max_tracks = max_tracks
        self.signature_numerator, self.signature_denominator = signature
        self.cue_points = list(cues or [])
        self.tracks = list(tracks or [])
        self.scenes = [object() for _ in range(scenes)]
        self.view = FakeSongView(selected_scene=self.scenes[selected_scene])
        self.loop_start, self.loop_length = loop
        self.file_path = file_path

    def create_audio_track(self, index: int = -1) -> FakeTrack:
        if len(self.tracks) >= self.max_tracks:
            raise LimitationError(f"This edition of Live allows {self.max_tracks} tracks")
        track = FakeTrack("Audio", audio=True)
        self.tracks.append(track) if index == -1 else self.tracks.insert(index, track)
        return track


@dataclass
class FakeAppView:
    focused_document_view: str = "Session"


@dataclass
class FakeApp:
    version: tuple[int, int, int] = (12, 1, 0)
    view: FakeAppView = field(default_factory=FakeAppView)

    def get_major_version(self) -> int:
        return self.version[0]

    def get_minor_version(self) -> int:
        return self.version[1]

    def get_bugfix_version(self) -> int:
        return self.version[2]


class FakeTransport:
    """Records what the script sends; ``incoming`` is what the next poll returns."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self.incoming: list[tuple[str, list[Any]]] = []

    def send(self, address: str, *args: Any) -> None:
        self.sent.append((address, args))

    def poll(self, limit: int = 64) -> list[tuple[tuple[str, list[Any]], tuple[str, int]]]:
        out = [(m, ("127.0.0.1", 9000)) for m in self.incoming]
        self.incoming = []
        return out

    def by_address(self, address: str) -> list[tuple[Any, ...]]:
        return [args for a, args in self.sent if a == address]

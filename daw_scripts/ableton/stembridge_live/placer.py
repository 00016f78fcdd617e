"""Put the stems of a manifest v1 into the Live set.

Live 12.0.5 and later can create audio clips in the Arrangement from a script
(``Track.create_audio_clip``): each stem goes to its own audio track ("SB Drums", …) at the
section's beat, with warping off (the stem is rendered at the set's tempo; Live's auto-warp would
otherwise guess a tempo and stretch it off the bars).

A stem for a section that already has a clip on that track (a regeneration or a variation) must
be heard at once: Live plays only the main lane, and a clip on a take lane stays silent until it
is comped. So the earlier take is kept on a new take lane (named "<section> take <n>"), its main
lane clip is replaced by the new take, and nothing is lost. Without take lanes the new take
goes to the main lane only when no clip sits there.

Older versions cannot create clips: the files are copied to a "StemBridge" folder beside the set
with names that say where they go, for drag-in.

Live refuses calls with ``RuntimeError`` or ``LimitationError`` (frozen or recording track, too
many tracks, unreadable file); each placement catches them, reports and goes on with the next.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .live_errors import LIVE_ERRORS

if TYPE_CHECKING:
    from Live.Application import Application
    from Live.Clip import Clip
    from Live.Song import Song
    from Live.Track import Track

MIN_VERSION = (12, 0, 5)
POSITION_EPS_BEATS = 1e-3


def live_version(app: Application) -> Tuple[int, int, int]:
    """(major, minor, bugfix) of the running Live."""
    return (int(app.get_major_version()), int(app.get_minor_version()), int(app.get_bugfix_version()))


def can_place_in_arrangement(app: Application, song: Song) -> bool:
    """True on Live 12.0.5+, where Track.create_audio_clip exists."""
    if live_version(app) < MIN_VERSION:
        return False
    return all(hasattr(t, "create_audio_clip") for t in list(song.tracks)[:1])


def _audio_track(song: Song, name: str) -> Track:
    for track in song.tracks:
        if track.name == name and track.has_audio_input:
            return track
    track = song.create_audio_track(-1)
    track.name = name
    return track


def _clip_at(track: Track, beat: float) -> Optional[Clip]:
    for c in track.arrangement_clips:
        if abs(float(c.start_time) - beat) <= POSITION_EPS_BEATS:
            return c
    return None


def _unwarped(clip: Clip, name: str) -> Clip:
    clip.warping = False  # rendered at the set's tempo: play it sample for sample
    clip.name = name
    return clip


def _placements(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    placements = manifest.get("placements")
    if not isinstance(placements, list):
        raise ValueError(f"manifest {manifest.get('job_id')!r} has no placements list")
    return [p for p in placements if isinstance(p, dict)]


def _abs(project_dir: str, rel: str) -> str:
    return os.path.normpath(os.path.join(project_dir, *rel.split("/")))


def _place_one(song: Song, p: Dict[str, Any], path: str) -> None:
    """Place one stem; Live's RuntimeError / LimitationError propagate to the caller."""
    stem = str(p.get("stem", "stem"))
    track = _audio_track(song, str(p.get("track") or "SB " + stem.capitalize()))
    beat = float(p["start_beat"])
    section = str(p.get("section", ""))
    name = f"{section} take {p.get('take', 1)}".strip()
    old = _clip_at(track, beat)
    if old is None:
        _unwarped(track.create_audio_clip(path, beat), name)
        return
    if not hasattr(track, "create_take_lane"):
        raise RuntimeError(f"track {track.name!r} already has a clip at beat {beat:g} and this Live has "
                           "no take lanes; drag the new take in from the stems folder")
    lane = track.create_take_lane()
    lane.name = str(old.name) or f"{section} earlier take".strip()
    _unwarped(lane.create_audio_clip(str(old.file_path), beat), lane.name)
    track.delete_clip(old)
    _unwarped(track.create_audio_clip(path, beat), name)


def place_in_arrangement(song: Song, manifest: Dict[str, Any], project_dir: str,
                         log: Callable[[str], None]) -> Tuple[int, List[str]]:
    """Create one clip per placement.

    Returns:
        How many stems were placed, and a message per stem that was not.

    Raises:
        ValueError: the manifest has no placements list.
    """
    placed = 0
    errors: List[str] = []
    for p in _placements(manifest):
        path = _abs(project_dir, str(p.get("file", "")))
        if not os.path.isfile(path):
            errors.append(f"stem file {p.get('file')} is missing from {project_dir}")
            continue
        try:
            _place_one(song, p, path)
        except LIVE_ERRORS as exc:
            errors.append(f"Live refused to place {p.get('stem')} of {p.get('section')!r}: {exc}")
            continue
        placed += 1
    for e in errors:
        log(e)
    return placed, errors


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def copy_for_drag_in(manifest: Dict[str, Any], project_dir: str, log: Callable[[str], None]) -> Optional[str]:
    """Copy the stems to <set folder>/StemBridge/<job_id>/ with names that say where they go.

    Returns:
        The folder, or None when no file could be copied.
    """
    job = str(manifest.get("job_id", "job"))
    folder = os.path.join(project_dir, "StemBridge", job)
    copied = 0
    for p in _placements(manifest):
        src = _abs(project_dir, str(p.get("file", "")))
        if not os.path.isfile(src):
            log(f"stem file {p.get('file')} is missing from {project_dir}")
            continue
        os.makedirs(folder, exist_ok=True)
        bar = p.get("start_bar", "?")
        name = f"bar{bar}_{_slug(str(p.get('section', '')))}_{p.get('stem', 'stem')}_take{p.get('take', 1)}.wav"
        dst = os.path.join(folder, name)
        if not os.path.exists(dst):
            shutil.copyfile(src, dst)
        copied += 1
    return folder if copied else None


def place(song: Song, app: Application, manifest: Dict[str, Any], project_dir: str,
          log: Callable[[str], None]) -> Tuple[str, List[str]]:
    """Place a manifest's stems the best way this Live version allows.

    Returns:
        A status line, and a message per stem that could not be placed.
    """
    job = manifest.get("job_id", "?")
    if can_place_in_arrangement(app, song):
        n, errors = place_in_arrangement(song, manifest, project_dir, log)
        return f"StemBridge: placed {n} stem(s) of {job} in the Arrangement", errors
    folder = copy_for_drag_in(manifest, project_dir, log)
    version = ".".join(str(v) for v in live_version(app))
    if folder is None:
        return f"StemBridge: no stem files of {job} were found", []
    return (f"StemBridge: Live {version} cannot place clips from a script (needs 12.0.5+); "
            f"the stems are in {folder} - drag each onto its track at the bar in its name, "
            "with Warp off"), []

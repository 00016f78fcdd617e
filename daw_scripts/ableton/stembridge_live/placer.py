"""Put the stems of a manifest v1 into the Live set.

Live 12.0.5 and later can create audio clips in the Arrangement from a script
(``Track.create_audio_clip``): each stem goes to its own audio track ("SB Drums", …) at the
section's beat. A stem for a section that already has a clip on that track (a regeneration or a
variation) goes to a new take lane when the version has take lanes, so the old take stays.
Older versions cannot do this: the files are copied to a "StemBridge" folder beside the set with
names that say where they go, for drag-in.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from Live.Application import Application
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


def _has_clip_at(track: Track, beat: float) -> bool:
    return any(abs(float(c.start_time) - beat) <= POSITION_EPS_BEATS for c in track.arrangement_clips)


def _placements(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    placements = manifest.get("placements")
    if not isinstance(placements, list):
        raise ValueError(f"manifest {manifest.get('job_id')!r} has no placements list")
    return [p for p in placements if isinstance(p, dict)]


def _abs(project_dir: str, rel: str) -> str:
    return os.path.normpath(os.path.join(project_dir, *rel.split("/")))


def place_in_arrangement(song: Song, manifest: Dict[str, Any], project_dir: str,
                         log: Callable[[str], None]) -> int:
    """Create one clip per placement; returns how many were placed.

    Raises:
        ValueError: the manifest has no placements list.
    """
    placed = 0
    for p in _placements(manifest):
        path = _abs(project_dir, str(p.get("file", "")))
        if not os.path.isfile(path):
            log(f"stem file {p.get('file')} is missing from {project_dir}")
            continue
        stem = str(p.get("stem", "stem"))
        track = _audio_track(song, str(p.get("track") or "SB " + stem.capitalize()))
        beat = float(p["start_beat"])
        take = p.get("take", 1)
        if _has_clip_at(track, beat) and hasattr(track, "create_take_lane"):
            lane = track.create_take_lane()
            lane.name = f"{p.get('section', '')} take {take}".strip()
            lane.create_audio_clip(path, beat)
        else:
            clip = track.create_audio_clip(path, beat)
            clip.name = f"{p.get('section', '')} take {take}".strip()
        placed += 1
    return placed


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
          log: Callable[[str], None]) -> str:
    """Place a manifest's stems the best way this Live version allows; returns a status line."""
    job = manifest.get("job_id", "?")
    if can_place_in_arrangement(app, song):
        n = place_in_arrangement(song, manifest, project_dir, log)
        return f"StemBridge: placed {n} stem(s) of {job} in the Arrangement"
    folder = copy_for_drag_in(manifest, project_dir, log)
    version = ".".join(str(v) for v in live_version(app))
    if folder is None:
        return f"StemBridge: no stem files of {job} were found"
    return (f"StemBridge: Live {version} cannot place clips from a script (needs 12.0.5+); "
            f"the stems are in {folder} - drag each onto its track at the bar in its name")

"""The session report: ``report.html`` plus PNG pictures of what a job understood and made.

:func:`write_report` draws the pictures (:mod:`.figures`), writes them into ``<name>/`` and
then the page ``<name>.html`` (:mod:`.page`) next to it. Nothing existing is overwritten and
nothing half-written is visible: the pictures go into a hidden folder renamed when complete,
the page is written under a temporary name and renamed last.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from bridge.export.report.model import PitchTrack, ReportData, StemView, pitch_track
from conditioning.io.atomic import write_text_atomic

__all__ = ["PitchTrack", "ReportData", "StemView", "pitch_track", "write_report", "free_report_name"]

log = logging.getLogger(__name__)


def free_report_name(folder: Path, base: str = "report") -> str:
    """``base`` if neither ``<base>.html`` nor ``<base>/`` exists in ``folder``, else ``base-2``, ..."""
    name, n = base, 1
    while (folder / f"{name}.html").exists() or (folder / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def write_report(folder: Path, data: ReportData, name: str = "report") -> Path:
    """Draw the pictures and write ``folder/<name>.html`` with them in ``folder/<name>/``.

    Args:
        folder: the job's render folder (stem links in ``data`` are relative to it).
        data: what to show.
        name: the page's base name; see :func:`free_report_name`.

    Returns:
        The page's path.

    Raises:
        FileExistsError: the page or its picture folder exists already.
    """
    from bridge.export.report import figures
    from bridge.export.report.page import render_page

    page, pictures = folder / f"{name}.html", folder / name
    if page.exists() or pictures.exists():
        raise FileExistsError(f"{page} already exists; stembridge never overwrites results")
    started = time.perf_counter()
    partial = folder / f".{name}.partial"
    if partial.exists():  # left by a killed run: never published
        shutil.rmtree(partial)
    partial.mkdir()
    try:
        images: dict[str, str] = {}
        drawn = {"timeline": figures.timeline_figure(data)}
        if data.melody is not None or data.hum is not None:
            drawn["melody"] = figures.melody_figure(data)
        if data.drums is not None:
            drawn["drums"] = figures.drums_figure(data)
        for key, fig in drawn.items():
            figures.save_png(fig, partial / f"{key}.png")
            images[key] = f"{name}/{key}.png"
        stem_images: dict[str, str] = {}
        for i, stem in enumerate(dict.fromkeys(v.stem for v in data.stems)):
            png = f"track-{i + 1:02d}.png"  # stem names are checked words, but a number is always safe
            views = [v for v in data.stems if v.stem == stem]
            figures.save_png(figures.track_figure(data, views), partial / png)
            stem_images[stem] = f"{name}/{png}"
        html = render_page(data, images, stem_images)
        partial.rename(pictures)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    write_text_atomic(page, html)
    log.info("report %s: %d pictures in %.2f s", page, len(images) + len(stem_images), time.perf_counter() - started)
    return page

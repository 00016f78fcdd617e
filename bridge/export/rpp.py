"""Write a REAPER project (.rpp): tempo map, one region per section, one track per stem.

The RPP format is REAPER's plain-text chunk format (``<TAG ...>`` blocks of ``KEY value`` lines).
Media paths are written relative to the .rpp file, so the folder can be moved as a whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conditioning.io.atomic import write_text_atomic
from conditioning.timeline import Section, TempoMap


@dataclass(frozen=True)
class RppItem:
    """One audio item on ``track`` at ``position_s`` lasting ``length_s`` seconds.

    ``takes`` are (take name, file relative to the .rpp) pairs; the last one is the active take.
    """

    track: str
    position_s: float
    length_s: float
    takes: tuple[tuple[str, str], ...]


def _quote(text: str) -> str:
    """Quote a string the way RPP does (it has no escapes: pick a quote char not in the text)."""
    for q in ('"', "'", "`"):
        if q not in text:
            return f"{q}{text}{q}"
    return '"' + text.replace('"', "'") + '"'


def _timesig_code(numerator: int, denominator: int) -> int:
    """REAPER's packed time signature: numerator + denominator * 65536."""
    return numerator + denominator * 65536


def rpp_text(
    tempo_map: TempoMap,
    sections: Sequence[Section],
    items: Sequence[RppItem],
    sample_rate: int,
) -> str:
    """The text of a REAPER project.

    Args:
        tempo_map: the first point becomes TEMPO; every point a square tempo-envelope point.
        sections: one region each (MARKER lines with the region flag).
        items: audio items; one track per distinct ``track`` name, in first-seen order.
        sample_rate: project sample rate (Hz).
    """
    first = tempo_map.points[0]
    ts = first.time_signature
    lines = [
        f'<REAPER_PROJECT 0.1 "7.0/stembridge" {int(time.time())}',
        "  RIPPLE 0",
        f"  SAMPLERATE {sample_rate} 0 0",
        f"  TEMPO {first.bpm:.10g} {ts.numerator} {ts.denominator}",
        "  <TEMPOENVEX",
        "    ACT 1 -1",
    ]
    last_ts = None
    for p in tempo_map.points:
        t = tempo_map.beat_to_seconds(p.beat)
        if p.time_signature != last_ts:
            code = _timesig_code(p.time_signature.numerator, p.time_signature.denominator)
            lines.append(f"    PT {t:.12f} {p.bpm:.10f} 1 {code} 0 1")
            last_ts = p.time_signature
        else:
            lines.append(f"    PT {t:.12f} {p.bpm:.10f} 1")
    lines.append("  >")
    for idx, sec in enumerate(sections, start=1):
        start = tempo_map.beat_to_seconds(sec.start_beat)
        end = tempo_map.beat_to_seconds(sec.end_beat)
        lines.append(f"  MARKER {idx} {start:.12f} {_quote(sec.name)} 1")
        lines.append(f'  MARKER {idx} {end:.12f} "" 1')
    tracks: dict[str, list[RppItem]] = {}
    for item in items:
        tracks.setdefault(item.track, []).append(item)
    for name, track_items in tracks.items():
        lines += ["  <TRACK", f"    NAME {_quote(name)}"]
        for item in sorted(track_items, key=lambda i: i.position_s):
            lines += [
                "    <ITEM",
                f"      POSITION {item.position_s:.12f}",
                f"      LENGTH {item.length_s:.12f}",
            ]
            for k, (take_name, file) in enumerate(item.takes):
                if k > 0:
                    lines.append("      TAKE SEL" if k == len(item.takes) - 1 else "      TAKE")
                lines += [
                    f"      NAME {_quote(take_name)}",
                    "      <SOURCE WAVE",
                    f"        FILE {_quote(file)}",
                    "      >",
                ]
            lines.append("    >")
        lines.append("  >")
    lines.append(">")
    return "\n".join(lines) + "\n"


def write_rpp(
    path: Path,
    tempo_map: TempoMap,
    sections: Sequence[Section],
    items: Sequence[RppItem],
    sample_rate: int,
) -> Path:
    """Write :func:`rpp_text` to ``path`` (must not exist yet; written via a temp file)."""
    return write_text_atomic(path, rpp_text(tempo_map, sections, items, sample_rate))

"""The report's pictures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Every musical picture shares one x axis: beats from the project start, labelled with 1-based
bar numbers at the bar lines of the tempo map. Stem audio (seconds) is mapped onto that axis through the tempo map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.signal import spectrogram

from bridge.export.report.model import PitchTrack, ReportData, StemView
from conditioning.drums import DRUM_ROLES
from conditioning.timeline import TempoMap

#: Pixels per inch of every PNG.
DPI = 80
WIDTH_IN = 12.0
#: The most bar-number labels on an axis (the rest of the bar lines stay as ticks).
MAX_BAR_LABELS = 24
ROLE_COLOURS = {
    "intro": "#8ecae6", "verse": "#90be6d", "pre-chorus": "#f9c74f", "chorus": "#f8961e",
    "post-chorus": "#f3722c", "bridge": "#b5838d", "breakdown": "#9d8189", "break": "#9d8189",
    "drop": "#f94144", "build": "#f9844a", "solo": "#577590", "interlude": "#43aa8b", "outro": "#4d908e",
}
OTHER_COLOUR = "#adb5bd"
#: Spectrogram frequencies shown, Hz.
SPECTRUM_MAX_HZ = 12000.0


def song_end_beat(data: ReportData) -> float:
    """The last section's end in beats (at least one bar)."""
    return max([s.end_beat for s in data.sections] + [data.tempo_map.points[0].time_signature.beats_per_bar])


def _figure(
    height_in: float, rows: int = 1, ratios: Sequence[float] | None = None, *, sharex: bool = True
) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    # fixed margins (in inches) instead of a layout engine: a layout pass costs as much as the drawing
    fig.subplots_adjust(left=0.9 / WIDTH_IN, right=1 - 0.15 / WIDTH_IN, top=1 - 0.12 / height_in,
                        bottom=0.5 / height_in, hspace=0.12)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False, gridspec_kw={"height_ratios": ratios} if ratios else None)
    for upper in axes[:-1, 0]:
        upper.xaxis.set_visible(False)  # only the bottom row shows bar numbers; ticks are costly to draw
    return fig, [a[0] for a in axes]


def bar_ticks(tempo_map: TempoMap, end_beat: float) -> tuple[list[float], list[float], list[str]]:
    """(every bar line, labelled bar lines, their 1-based bar numbers) over ``[0, end_beat]``."""
    lines = tempo_map.bar_lines(0.0, end_beat + 1e-9)
    step = max(1, int(np.ceil(len(lines) / MAX_BAR_LABELS)))
    labelled = lines[::step]
    return lines, labelled, [str(int(round(tempo_map.beat_to_bar(b)))) for b in labelled]


def _bar_axis(axes: Sequence[Axes], tempo_map: TempoMap, end_beat: float) -> None:
    """Beats on x (shared by ``axes``), bar numbers on the bottom one; bar lines as one collection each."""
    lines, labelled, labels = bar_ticks(tempo_map, end_beat)
    for ax in axes:
        ax.vlines(lines, 0, 1, transform=ax.get_xaxis_transform(), colors="#dee2e6", linewidth=0.6, zorder=0)
    bottom = axes[-1]
    bottom.set_xlim(0.0, end_beat)
    bottom.set_xticks(labelled, labels)  # shared: set once, not once per row (tick objects are costly)
    bottom.set_xlabel("bar")


def _label(text: str) -> str:
    """``text`` drawable by any font: unprintable characters (NUL, escape, ...) become "?"."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _fits(text: str, width_beats: float, end_beat: float, font_pt: float = 8.0) -> bool:
    """Whether ``text`` fits inside a box ``width_beats`` wide on a full-width axis."""
    width_pt = width_beats / end_beat * WIDTH_IN * 72 * 0.9
    return len(text) * font_pt * 0.6 < width_pt


def seconds_to_beats(tempo_map: TempoMap, seconds: np.ndarray) -> np.ndarray:
    """Vectorised :meth:`TempoMap.seconds_to_beat` (tempo held after the last point)."""
    beats = np.array([p.beat for p in tempo_map.points], dtype=np.float64)
    secs = np.array([tempo_map.beat_to_seconds(b) for b in beats], dtype=np.float64)
    last = tempo_map.points[-1]
    far = max(float(np.max(seconds, initial=0.0)), secs[-1]) + 1.0
    beats = np.append(beats, beats[-1] + (far - secs[-1]) * last.bpm / 60.0)
    secs = np.append(secs, far)
    first = tempo_map.points[0].bpm / 60.0
    out = np.interp(seconds, secs, beats)
    early = seconds < 0
    out[early] = seconds[early] * first
    return out


def timeline_figure(data: ReportData) -> Figure:
    """Sections on a bar ruler, the tempo map (bpm and metre) and the chord labels."""
    end = song_end_beat(data)
    fig, (ax_s, ax_t, ax_c) = _figure(3.6, 3, [1.0, 1.2, 0.9])
    by_colour: dict[str, list[tuple[float, float]]] = {}
    for sec in data.sections:  # one collection per colour: hundreds of sections stay cheap
        by_colour.setdefault(ROLE_COLOURS.get(sec.role, OTHER_COLOUR), []).append((sec.start_beat, sec.length_beats))
    for colour, spans in by_colour.items():
        ax_s.broken_barh(spans, (0, 1), facecolors=colour, edgecolors="white")
    for sec in data.sections:
        if _fits(sec.name, sec.length_beats, end):
            ax_s.text(sec.start_beat + sec.length_beats / 2, 0.5, _label(sec.name), ha="center", va="center", fontsize=8,
                      clip_on=True)
    ax_s.set_yticks([])
    ax_s.set_ylabel("sections", rotation=0, ha="right", va="center")
    tm = data.tempo_map
    xs = [p.beat for p in tm.points] + [end]
    ys = [p.bpm for p in tm.points]
    ax_t.stairs(ys, np.maximum.accumulate(np.array(xs, dtype=np.float64)), baseline=None, color="#1d3557",
                linewidth=1.5)
    lo, hi = min(ys), max(ys)
    ax_t.set_ylim(lo - 5 - 0.1 * (hi - lo), hi + 5 + 0.25 * (hi - lo))
    changes, last_ts = [], None
    for p in tm.points:
        if p.time_signature != last_ts and p.beat <= end:
            changes.append(p)
            last_ts = p.time_signature
    step = max(1, int(np.ceil(len(changes) / MAX_BAR_LABELS)))  # a dense metre map: label every n-th change
    for p in changes[::step]:
        ax_t.annotate(str(p.time_signature), (p.beat, p.bpm), textcoords="offset points", xytext=(2, 4), fontsize=7,
                      color="#e63946")
    ax_t.set_ylabel("bpm", rotation=0, ha="right", va="center")
    if data.chords is not None:
        chord_spans = [sp for sp in data.chords.in_range(0.0, end) if sp.label != "N"]
        for parity, colour in ((0, "#ced4da"), (1, "#e9ecef")):
            ax_c.broken_barh([(sp.start_beat, sp.end_beat - sp.start_beat) for sp in chord_spans[parity::2]], (0, 1),
                             facecolors=colour, edgecolors="white")
        for span in chord_spans:
            if _fits(span.label, span.end_beat - span.start_beat, end, 7.0):
                ax_c.text((span.start_beat + span.end_beat) / 2, 0.5, _label(span.label), ha="center", va="center",
                          fontsize=7, clip_on=True)
    else:
        ax_c.text(end / 2, 0.5, "no chords given", ha="center", va="center", color="#6c757d")
    ax_c.set_yticks([])
    ax_c.set_ylim(0, 1)
    ax_c.set_ylabel("chords", rotation=0, ha="right", va="center")
    _bar_axis([ax_s, ax_t, ax_c], tm, end)
    return fig


def melody_figure(data: ReportData) -> Figure:
    """The melody as a piano roll (boxes) with the hum's pitch track (dots) drawn through it, in MIDI notes."""
    end = song_end_beat(data)
    fig, (ax,) = _figure(3.0)
    pitches: list[float] = []
    hum: PitchTrack | None = data.hum
    if hum is not None and hum.midi.size and np.any(np.isfinite(hum.midi)):
        beats = seconds_to_beats(data.tempo_map, hum.times_s)
        voiced = np.isfinite(hum.midi)
        ax.plot(beats[voiced], hum.midi[voiced], ".", markersize=1.2, color="#1d3557", zorder=4)
        pitches += [float(np.nanmin(hum.midi)), float(np.nanmax(hum.midi))]
    if data.melody is not None and data.melody.notes:
        by_pitch: dict[int, list[tuple[float, float]]] = {}
        for n in data.melody.notes:
            by_pitch.setdefault(n.pitch, []).append((n.start_beat, n.length_beats))
        for pitch, spans in by_pitch.items():  # one collection per pitch row
            ax.broken_barh(spans, (pitch - 0.45, 0.9), facecolors="#f4a261", edgecolors="#9c3d24", alpha=0.55,
                           linewidth=0.6, zorder=3)
        pitches += [min(n.pitch for n in data.melody.notes), max(n.pitch for n in data.melody.notes)]
    if pitches:
        ax.set_ylim(max(0.0, min(pitches) - 3), min(127.0, max(pitches) + 3))
    _bar_axis([ax], data.tempo_map, end)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_ylabel("MIDI note")
    return fig


def drums_figure(data: ReportData) -> Figure:
    """The drum grid: one row per drum role, a mark per hit (bigger = louder)."""
    end = song_end_beat(data)
    fig, (ax,) = _figure(2.4)
    hits = data.drums.hits if data.drums is not None else ()
    roles = [r for r in DRUM_ROLES if any(h.role == r for h in hits)] or list(DRUM_ROLES[:3])
    row = {r: i for i, r in enumerate(roles)}
    if hits:
        ax.scatter([h.beat for h in hits], [row[h.role] for h in hits], s=[6 + 30 * h.velocity / 127 for h in hits],
                   marker="s", color="#2a9d8f", linewidths=0)
    ax.set_yticks(range(len(roles)), roles)
    ax.set_ylim(-0.6, len(roles) - 0.4)
    _bar_axis([ax], data.tempo_map, end)
    return fig


def beats_to_seconds(tempo_map: TempoMap, beats: np.ndarray) -> np.ndarray:
    """Vectorised :meth:`TempoMap.beat_to_seconds` (tempo held after the last point)."""
    pts = np.array([p.beat for p in tempo_map.points], dtype=np.float64)
    secs = np.array([tempo_map.beat_to_seconds(b) for b in pts], dtype=np.float64)
    far = max(float(np.max(beats, initial=0.0)), pts[-1]) + 1.0
    pts = np.append(pts, far)
    secs = np.append(secs, secs[-1] + (far - pts[-2]) * 60.0 / tempo_map.points[-1].bpm)
    out = np.interp(beats, pts, secs)
    early = beats < 0
    out[early] = beats[early] * 60.0 / tempo_map.points[0].bpm
    return out


def newest_takes(views: Sequence[StemView]) -> list[StemView]:
    """Per section, the placement with the highest take (what the DAW plays), in time order."""
    best: dict[tuple[float, float], StemView] = {}
    for v in views:
        span = (v.section.start_beat, v.section.end_beat)
        if span not in best or v.take > best[span].take:
            best[span] = v
    return [best[k] for k in sorted(best)]


def track_figure(data: ReportData, views: Sequence[StemView]) -> Figure:
    """One stem's track: waveform (min/max envelope) over a spectrogram of every placement, at its bars.

    Each section shows its newest take. Stem audio is in seconds; it is mapped onto the beat axis
    through the tempo map, so a stem under a tempo change still lines up with its bars.
    """
    end = song_end_beat(data)
    tm = data.tempo_map
    fig, (ax_w, ax_s) = _figure(2.8, 2, [1.0, 1.6])
    shown = newest_takes(views)
    peak = 1e-3
    top_khz = 1.0
    grid_cols = int(WIDTH_IN * DPI)
    for v in shown:
        mono = v.audio.mono().astype(np.float64)
        sr = v.audio.sample_rate
        n = mono.size
        if n == 0:
            continue
        start_s = tm.beat_to_seconds(v.section.start_beat)
        # waveform: min/max per bin, bins placed at their beats
        width = max(1, int(grid_cols * v.section.length_beats / end))
        edges = np.unique(np.linspace(0, n, max(1, min(width, n)) + 1).astype(np.int64))
        lows, highs = np.minimum.reduceat(mono, edges[:-1]), np.maximum.reduceat(mono, edges[:-1])
        t = start_s + (edges[:-1] + edges[1:]) / 2 / sr
        ax_w.fill_between(seconds_to_beats(tm, t), lows, highs, color="#264653", linewidth=0)
        peak = max(peak, float(np.max(np.abs(mono))))
        # spectrogram: STFT columns resampled onto a uniform beat grid (exact under tempo changes)
        nper = 512 if n >= 512 else max(16, n)
        hop = max(nper // 2, int(np.ceil(n / max(width, 1))))
        freqs, times, power = spectrogram(mono, fs=sr, nperseg=nper, noverlap=max(0, nper - hop), mode="magnitude")
        keep = freqs <= SPECTRUM_MAX_HZ
        db = 20 * np.log10(np.maximum(power[keep], 1e-7))
        grid = np.linspace(v.section.start_beat, v.section.end_beat, max(2, width))
        cols = np.searchsorted(times, beats_to_seconds(tm, grid) - start_s).clip(0, max(0, times.size - 1))
        top = float(db.max()) if db.size else 0.0
        khz = float(freqs[keep][-1]) / 1000 if keep.any() else 1.0
        top_khz = max(top_khz, khz)
        ax_s.imshow(db[:, cols], origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                    interpolation="nearest", extent=(v.section.start_beat, v.section.end_beat, 0.0, khz))
    ax_w.set_ylim(-peak * 1.05, peak * 1.05)
    ax_w.set_yticks([-peak, 0.0, peak], [f"{-peak:.2f}", "0", f"{peak:.2f}"])
    ax_w.set_ylabel("level")
    ax_s.set_ylim(0.0, top_khz)
    ax_s.set_yticks([k for k in (0, 2, 4, 8, 12) if k <= top_khz])
    ax_s.set_ylabel("kHz")
    _bar_axis([ax_w, ax_s], tm, end)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG (the caller makes the folder visible atomically)."""
    fig.savefig(str(path), dpi=DPI, format="png", pil_kwargs={"compress_level": 1})
    return path

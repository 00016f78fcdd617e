"""Melody maths: cleaning transcribed notes, quantisation, key snapping, chroma, MIDI skyline.

Pure functions over dataclasses and numpy arrays (no files, no models). The transcription
itself (basic-pitch) lives in :mod:`conditioning.io.basic_pitch`, which feeds its raw notes
(:class:`RawNote`, in seconds) through :func:`clean_notes` and :func:`notes_to_melody`.

Units: :class:`RawNote` positions are seconds from the start of the recording; :class:`Note`
and :class:`Melody` positions are beats from the project start; frame rates are in Hz.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from conditioning.timeline import TempoMap
from conditioning.types import Key, Melody, Note


@dataclass(frozen=True)
class RawNote:
    """A transcribed note in seconds (basic-pitch's note events, or a cleaned one).

    Attributes:
        start_s: onset, seconds from the start of the recording.
        end_s: release, seconds (> start_s).
        pitch: MIDI note number.
        amplitude: model confidence/loudness 0-1 (mean frame activation).
    """

    start_s: float
    end_s: float
    pitch: int
    amplitude: float = 0.5

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class CleaningOptions:
    """Settings of :func:`clean_notes`.

    Attributes:
        min_pitch: lowest MIDI pitch kept (default C2).
        max_pitch: highest MIDI pitch kept (default C7).
        hop_s: time step of the dominant-note decision, seconds.
        min_duration_s: notes shorter than this (seconds) are blips.
        min_relative_amplitude: notes quieter than this fraction of the median amplitude are blips.
        blip_join_s: a blip at most this far (seconds) from a neighbour is absorbed into it.
        merge_gap_s: same-pitch notes separated by at most this (seconds) and without a fresh
            onset of their own are one sung note and are merged.
        octave_jump: a note this many semitones or more away from *both* neighbours, in the
            same direction, is an octave error and moves by an octave toward them.
        neighbour_s: neighbours further apart than this (seconds) do not count for octave fixes.
    """

    min_pitch: int = 36
    max_pitch: int = 96
    hop_s: float = 0.005
    min_duration_s: float = 0.05
    min_relative_amplitude: float = 0.35
    blip_join_s: float = 0.03
    merge_gap_s: float = 0.03
    octave_jump: int = 10
    neighbour_s: float = 1.0


# ------------------------------------------------------------------------------------------
# Cleaning raw transcriptions
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    """A stretch where one raw note is the dominant sound; ``fresh`` = it starts at an onset."""

    start_s: float
    end_s: float
    pitch: int
    amplitude: float
    fresh: bool


def _dominant_segments(notes: Sequence[RawNote], hop_s: float) -> list[_Segment]:
    """Split overlapping notes into non-overlapping stretches of the dominant note.

    At every hop the sounding note with the highest amplitude wins, with a small preference for
    the note that won the previous hop (so two similar notes do not flicker); a note that has
    just started wins over the tail of an older one unless it is much weaker.
    """
    if not notes:
        return []
    t0 = min(n.start_s for n in notes)
    t1 = max(n.end_s for n in notes)
    n_hops = int(math.ceil((t1 - t0) / hop_s)) + 1
    starts = [int(round((n.start_s - t0) / hop_s)) for n in notes]
    ends = [max(int(round((n.end_s - t0) / hop_s)), s + 1) for n, s in zip(notes, starts, strict=True)]
    amps = [n.amplitude for n in notes]
    order = sorted(range(len(notes)), key=lambda i: starts[i])
    winner = np.full(n_hops, -1)
    together = int(round(0.03 / hop_s))  # onsets this close (hops) count as simultaneous
    active: list[int] = []  # sounding notes, kept in index order
    nxt = 0
    prev = -1
    for h in range(n_hops):
        while nxt < len(order) and starts[order[nxt]] <= h:
            active.append(order[nxt])
            nxt += 1
        active = sorted(i for i in active if ends[i] > h)
        if not active:
            prev = -1
            continue
        best = max(active, key=lambda i: amps[i])  # first of equals, in index order
        if prev in active and amps[prev] >= 0.8 * amps[best]:
            best = prev
        # A note starting now takes over from the tail of an earlier one (a singer starts a
        # new note by leaving the old one) unless it is much weaker (a harmonic ghost).
        latest = max(starts[i] for i in active)
        newest = max((i for i in active if starts[i] >= latest - together), key=lambda i: amps[i])
        if starts[newest] > starts[best] and amps[newest] >= 0.6 * amps[best]:
            best = newest
        winner[h] = best
        prev = best
    segments: list[_Segment] = []
    h = 0
    while h < n_hops:
        w = winner[h]
        if w < 0:
            h += 1
            continue
        k = h
        while k < n_hops and winner[k] == w:
            k += 1
        note = notes[w]
        fresh = h <= starts[w] + 1
        start = note.start_s if fresh else t0 + h * hop_s
        end = note.end_s if k >= ends[w] else t0 + k * hop_s
        if end > start:
            segments.append(_Segment(start, end, note.pitch, note.amplitude, fresh))
        h = k
    return segments


def _fix_octaves(segs: list[_Segment], opts: CleaningOptions) -> list[_Segment]:
    """Move notes that jump an octave away from both neighbours back toward them."""
    out = list(segs)
    for i in range(1, len(out) - 1):
        a, s, b = out[i - 1], out[i], out[i + 1]
        if s.start_s - a.end_s > opts.neighbour_s or b.start_s - s.end_s > opts.neighbour_s:
            continue
        up = s.pitch - a.pitch >= opts.octave_jump and s.pitch - b.pitch >= opts.octave_jump
        down = a.pitch - s.pitch >= opts.octave_jump and b.pitch - s.pitch >= opts.octave_jump
        if up or down:
            shift = -12 if up else 12
            out[i] = replace(s, pitch=s.pitch + shift)
    return out


def _remove_blips(segs: list[_Segment], opts: CleaningOptions) -> list[_Segment]:
    """Drop very short or very quiet notes, giving their time to a touching neighbour.

    A run of blips between two notes of the same pitch (a vibrato flicker) joins them into one
    note. A run of blips leading into a note (a pitch scoop or glide) moves that note's onset
    back to the run's start when the run begins with an onset; otherwise a run right after a
    note (a fall-off) extends that note.
    """
    if not segs:
        return []
    median_amp = float(np.median([s.amplitude for s in segs]))
    min_amp = opts.min_relative_amplitude * median_amp
    join = opts.blip_join_s

    def is_blip(s: _Segment) -> bool:
        return s.end_s - s.start_s < opts.min_duration_s or s.amplitude < min_amp

    def flush_tail(run: list[_Segment], kept: list[_Segment]) -> None:
        """Give the blips touching the previous note (and not starting afresh) to it."""
        if not kept:
            return
        end = kept[-1].end_s
        for blip in run:
            if blip.start_s - end > join or blip.fresh:
                break
            end = blip.end_s
        kept[-1] = replace(kept[-1], end_s=max(kept[-1].end_s, end))

    kept: list[_Segment] = []
    run: list[_Segment] = []  # consecutive blips since the last kept note
    for s in segs:
        if is_blip(s):
            if run and s.start_s - run[-1].end_s > join:
                flush_tail(run, kept)
                run = []
            run.append(s)
            continue
        if run:
            touches_prev = bool(kept) and run[0].start_s - kept[-1].end_s <= join
            touches_next = s.start_s - run[-1].end_s <= join
            if touches_prev and touches_next and kept[-1].pitch == s.pitch:
                p = kept[-1]
                kept[-1] = replace(p, end_s=s.end_s, amplitude=max(p.amplitude, s.amplitude))
                run = []
                continue
            if touches_next and run[0].fresh:
                s = replace(s, start_s=run[0].start_s, fresh=True)
            else:
                flush_tail(run, kept)
            run = []
        kept.append(s)
    if run:
        flush_tail(run, kept)
    return kept


def _merge_repeats(segs: list[_Segment], opts: CleaningOptions) -> list[_Segment]:
    """Merge same-pitch neighbours that are fragments of one sung note."""
    out: list[_Segment] = []
    for s in segs:
        if out:
            p = out[-1]
            if s.pitch == p.pitch and s.start_s - p.end_s <= opts.merge_gap_s and not s.fresh:
                w = (p.end_s - p.start_s, s.end_s - s.start_s)
                amp = (p.amplitude * w[0] + s.amplitude * w[1]) / max(sum(w), 1e-9)
                out[-1] = replace(p, end_s=max(p.end_s, s.end_s), amplitude=amp)
                continue
        out.append(s)
    return out


def clean_notes(raw: Iterable[RawNote], options: CleaningOptions | None = None) -> list[RawNote]:
    """Turn basic-pitch's raw (possibly polyphonic) notes into one clean sung line.

    Steps: keep the vocal pitch range; keep the dominant note wherever notes overlap; fix
    octave errors; remove blips (very short or quiet notes), handing a scoop's onset to the
    note it leads into; merge fragmented repeats of one sung note.

    Args:
        raw: notes in seconds, any order, may overlap.
        options: thresholds; the defaults suit singing and humming.

    Returns:
        Non-overlapping notes in time order (seconds).
    """
    opts = options or CleaningOptions()
    notes = sorted(
        (n for n in raw if opts.min_pitch <= n.pitch <= opts.max_pitch and n.end_s > n.start_s),
        key=lambda n: (n.start_s, -n.amplitude),
    )
    segs = _dominant_segments(notes, opts.hop_s)
    segs = _merge_repeats(segs, opts)
    segs = _fix_octaves(segs, opts)
    segs = _remove_blips(segs, opts)
    segs = _merge_repeats(segs, opts)
    out: list[RawNote] = []
    for s in segs:  # hop rounding can leave a few ms of overlap: the later onset wins
        if out and out[-1].end_s > s.start_s:
            out[-1] = replace(out[-1], end_s=s.start_s)
        if s.end_s > s.start_s:
            out.append(RawNote(s.start_s, s.end_s, s.pitch, s.amplitude))
    return [n for n in out if n.end_s > n.start_s]


def merge_unarticulated_repeats(
    notes: Sequence[RawNote],
    envelope_db: np.ndarray,
    frame_rate: float,
    min_dip_db: float = 3.0,
    max_gap_s: float = 0.05,
) -> list[RawNote]:
    """Join same-pitch neighbours whose boundary has no dip in level (one held, wavering note).

    A sung repeat of a pitch is re-articulated (a consonant, a breath, a re-attack), so the
    level dips between the two notes; a held note that the model split (vibrato, a swell) does
    not dip.

    Args:
        notes: non-overlapping notes in seconds, in time order.
        envelope_db: level of the recording in dB per frame, frame ``i`` at ``i / frame_rate`` s.
        frame_rate: envelope frames per second.
        min_dip_db: a boundary whose level falls less than this below the quieter side's peak
            (within 0.1 s) is not a new note.
        max_gap_s: only neighbours this close (seconds) are considered.
    """
    out: list[RawNote] = []
    n_frames = len(envelope_db)

    def level(a_s: float, b_s: float, fn: Any) -> float:
        a = min(n_frames - 1, max(0, int(math.floor(a_s * frame_rate))))
        b = min(n_frames, max(a + 1, int(math.ceil(b_s * frame_rate))))
        return float(fn(envelope_db[a:b]))

    for n in notes:
        if out and n_frames:
            p = out[-1]
            if n.pitch == p.pitch and n.start_s - p.end_s <= max_gap_s:
                dip = level(p.end_s - 0.06, n.start_s + 0.02, np.min)
                before = level(max(p.start_s, p.end_s - 0.1), p.end_s, np.max)
                after = level(n.start_s, min(n.end_s, n.start_s + 0.1), np.max)
                if min(before, after) - dip < min_dip_db:
                    out[-1] = replace(p, end_s=n.end_s, amplitude=max(p.amplitude, n.amplitude))
                    continue
        out.append(n)
    return out


def trim_to_envelope(
    notes: Iterable[RawNote], envelope_db: np.ndarray, frame_rate: float, drop_db: float = 20.0
) -> list[RawNote]:
    """Cut each note's release where the recording's level has fallen ``drop_db`` below the
    note's loudest point (the model keeps notes on through reverb tails and short breaths).

    Args:
        notes: notes in seconds.
        envelope_db: level of the recording per frame in dB, frame ``i`` centred at
            ``i / frame_rate`` seconds.
        frame_rate: envelope frames per second.
        drop_db: how far below the note's peak the note counts as ended.

    Returns:
        The notes with releases cut (never shorter than one frame); onsets are untouched.
    """
    out = []
    n_frames = len(envelope_db)
    for n in notes:
        a = max(0, int(math.floor(n.start_s * frame_rate)))
        b = min(n_frames, int(math.ceil(n.end_s * frame_rate)))
        if b - a < 2:
            out.append(n)
            continue
        seg = envelope_db[a:b]
        loud = np.nonzero(seg >= float(np.max(seg)) - drop_db)[0]
        end_s = (a + int(loud[-1]) + 1) / frame_rate
        end_s = min(n.end_s, max(end_s, n.start_s + 1.0 / frame_rate))
        out.append(replace(n, end_s=end_s))
    return out


def notes_to_melody(notes: Iterable[RawNote], tempo_map: TempoMap, offset_s: float = 0.0) -> Melody:
    """Place notes in seconds (from the recording start) on the project timeline in beats.

    Args:
        notes: non-overlapping notes, seconds from the start of the recording.
        tempo_map: the project's tempo map.
        offset_s: where the recording starts in the project, seconds.

    Returns:
        A ``Melody`` with ``source="audio"``; velocity is ``127 * amplitude`` (at least 1).
    """
    out = []
    for n in sorted(notes, key=lambda n: n.start_s):
        a = tempo_map.seconds_to_beat(offset_s + n.start_s)
        b = tempo_map.seconds_to_beat(offset_s + n.end_s)
        if a < 0 or b <= a:
            continue
        vel = int(min(127, max(1, round(127 * n.amplitude))))
        out.append(Note(int(n.pitch), a, b, vel))
    return Melody(tuple(out), source="audio")


def melody_to_raw_notes(melody: Melody, tempo_map: TempoMap, offset_s: float = 0.0) -> list[RawNote]:
    """The inverse of :func:`notes_to_melody`: notes in seconds from ``offset_s``."""
    return [
        RawNote(
            tempo_map.beat_to_seconds(n.start_beat) - offset_s,
            tempo_map.beat_to_seconds(n.end_beat) - offset_s,
            n.pitch,
            n.velocity / 127.0,
        )
        for n in melody.notes
    ]


# ------------------------------------------------------------------------------------------
# Quantisation and key snapping
# ------------------------------------------------------------------------------------------


def _snap_to_grid(beat: float, tempo_map: TempoMap, subdivision: int) -> float:
    """Nearest grid line, with the grid counted from the start of ``beat``'s bar."""
    bar = math.floor(tempo_map.beat_to_bar(beat) + 1e-9)
    bar_start = tempo_map.bar_to_beat(bar)
    step = 1.0 / subdivision
    snapped = bar_start + round((beat - bar_start) / step) * step
    next_bar = tempo_map.bar_to_beat(bar + 1)
    return min(snapped, next_bar)


def quantize_melody(melody: Melody, tempo_map: TempoMap, subdivision: int = 4) -> Melody:
    """Snap note onsets and releases to a grid of ``1/subdivision`` beat.

    The grid restarts at every bar line (so odd metres like 7/8 stay on their bars). A note
    that would collapse to zero length keeps one grid step; a note whose onset lands on the
    previous note's onset is dropped (the earlier, already placed note wins), and releases are
    cut so notes never overlap.

    Args:
        melody: the melody (beats).
        tempo_map: the project's tempo map (for bar lines).
        subdivision: grid lines per beat (quarter note): 1 = quarters, 2 = eighths, 4 = 16ths,
            3 = eighth-note triplets.

    Raises:
        ValueError: ``subdivision`` is not a whole number 1-64.
    """
    if not isinstance(subdivision, int) or not 1 <= subdivision <= 64:
        raise ValueError(
            f"grid subdivision {subdivision!r} must be a whole number of steps per beat 1-64 "
            "(4 = sixteenth notes)"
        )
    step = 1.0 / subdivision
    out: list[Note] = []
    for n in sorted(melody.notes, key=lambda n: n.start_beat):
        a = _snap_to_grid(n.start_beat, tempo_map, subdivision)
        b = _snap_to_grid(n.end_beat, tempo_map, subdivision)
        if b <= a + 1e-9:
            b = a + step
        if out and a <= out[-1].start_beat + 1e-9:
            continue
        if out and out[-1].end_beat > a:
            out[-1] = replace(out[-1], end_beat=a)
        out.append(replace(n, start_beat=a, end_beat=b))
    return Melody(tuple(out), source=melody.source)


def snap_pitch_to_key(pitch: int, key: Key, prefer: int | None = None) -> int:
    """The nearest pitch in ``key``'s scale.

    Args:
        pitch: MIDI pitch.
        key: the key (natural minor scale for minor keys).
        prefer: a pitch to lean toward when two scale notes are equally near (e.g. the
            previous note); without it a tie goes down.
    """
    scale = set(key.scale)
    if pitch % 12 in scale:
        return pitch
    down, up = pitch - 1, pitch + 1
    down_ok, up_ok = down % 12 in scale, up % 12 in scale
    if down_ok and up_ok:
        if prefer is not None and abs(up - prefer) < abs(down - prefer):
            return up if up <= 127 else down
        return down if down >= 0 else up
    if down_ok and down >= 0:
        return down
    return up if up <= 127 else down


def snap_melody_to_key(melody: Melody, key: Key) -> Melody:
    """Move every out-of-scale note to the nearest scale note (ties lean to the previous note)."""
    out: list[Note] = []
    for n in melody.notes:
        prefer = out[-1].pitch if out else None
        out.append(replace(n, pitch=snap_pitch_to_key(n.pitch, key, prefer)))
    return Melody(tuple(out), source=melody.source)


# ------------------------------------------------------------------------------------------
# From MIDI, to chroma, to JSON
# ------------------------------------------------------------------------------------------


def melody_from_notes(notes: Iterable[Note], source: str = "midi") -> Melody:
    """A monophonic melody from (possibly polyphonic) MIDI notes: the highest-note skyline.

    A note is kept when it is the highest note at its onset; it is cut where a higher note
    starts. Notes under a held higher note are dropped.

    Args:
        notes: notes in beats, any order.
        source: provenance recorded in the melody ("midi" by default).
    """
    ordered = sorted(notes, key=lambda n: (n.start_beat, -n.pitch))
    out: list[Note] = []
    eps = 1e-9
    for n in ordered:
        if out:
            last = out[-1]
            if abs(n.start_beat - last.start_beat) <= eps:
                continue  # a lower note of the same chord
            if n.start_beat < last.end_beat - eps:
                if n.pitch <= last.pitch:
                    continue  # under the held higher note
                out[-1] = replace(last, end_beat=n.start_beat)
        out.append(n)
    return Melody(tuple(out), source=source)


def melody_chroma(
    melody: Melody,
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    frame_rate: float,
    min_coverage: float = 0.5,
) -> np.ndarray:
    """One-hot pitch class of the dominant melody note per frame.

    Frames tile ``[start_beat, end_beat)`` in *seconds*: frame ``i`` covers
    ``[t0 + i / frame_rate, t0 + (i + 1) / frame_rate)`` with ``t0`` the time of
    ``start_beat``; there are ``round(duration_s * frame_rate)`` frames. A frame's pitch class
    is the one sounding longest in it; frames where notes cover less than ``min_coverage`` of
    the frame are all zero.

    Args:
        melody: the melody (beats).
        tempo_map: converts beats to seconds (tempo changes are honoured).
        start_beat: first beat (inclusive).
        end_beat: last beat (exclusive).
        frame_rate: frames per second (e.g. 32000 / 4096 = 7.8125 for MusicGen-melody's chroma).
        min_coverage: fraction 0-1 of a frame a pitch class must cover to count.

    Returns:
        float32 array shaped ``(frames, 12)``, column 0 = C.

    Raises:
        ValueError: the span runs backwards or ``frame_rate`` is not positive.
    """
    if not frame_rate > 0 or not math.isfinite(frame_rate):
        raise ValueError(f"chroma frame rate {frame_rate!r} must be a positive number of Hz")
    if end_beat <= start_beat:
        raise ValueError(f"chroma span beat {start_beat:g} to {end_beat:g} runs backwards")
    t0 = tempo_map.beat_to_seconds(start_beat)
    t1 = tempo_map.beat_to_seconds(end_beat)
    n_frames = int(round((t1 - t0) * frame_rate))
    cover = np.zeros((n_frames, 12), dtype=np.float64)
    frame_len = 1.0 / frame_rate
    for n in melody.notes:
        a = tempo_map.beat_to_seconds(n.start_beat) - t0
        b = tempo_map.beat_to_seconds(n.end_beat) - t0
        if b <= 0 or a >= n_frames * frame_len:
            continue
        f0 = max(0, int(math.floor(a * frame_rate)))
        f1 = min(n_frames, int(math.ceil(b * frame_rate)))
        edges = np.arange(f0, f1 + 1) * frame_len
        overlap = np.minimum(edges[1:], b) - np.maximum(edges[:-1], a)
        cover[f0:f1, n.pitch % 12] += np.clip(overlap, 0.0, None)
    out = np.zeros((n_frames, 12), dtype=np.float32)
    if n_frames == 0:
        return out
    best = np.argmax(cover, axis=1)
    voiced = cover[np.arange(n_frames), best] >= min_coverage * frame_len - 1e-12
    out[np.nonzero(voiced)[0], best[voiced]] = 1.0
    return out

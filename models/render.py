"""Render note parts to audio with FluidSynth and a General MIDI SoundFont.

A part (notes in beats plus a General MIDI program, or a drum kit on MIDI channel 10) is rendered
event by event into one preallocated buffer: audio is pulled from the synth up to each event's
sample position (from :meth:`TempoMap.beat_to_samples`, relative to the span start), then the
event is applied. The result is exactly the span's length; ringing tails are cut with a short
fade. Each render uses a fresh synth borrowing one loaded SoundFont (loading costs tens of
milliseconds; a synth, about five), so renders are bit-identical whatever ran before. Reverb and
chorus are off; rendering a minute of a part takes about 0.2 s.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conditioning.io.quiet_import import import_quietly
from conditioning.timeline import TempoMap
from conditioning.types import Audio, Note

logger = logging.getLogger(__name__)

#: MIDI channel (0-based) of General MIDI drums: channel 10.
DRUM_CHANNEL = 9
_MELODIC_CHANNEL = 0
#: Channel that plays the notes a SoundFont leaves silent for a part's program (see SOUNDFONT_GAPS).
_STAND_IN_CHANNEL = 1
#: Pitches the default SoundFont (TimGM6mb) has no sample for, by General MIDI program, with the
#: program of the same family that plays them instead. Found by rendering every pitch of every
#: lead program; ``tests/models/test_render.py`` checks the table against the SoundFont.
SOUNDFONT_GAPS: dict[int, tuple[frozenset[int], int]] = {
    65: (frozenset({64}), 66),  # alto sax has no E4: the tenor sax plays it
}
#: Bank holding General MIDI drum kits in a GM SoundFont.
DRUM_BANK = 128
#: Seconds a drum hit rings before its note-off, by General MIDI drum pitch (others: 0.4 s).
DRUM_RING_S: dict[int, float] = {
    49: 2.0, 52: 2.0, 55: 1.5, 57: 2.0,  # crash, china, splash
    51: 1.0, 53: 1.0, 59: 1.0,  # ride, ride bell
    46: 0.6,  # open hi-hat
}
#: Release-time offset (timecents) on the drum channel: cymbals fade fast after their ring
#: instead of sounding for seconds (which also keeps the voice count, and render time, low).
DRUM_RELEASE_TIMECENTS = -3000.0
_HATS = (42, 44, 46)
#: Peak level no rendered stem exceeds.
PEAK_CEILING = 0.99
#: Peak a stem with notes is raised to at least, so it is never inaudibly quiet.
PEAK_FLOOR = 0.1  # a stem with notes peaks at least here (-20 dBFS); louder stems keep their level


def default_soundfont() -> Path:
    """The General MIDI SoundFont that ships with pretty_midi (TimGM6mb.sf2).

    Raises:
        FileNotFoundError: pretty_midi is installed without its SoundFont.
    """
    pretty_midi = import_quietly("pretty_midi")
    path = Path(str(pretty_midi.__file__)).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(
            f"the General MIDI SoundFont {path} is missing; reinstall pretty_midi "
            "or pass the path of a .sf2 file"
        )
    return path


@dataclass(frozen=True)
class Part:
    """One instrument's notes to render.

    Attributes:
        notes: notes in beats from the project start (only onsets inside the span sound).
        program: General MIDI program 0-127, or the drum-kit preset (0 standard, 25 TR-808,
            32 jazz, 40 brush) when ``drums`` is True.
        drums: play on the General MIDI drum channel (10).
    """

    notes: tuple[Note, ...]
    program: int
    drums: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.program <= 127:
            raise ValueError(f"General MIDI program {self.program} is outside 0-127")


_FLUID_BLOCK = 64  # FluidSynth's internal rendering block, in frames
_GEN_VOLENV_RELEASE = 38  # SoundFont generator number of the volume-envelope release

_WriteFloat = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_int,
)


def _prototypes() -> dict[str, Any]:
    """ctypes prototypes of the FluidSynth calls pyfluidsynth does not wrap."""
    lib = import_quietly("fluidsynth")._fl
    vp, ci, cf = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
    return {
        "write_float": _WriteFloat(("fluid_synth_write_float", lib)),
        "add_sfont": ctypes.CFUNCTYPE(ci, vp, vp)(("fluid_synth_add_sfont", lib)),
        "remove_sfont": ctypes.CFUNCTYPE(ci, vp, vp)(("fluid_synth_remove_sfont", lib)),
        "get_sfont_by_id": ctypes.CFUNCTYPE(vp, vp, ci)(("fluid_synth_get_sfont_by_id", lib)),
        "set_gen": ctypes.CFUNCTYPE(ci, vp, ci, ci, cf)(("fluid_synth_set_gen", lib)),
        "set_interp_method": ctypes.CFUNCTYPE(ci, vp, ci, ci)(("fluid_synth_set_interp_method", lib)),
    }


_LogFunction = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_FLUID_ERR, _FLUID_WARN = 1, 2
_log_hook: list[Any] = []  # keeps the ctypes callback alive


def _route_fluid_warnings() -> None:
    """Send FluidSynth's errors and warnings to :mod:`logging` instead of stderr.

    Handing the shared SoundFont back makes FluidSynth warn that each channel lost its preset;
    those are expected and dropped, every other warning is logged.
    """
    if _log_hook:
        return
    fluidsynth = import_quietly("fluidsynth")

    def hook(level: int, message: bytes | None, data: int | None) -> None:
        text = (message or b"").decode("utf-8", "replace")
        if not text.startswith("No preset found on channel"):
            logger.warning("fluidsynth: %s", text)

    callback = _LogFunction(hook)
    setter = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int, _LogFunction, ctypes.c_void_p)(
        ("fluid_set_log_function", fluidsynth._fl)
    )
    for level in (_FLUID_ERR, _FLUID_WARN):
        setter(level, callback, None)
    _log_hook.append(callback)


class _SoundFontHost:
    """A silent synth that owns the loaded SoundFont, lent to the per-render synths.

    Loading a SoundFont takes tens of milliseconds; a new synth takes about five. Every render
    gets a fresh synth (so nothing left over from an earlier render changes its sound) that
    borrows the one loaded SoundFont.
    """

    def __init__(self, soundfont: Path) -> None:
        fluidsynth = import_quietly("fluidsynth")

        self.api = _prototypes()
        _route_fluid_warnings()
        self.synth: Any = fluidsynth.Synth(samplerate=48000.0, channels=16)
        sfid = self.synth.sfload(str(soundfont))
        if sfid < 0:
            raise ValueError(f"FluidSynth could not load the SoundFont {soundfont}; is it a valid .sf2 file?")
        self.sfont = self.api["get_sfont_by_id"](self.synth.synth, sfid)

    def delete(self) -> None:
        self.synth.delete()


class _Voice:
    """A fresh FluidSynth instance borrowing the host's SoundFont, for one render."""

    def __init__(self, host: _SoundFontHost, sample_rate: int, gain: float) -> None:
        fluidsynth = import_quietly("fluidsynth")

        self.host = host
        self.api = host.api
        self.synth: Any = fluidsynth.Synth(
            gain=gain,
            samplerate=float(sample_rate),
            channels=16,
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 256},
        )
        self.sfid = int(self.api["add_sfont"](self.synth.synth, host.sfont))
        if self.sfid < 0:
            self.synth.delete()
            raise RuntimeError("FluidSynth refused to share the loaded SoundFont with a new synth")
        self.api["set_gen"](self.synth.synth, DRUM_CHANNEL, _GEN_VOLENV_RELEASE, DRUM_RELEASE_TIMECENTS)
        # linear interpolation: ~30% faster than the default, inaudible on GM samples
        self.api["set_interp_method"](self.synth.synth, -1, 1)

    def write(self, out: np.ndarray) -> None:
        """Fill ``out`` (float32, shape (frames, 2), C-contiguous) with the next frames."""
        frames = out.shape[0]
        if frames == 0:
            return
        address = out.ctypes.data
        self.api["write_float"](self.synth.synth, frames, address, 0, 2, address, 1, 2)

    def close(self) -> None:
        """Stop every voice, hand the SoundFont back and free the synth."""
        for chan in range(16):
            self.synth.all_sounds_off(chan)
        self.write(np.zeros((_FLUID_BLOCK, 2), dtype=np.float32))
        self.api["remove_sfont"](self.synth.synth, self.host.sfont)
        self.synth.delete()


class FluidRenderer:
    """Renders :class:`Part` values with FluidSynth; thread-safe; the SoundFont is loaded once.

    Args:
        soundfont: a .sf2 file; None uses :func:`default_soundfont`.
        gain: FluidSynth master gain (0.2 is FluidSynth's default; 1.6 puts GM parts around -18 to -3 dBFS peak; stems are levelled after).
        fade_s: length in seconds of the fade that cuts ringing tails at the span end.
    """

    def __init__(self, soundfont: str | Path | None = None, *, gain: float = 1.6, fade_s: float = 0.005) -> None:
        path = default_soundfont() if soundfont is None else Path(soundfont).expanduser()
        if not path.is_file():
            raise ValueError(f"SoundFont {path} does not exist; give the path of a .sf2 file")
        self.soundfont = path
        self.gain = gain
        self.fade_s = fade_s
        self._host: _SoundFontHost | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _voice(self, sample_rate: int) -> Iterator[_Voice]:
        with self._lock:
            if self._host is None:
                self._host = _SoundFontHost(self.soundfont)
            host = self._host
        voice = _Voice(host, sample_rate, self.gain)
        try:
            yield voice
        finally:
            voice.close()

    def _gaps(self, part: Part) -> tuple[frozenset[int], int]:
        """Pitches of ``part`` the SoundFont leaves silent, and the program that plays them."""
        if part.drums or part.program not in SOUNDFONT_GAPS or self.soundfont != default_soundfont():
            return frozenset(), part.program
        return SOUNDFONT_GAPS[part.program]

    def close(self) -> None:
        """Unload the SoundFont (it is loaded again on the next render)."""
        with self._lock:
            if self._host is not None:
                self._host.delete()
                self._host = None

    def render(self, part: Part, tempo_map: TempoMap, start_beat: float, end_beat: float, sample_rate: int) -> Audio:
        """Render ``part`` over ``[start_beat, end_beat)``.

        Args:
            part: the notes and program.
            tempo_map: the project's tempo map (places notes in samples).
            start_beat: span start in beats; sample 0 of the result.
            end_beat: span end in beats.
            sample_rate: output rate in Hz.

        Returns:
            Stereo float32 audio of exactly ``tempo_map.span_samples(start_beat, end_beat,
            sample_rate)`` samples, peak <= 0.99, levelled up when very quiet.
        """
        if end_beat <= start_beat:
            raise ValueError(f"render span {start_beat:g}-{end_beat:g} beats is empty")
        origin = tempo_map.beat_to_samples(start_beat, sample_rate)
        total = tempo_map.beat_to_samples(end_beat, sample_rate) - origin
        notes = _drum_rings(part.notes, tempo_map) if part.drums else part.notes
        chan = DRUM_CHANNEL if part.drums else _MELODIC_CHANNEL
        gaps, stand_in = self._gaps(part)
        events = [(*e, chan) for e in _events(
            [n for n in notes if n.pitch not in gaps], tempo_map, start_beat, end_beat, sample_rate, origin, total)]
        if gaps:
            events += [(*e, _STAND_IN_CHANNEL) for e in _events(
                [n for n in notes if n.pitch in gaps], tempo_map, start_beat, end_beat, sample_rate, origin, total)]
            events.sort(key=lambda e: (e[0], e[1]))
        buf = np.zeros((total, 2), dtype=np.float32)
        with self._voice(sample_rate) as voice:
            synth = voice.synth
            if part.drums:
                kit = part.program
                if synth.sfpreset_name(voice.sfid, DRUM_BANK, kit) is None:
                    logger.info("drum kit %d is not in %s; using the standard kit", kit, self.soundfont.name)
                    kit = 0
                synth.program_select(chan, voice.sfid, DRUM_BANK, kit)
            else:
                synth.program_select(chan, voice.sfid, 0, part.program)
                if gaps:
                    synth.program_select(_STAND_IN_CHANNEL, voice.sfid, 0, stand_in)
            cursor = 0
            for pos, on, pitch, vel, ch in events:
                if pos > cursor:
                    voice.write(buf[cursor:pos])
                    cursor = pos
                if on:
                    synth.noteon(ch, pitch, vel)
                else:
                    synth.noteoff(ch, pitch)
            voice.write(buf[cursor:total])
        samples = np.ascontiguousarray(buf.T)
        fade = min(total, int(self.fade_s * sample_rate))
        if fade > 0:
            samples[:, total - fade :] *= np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float32))
        return Audio(level(samples, has_notes=bool(events)), sample_rate)

    def render_many(
        self,
        parts: Mapping[str, Part],
        tempo_map: TempoMap,
        start_beat: float,
        end_beat: float,
        sample_rate: int,
        *,
        workers: int | None = None,
        on_done: Callable[[str], None] | None = None,
    ) -> dict[str, Audio]:
        """Render several parts over one span, in parallel threads (FluidSynth runs without the GIL).

        Args:
            parts: stem name -> part.
            tempo_map: the project's tempo map.
            start_beat: span start in beats.
            end_beat: span end in beats.
            sample_rate: output rate in Hz.
            workers: threads to use; default one per CPU core, at most one per part.
            on_done: called with the stem name, on the calling thread, as each part finishes
                (report progress or raise to stop: parts still rendering are finished first).

        Returns:
            Stem name -> audio, in the order of ``parts``.
        """
        names = list(parts)
        count = max(1, min(len(names), workers or os.cpu_count() or 1))
        done: dict[str, Audio] = {}
        if count == 1:
            for n in names:
                done[n] = self.render(parts[n], tempo_map, start_beat, end_beat, sample_rate)
                if on_done is not None:
                    on_done(n)
            return done
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = {pool.submit(self.render, parts[n], tempo_map, start_beat, end_beat, sample_rate): n for n in names}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                if on_done is not None:
                    on_done(futures[future])
        return {n: done[n] for n in names}


def _drum_rings(notes: Sequence[Note], tempo_map: TempoMap) -> list[Note]:
    """Drum notes with natural lengths: each hit rings for :data:`DRUM_RING_S` seconds (whatever
    length the MIDI note had), and a hi-hat hit chokes the open hi-hat before it."""
    out: list[Note] = []
    hat_on: list[int] = []
    for n in sorted(notes, key=lambda n: (n.start_beat, n.pitch)):
        t0 = tempo_map.beat_to_seconds(n.start_beat)
        end = tempo_map.seconds_to_beat(t0 + DRUM_RING_S.get(n.pitch, 0.4))
        if n.pitch in _HATS:
            for i in hat_on:
                prev = out[i]
                if prev.start_beat < n.start_beat < prev.end_beat:
                    out[i] = Note(prev.pitch, prev.start_beat, n.start_beat, prev.velocity)
            hat_on = [i for i in hat_on if out[i].end_beat > n.start_beat]
            hat_on.append(len(out))
        out.append(Note(n.pitch, n.start_beat, max(end, n.start_beat + 1e-3), n.velocity))
    return out


def _events(
    notes: Sequence[Note],
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    sample_rate: int,
    origin: int,
    total: int,
) -> list[tuple[int, bool, int, int]]:
    """(sample, is_note_on, pitch, velocity) events sorted by time, note-offs first at a sample.

    Notes of one pitch that overlap are cut where the next one starts, so a late note-off never
    silences the newer note.
    """
    inside = sorted(
        (n for n in notes if start_beat - 1e-9 <= n.start_beat < end_beat - 1e-9 and n.velocity > 0),
        key=lambda n: (n.start_beat, n.pitch),
    )
    events: list[tuple[int, bool, int, int]] = []
    pending_off: dict[int, int] = {}
    for n in inside:
        on = min(max(tempo_map.beat_to_samples(n.start_beat, sample_rate) - origin, 0), total - 1)
        off = tempo_map.beat_to_samples(n.end_beat, sample_rate) - origin
        if n.pitch in pending_off and pending_off[n.pitch] > on:
            pending_off[n.pitch] = on  # cut the earlier note of this pitch
            for i in range(len(events) - 1, -1, -1):
                if events[i][2] == n.pitch and not events[i][1]:
                    events[i] = (on, False, n.pitch, 0)
                    break
        events.append((on, True, n.pitch, n.velocity))
        if off < total:
            events.append((max(off, on + 1), False, n.pitch, 0))
            pending_off[n.pitch] = max(off, on + 1)
        else:
            pending_off[n.pitch] = total
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def level(samples: np.ndarray, *, has_notes: bool) -> np.ndarray:
    """Gently level one stem: scale down to peak 0.99 if it would clip; raise a stem with notes
    whose peak is below 0.1 up to 0.1. Otherwise leave it alone (section dynamics survive).

    Args:
        samples: float32 (channels, samples).
        has_notes: whether any note was played (silence stays silence).
    """
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > PEAK_CEILING:
        samples = samples * np.float32(PEAK_CEILING / peak)
    elif has_notes and 0.0 < peak < PEAK_FLOOR:
        samples = samples * np.float32(PEAK_FLOOR / peak)
    return samples.astype(np.float32, copy=False)


_SHARED: dict[str, FluidRenderer] = {}
_SHARED_LOCK = threading.Lock()


def shared_renderer(soundfont: str | Path | None = None) -> FluidRenderer:
    """A process-wide :class:`FluidRenderer` per SoundFont, so synth pools are reused across calls."""
    key = str(default_soundfont() if soundfont is None else Path(soundfont).expanduser())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = FluidRenderer(key)
        return _SHARED[key]


def render_part(
    notes: Sequence[Note],
    program: int,
    tempo_map: TempoMap,
    start_beat: float,
    end_beat: float,
    sample_rate: int,
    *,
    drums: bool = False,
    soundfont: str | Path | None = None,
) -> Audio:
    """Render one part over ``[start_beat, end_beat)`` (see :meth:`FluidRenderer.render`).

    Args:
        notes: notes in beats from the project start.
        program: General MIDI program, or drum-kit preset when ``drums``.
        tempo_map: the project's tempo map.
        start_beat: span start in beats.
        end_beat: span end in beats.
        sample_rate: output rate in Hz.
        drums: render on the General MIDI drum channel.
        soundfont: a .sf2 file; None uses the one shipped with pretty_midi.
    """
    part = Part(tuple(notes), program, drums=drums)
    return shared_renderer(soundfont).render(part, tempo_map, start_beat, end_beat, sample_rate)

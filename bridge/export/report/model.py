"""What a session report shows, as plain values (no files, no requests): built by the job layer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio, ChordProgression, DrumPattern, Melody

log = logging.getLogger(__name__)

#: Hum pitch-track range in Hz (a low male hum to a high whistle).
PITCH_FMIN_HZ = 65.0
PITCH_FMAX_HZ = 1000.0
#: Frames quieter than this many dB below the loudest frame count as unvoiced.
VOICING_FLOOR_DB = 35.0
_PITCH_RATE = 16000
_PITCH_FRAME = 1024
_PITCH_HOP = 160  # 10 ms at 16 kHz


@dataclass(frozen=True)
class PitchTrack:
    """The hum's fundamental frequency over time.

    Attributes:
        times_s: frame centres in project seconds, shape ``(frames,)``.
        midi: pitch of each frame as a (fractional) MIDI note number, NaN where unvoiced.
    """

    times_s: np.ndarray
    midi: np.ndarray


@dataclass(frozen=True)
class StemView:
    """One placed stem file.

    Attributes:
        stem: stem name ("drums").
        section: the section it covers.
        take: take number.
        file: the WAV's path relative to the report page (a link).
        audio: its samples (drawn as waveform and spectrogram).
    """

    stem: str
    section: Section
    take: int
    file: str
    audio: Audio


@dataclass(frozen=True)
class ReportData:
    """Everything one session report shows.

    Attributes:
        title: page title (the project's name).
        job_id: the job.
        tempo_map: the project's tempo map.
        sections: every section of the song, in order.
        model: generator name; ``seed`` its seed.
        key: the song key's name ("A minor") or None.
        chords / drums / melody: the understood material, or None where not given.
        hum: the hum's pitch track, or None.
        stems: the placed stem files.
        links: (label, path relative to the page) for every other file worth opening.
        notes: short lines for the page (e.g. what could not be shown and why).
    """

    title: str
    job_id: str
    tempo_map: TempoMap
    sections: Sequence[Section]
    model: str = ""
    seed: int | None = None
    key: str | None = None
    chords: ChordProgression | None = None
    drums: DrumPattern | None = None
    melody: Melody | None = None
    hum: PitchTrack | None = None
    stems: Sequence[StemView] = ()
    links: Sequence[tuple[str, str]] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def pitch_track(audio: Audio, offset_s: float = 0.0) -> PitchTrack:
    """Estimate the hum's pitch every 10 ms with YIN (librosa), silent frames unvoiced.

    Args:
        audio: the hum as recorded (any rate; it is resampled to 16 kHz mono here).
        offset_s: project time in seconds at which the recording's first sample plays.

    Returns:
        Frame times in project seconds and MIDI pitches (NaN where quiet).

    Raises:
        ImportError: librosa (the ``melody`` extra) is not installed.
    """
    import librosa

    from conditioning.io.audio import resample

    mono = resample(Audio(audio.mono()[None, :], audio.sample_rate), _PITCH_RATE).samples[0]
    if mono.size < _PITCH_FRAME:
        return PitchTrack(np.zeros(0), np.zeros(0))
    f0 = librosa.yin(mono, fmin=PITCH_FMIN_HZ, fmax=PITCH_FMAX_HZ, sr=_PITCH_RATE,
                     frame_length=_PITCH_FRAME, hop_length=_PITCH_HOP, center=True)
    rms = librosa.feature.rms(y=mono, frame_length=_PITCH_FRAME, hop_length=_PITCH_HOP, center=True)[0]
    n = min(f0.size, rms.size)
    f0, rms = f0[:n], rms[:n]
    level_db = 20 * np.log10(np.maximum(rms, 1e-9) / max(float(rms.max()), 1e-9))
    midi = librosa.hz_to_midi(f0).astype(np.float64)
    midi[level_db < -VOICING_FLOOR_DB] = np.nan
    times = offset_s + np.arange(n) * _PITCH_HOP / _PITCH_RATE
    return PitchTrack(times, midi)

"""Melody transcription of a hummed or sung recording with Spotify's basic-pitch (ONNX).

The ONNX model ships inside the installed ``basic_pitch`` package
(``basic_pitch.ICASSP_2022_MODEL_PATH``); it is run with onnxruntime (TensorFlow is not
needed). The session is created on first use and cached for the process. basic-pitch's own
windowing and note-creation functions turn the model's posteriorgrams into raw notes; the
cleaning into one monophonic line is :func:`conditioning.melody.clean_notes`.

The first transcription in a process pays for importing librosa/basic-pitch and loading the
model (several seconds); call :func:`warm_up` early (e.g. when the bridge starts a job) to
move that cost off the critical path.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from conditioning.io.audio import resample
from conditioning.melody import (
    CleaningOptions,
    RawNote,
    clean_notes,
    merge_unarticulated_repeats,
    notes_to_melody,
    trim_to_envelope,
)
from conditioning.timeline import TempoMap
from conditioning.types import Audio, Melody

log = logging.getLogger(__name__)

#: basic-pitch's input rate, Hz (``basic_pitch.constants.AUDIO_SAMPLE_RATE``).
MODEL_SAMPLE_RATE = 22050
#: Windows of the model's input overlap by this many output frames (as basic-pitch does).
_OVERLAP_FRAMES = 30
#: Windows sent to onnxruntime per call (bounds memory on long recordings).
_BATCH_WINDOWS = 8

_lock = threading.Lock()
_session: Any = None
_modules: dict[str, ModuleType] = {}


@dataclass(frozen=True)
class TranscriptionOptions:
    """basic-pitch note-creation settings.

    Attributes:
        onset_threshold: minimum onset activation (0-1) that starts a note.
        frame_threshold: minimum frame activation (0-1) that keeps a note sounding.
        min_note_s: shortest note basic-pitch may produce, seconds.
        min_hz: lowest fundamental considered, Hz (default ~C2).
        max_hz: highest fundamental considered, Hz (default ~C7).
        melodia_trick: also trace notes without a detected onset (basic-pitch's melodia step).
        infer_onsets: add onsets where frame activations jump.
        normalize_peak: scale the recording so its peak is this (0-1) before transcription;
            None leaves the level alone.
        release_drop_db: when set, cut each cleaned note where the recording's level falls
            this many dB below the note's peak (tighter releases, fewer voiced frames in
            gaps, at the cost of some late-release frames); None keeps basic-pitch's releases.
    """

    onset_threshold: float = 0.6
    frame_threshold: float = 0.3
    min_note_s: float = 0.05
    min_hz: float = 63.0
    max_hz: float = 2100.0
    melodia_trick: bool = True
    infer_onsets: bool = True
    normalize_peak: float | None = 0.9
    release_drop_db: float | None = None


@dataclass(frozen=True)
class ModelOutput:
    """basic-pitch posteriorgrams for one recording.

    Attributes:
        note: frame activations shaped ``(frames, 88)`` (piano keys A0..C8), ~86 frames/s.
        onset: onset activations shaped ``(frames, 88)``.
        contour: pitch contour shaped ``(frames, 264)`` (3 bins per semitone).
    """

    note: np.ndarray
    onset: np.ndarray
    contour: np.ndarray


#: Frames per second of :func:`level_envelope_db`.
ENVELOPE_RATE = 100.0


def level_envelope_db(audio: Audio) -> np.ndarray:
    """RMS level of the (mono-mixed) recording in dB, 100 frames/s, frame ``i`` centred at
    ``i / 100`` s (20 ms windows)."""
    x = audio.mono().astype(np.float64)
    hop = max(1, int(round(audio.sample_rate / ENVELOPE_RATE)))
    padded = np.pad(x, (hop, hop))
    n = x.size // hop + 1
    power = np.array([np.mean(padded[i * hop : i * hop + 2 * hop] ** 2) for i in range(n)])
    return np.asarray(10.0 * np.log10(power + 1e-12))


def _import_basic_pitch() -> dict[str, ModuleType]:
    """Import basic-pitch's modules once, without its "X is not installed" warnings."""
    if _modules:
        return _modules
    root = logging.getLogger()

    class _DropInstallHints(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "reinstall basic-pitch" not in record.getMessage()

    hint_filter = _DropInstallHints()
    guard = logging.NullHandler()
    root.addFilter(hint_filter)
    root.addHandler(guard)  # stops logging.warning() from calling basicConfig() on our behalf
    try:
        import basic_pitch
        from basic_pitch import inference, note_creation
    except ImportError as exc:
        raise ModuleNotFoundError(
            "melody transcription needs basic-pitch and onnxruntime; install them with "
            "`pip install onnxruntime librosa resampy scikit-learn mir_eval` and "
            "`pip install --no-deps basic-pitch`"
        ) from exc
    finally:
        root.removeHandler(guard)
        root.removeFilter(hint_filter)
    _modules.update(basic_pitch=basic_pitch, inference=inference, note_creation=note_creation)
    return _modules


def model_path() -> Path:
    """Path of the ONNX model inside the installed basic-pitch package."""
    bp = _import_basic_pitch()["basic_pitch"]
    return Path(str(bp.ICASSP_2022_MODEL_PATH)).with_name("nmp.onnx")


def _get_session() -> Any:
    global _session
    with _lock:
        if _session is None:
            import onnxruntime as ort

            path = model_path()
            if not path.is_file():
                raise FileNotFoundError(
                    f"basic-pitch's ONNX model is missing at {path}; reinstall it with "
                    "`pip install --no-deps --force-reinstall basic-pitch`"
                )
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            _session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            log.info("loaded basic-pitch model %s", path)
        return _session


def warm_up() -> None:
    """Import basic-pitch, load the model and run it once on a short silence."""
    transcribe_raw(Audio(np.zeros((1, MODEL_SAMPLE_RATE), dtype=np.float32), MODEL_SAMPLE_RATE))


def run_model(audio: Audio, normalize_peak: float | None = 0.9) -> ModelOutput:
    """Run basic-pitch's network on a recording.

    Args:
        audio: any rate and channel count (mixed to mono, resampled to 22.05 kHz).
        normalize_peak: peak level (0-1) the recording is scaled to first; None keeps it.

    Returns:
        The posteriorgrams, one frame per 256 samples at 22.05 kHz.
    """
    mods = _import_basic_pitch()
    from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP

    mono = Audio(audio.mono()[None, :], audio.sample_rate)
    x = resample(mono, MODEL_SAMPLE_RATE).samples[0]
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if normalize_peak is not None and peak > 1e-4:
        x = x * (normalize_peak / peak)
    overlap_len = _OVERLAP_FRAMES * FFT_HOP
    hop = AUDIO_N_SAMPLES - overlap_len
    padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), x.astype(np.float32)])
    windows = [w for w, _ in mods["inference"].window_audio_file(padded, hop)]
    session = _get_session()
    names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
    parts: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
    for i in range(0, len(windows), _BATCH_WINDOWS):
        batch = np.stack(windows[i : i + _BATCH_WINDOWS]).astype(np.float32)
        outs = session.run(names, {"serving_default_input_2:0": batch})
        for key, value in zip(("note", "onset", "contour"), outs, strict=True):
            parts[key].append(value)
    unwrap = mods["inference"].unwrap_output
    result = {k: unwrap(np.concatenate(v), len(x), _OVERLAP_FRAMES) for k, v in parts.items()}
    return ModelOutput(result["note"], result["onset"], result["contour"])


def notes_from_output(output: ModelOutput, options: TranscriptionOptions | None = None) -> list[RawNote]:
    """basic-pitch's note creation on posteriorgrams (polyphonic, uncleaned).

    Returns:
        Notes in seconds from the start of the recording, sorted by onset.
    """
    opts = options or TranscriptionOptions()
    nc = _import_basic_pitch()["note_creation"]
    from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP

    n_frames = output.note.shape[0]
    if n_frames < 2:
        return []
    min_len = int(round(opts.min_note_s * AUDIO_SAMPLE_RATE / FFT_HOP))
    events = nc.output_to_notes_polyphonic(
        output.note.copy(),
        output.onset.copy(),
        onset_thresh=opts.onset_threshold,
        frame_thresh=opts.frame_threshold,
        min_note_len=min_len,
        infer_onsets=opts.infer_onsets,
        max_freq=opts.max_hz,
        min_freq=opts.min_hz,
        melodia_trick=opts.melodia_trick,
    )
    times = nc.model_frames_to_time(n_frames)
    notes = [
        RawNote(float(times[a]), float(times[b]), int(p), float(amp))
        for a, b, p, amp in events
        if times[b] > times[a]
    ]
    return sorted(notes, key=lambda n: (n.start_s, n.pitch))


def transcribe_raw(audio: Audio, options: TranscriptionOptions | None = None) -> list[RawNote]:
    """basic-pitch's raw notes for a recording (seconds from its start; may overlap).

    Args:
        audio: the recording (any rate/channels).
        options: note-creation settings.

    Raises:
        ValueError: the recording is empty.
    """
    if audio.num_samples == 0:
        raise ValueError("the melody recording holds no samples; record or export it again")
    opts = options or TranscriptionOptions()
    return notes_from_output(run_model(audio, opts.normalize_peak), opts)


def clean_transcription(
    raw: list[RawNote],
    audio: Audio,
    options: TranscriptionOptions | None = None,
    cleaning: CleaningOptions | None = None,
) -> list[RawNote]:
    """Raw notes -> one clean line: :func:`~conditioning.melody.clean_notes`, then the
    recording's level decides whether touching same-pitch notes are one held note, and
    (optionally) where releases end.

    Returns:
        Non-overlapping notes in seconds from the start of the recording.
    """
    opts = options or TranscriptionOptions()
    clean = clean_notes(raw, cleaning)
    envelope = level_envelope_db(audio)
    clean = merge_unarticulated_repeats(clean, envelope, ENVELOPE_RATE)
    if opts.release_drop_db is not None:
        clean = trim_to_envelope(clean, envelope, ENVELOPE_RATE, opts.release_drop_db)
    return clean


def transcribe_melody(
    audio: Audio,
    tempo_map: TempoMap,
    offset_s: float = 0.0,
    *,
    options: TranscriptionOptions | None = None,
    cleaning: CleaningOptions | None = None,
) -> Melody:
    """Transcribe a hummed/sung recording into a clean monophonic melody in beats.

    Args:
        audio: the recording (any rate/channels).
        tempo_map: the project's tempo map.
        offset_s: where the recording starts in the project, seconds.
        options: basic-pitch note-creation settings.
        cleaning: settings of the monophonic clean-up (:func:`~conditioning.melody.clean_notes`).

    Returns:
        ``Melody(notes, source="audio")``; notes before the project start are dropped.

    Raises:
        ValueError: the recording is empty.
    """
    opts = options or TranscriptionOptions()
    raw = transcribe_raw(audio, opts)
    clean = clean_transcription(raw, audio, opts, cleaning)
    log.info("melody: %d raw notes -> %d clean notes", len(raw), len(clean))
    return notes_to_melody(clean, tempo_map, offset_s)

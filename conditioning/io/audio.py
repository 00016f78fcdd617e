"""Reading, writing and resampling audio files.

Audio is always an :class:`~conditioning.types.Audio`: float32 samples shaped
``(channels, samples)`` plus the sample rate in Hz. Files are read with soundfile (WAV, FLAC,
AIFF, OGG, ...); files are written as WAV, atomically, and never overwrite an existing file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from conditioning.types import Audio

log = logging.getLogger(__name__)

#: WAV sample formats accepted by :func:`write_wav`.
WAV_SUBTYPES: tuple[str, ...] = ("PCM_16", "PCM_24", "PCM_32", "FLOAT")


def read_audio(path: str | os.PathLike[str]) -> Audio:
    """Read an audio file into float32 samples shaped ``(channels, samples)``.

    Args:
        path: the audio file (any format libsndfile reads: WAV, FLAC, AIFF, OGG, ...).

    Returns:
        The audio at the file's own sample rate (no resampling).

    Raises:
        ValueError: the file is missing, is a folder, cannot be decoded, or holds no samples;
            the message names the file and says how to fix it.
    """
    p = Path(path)
    if not p.exists():
        raise ValueError(
            f"audio file {str(p)!r} does not exist; check the path (relative paths are taken "
            "from the project folder) or export the recording again"
        )
    if not p.is_file():
        raise ValueError(f"audio path {str(p)!r} is a folder, not a file; point it at a .wav file")
    try:
        data, sample_rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ValueError(
            f"cannot read audio file {str(p)!r} ({exc}); it is not a readable audio file or it "
            "is damaged - export it again from the DAW as WAV (16/24-bit PCM or 32-bit float)"
        ) from exc
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(
            f"audio file {str(p)!r} holds no samples; record or export the audio again "
            "(the file is empty)"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError(
            f"audio file {str(p)!r} contains NaN/infinite samples; export it again as PCM WAV"
        )
    return Audio(np.ascontiguousarray(data.T), int(sample_rate))


def write_wav(path: str | os.PathLike[str], audio: Audio, subtype: str = "PCM_24") -> Path:
    """Write audio to a new WAV file, atomically (temporary file, then rename).

    Samples are clipped to [-1, 1] for the integer formats.

    Args:
        path: destination; its folder must exist and the file must not.
        audio: the audio to write, ``(channels, samples)`` at ``audio.sample_rate`` Hz.
        subtype: sample format, one of :data:`WAV_SUBTYPES`.

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` already exists (files are never overwritten).
        ValueError: unknown ``subtype``, empty audio, or the folder does not exist.
    """
    p = Path(path)
    if subtype not in WAV_SUBTYPES:
        raise ValueError(f"WAV format {subtype!r} is not supported; use one of {WAV_SUBTYPES}")
    if audio.num_samples == 0:
        raise ValueError(f"refusing to write {str(p)!r}: the audio holds no samples")
    if p.exists():
        raise FileExistsError(
            f"{str(p)!r} already exists; stembridge never overwrites audio - choose a new name"
        )
    if not p.parent.is_dir():
        raise ValueError(f"cannot write {str(p)!r}: folder {str(p.parent)!r} does not exist")
    samples = audio.samples
    if subtype != "FLOAT":
        samples = np.clip(samples, -1.0, 1.0)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent))
    os.close(fd)
    try:
        sf.write(tmp_name, samples.T, audio.sample_rate, subtype=subtype, format="WAV")
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; a DAW or a colleague must read it
        if p.exists():
            raise FileExistsError(
                f"{str(p)!r} appeared while writing; stembridge never overwrites audio"
            )
        os.replace(tmp_name, p)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    log.debug("wrote %s (%d ch, %.3f s, %s)", p, audio.channels, audio.duration_s, subtype)
    return p


def resample(audio: Audio, sample_rate: int) -> Audio:
    """Resample with a polyphase filter (scipy ``resample_poly``).

    Args:
        audio: the input audio.
        sample_rate: the target rate in Hz.

    Returns:
        New audio at ``sample_rate``; the same object when the rate already matches. The length
        is ``ceil(num_samples * sample_rate / audio.sample_rate)`` samples.

    Raises:
        ValueError: ``sample_rate`` is not a positive whole number.
    """
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample rate {sample_rate!r} must be a positive whole number of Hz")
    if int(sample_rate) == audio.sample_rate:
        return audio
    g = gcd(int(sample_rate), audio.sample_rate)
    up, down = int(sample_rate) // g, audio.sample_rate // g
    out = resample_poly(audio.samples, up, down, axis=1).astype(np.float32)
    return Audio(out, int(sample_rate))

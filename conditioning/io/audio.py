"""Reading, writing and resampling audio files.

Audio is always an :class:`~conditioning.types.Audio`: float32 samples shaped
``(channels, samples)`` plus the sample rate in Hz. Files are read with soundfile (WAV, FLAC,
AIFF, OGG, ...); files are written as WAV, atomically, and never overwrite an existing file.
Extra RIFF chunks (a Broadcast-WAV ``bext``, say) can be written into the same file before it
becomes visible; the audio samples are untouched by them.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
from collections.abc import Sequence
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from conditioning.io.atomic import atomic_output, temp_path_for
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


def _insert_riff_chunks(src: str, dst: str, chunks: Sequence[tuple[bytes, bytes]]) -> None:
    """Copy the RIFF/WAVE file ``src`` to ``dst`` with ``chunks`` inserted before its ``data`` chunk.

    Each chunk is (four-byte id, payload); odd payloads get the pad byte RIFF requires. Every
    other chunk is copied byte for byte, so the samples stay identical.
    """
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        riff, _size, wave = struct.unpack("<4sI4s", fin.read(12))
        if riff != b"RIFF" or wave != b"WAVE":
            raise ValueError(f"{src!r} is not a RIFF/WAVE file; cannot add chunks to it")
        extra = b"".join(
            cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
            for cid, payload in chunks
        )
        fout.write(struct.pack("<4sI4s", b"RIFF", 0, b"WAVE"))
        while True:
            head = fin.read(8)
            if len(head) < 8:
                raise ValueError(f"{src!r} has no data chunk; cannot add chunks to it")
            cid, size = struct.unpack("<4sI", head)
            if cid == b"data":
                fout.write(extra)
                fout.write(head)
                shutil.copyfileobj(fin, fout, 1 << 20)
                break
            fout.write(head + fin.read(size + size % 2))
        total = fout.tell()
        fout.seek(4)
        fout.write(struct.pack("<I", total - 8))


def write_wav(
    path: str | os.PathLike[str],
    audio: Audio,
    subtype: str = "PCM_24",
    *,
    extra_chunks: Sequence[tuple[bytes, bytes]] = (),
) -> Path:
    """Write audio to a new WAV file, whole or not at all (:mod:`conditioning.io.atomic`).

    Samples are clipped to [-1, 1] for the integer formats.

    Args:
        path: destination; its folder must exist and the file must not.
        audio: the audio to write, ``(channels, samples)`` at ``audio.sample_rate`` Hz.
        subtype: sample format, one of :data:`WAV_SUBTYPES`.
        extra_chunks: RIFF chunks written before the ``data`` chunk, as (four-byte id, payload)
            pairs, e.g. a Broadcast-WAV ``bext`` chunk from :mod:`bridge.export.bwf`.

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
    for cid, _payload in extra_chunks:
        if len(cid) != 4 or cid in (b"RIFF", b"fmt ", b"data"):
            raise ValueError(f"RIFF chunk id {cid!r} must be four bytes and not RIFF/fmt/data")
    samples = audio.samples
    if subtype != "FLOAT":
        samples = np.clip(samples, -1.0, 1.0)
    with atomic_output(p) as tmp:
        if not extra_chunks:
            sf.write(str(tmp), samples.T, audio.sample_rate, subtype=subtype, format="WAV")
        else:
            plain = temp_path_for(p)
            try:
                sf.write(str(plain), samples.T, audio.sample_rate, subtype=subtype, format="WAV")
                _insert_riff_chunks(str(plain), str(tmp), extra_chunks)
            finally:
                plain.unlink(missing_ok=True)
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

"""Audio on the wire: a float WAV whose bytes depend on the samples only, read back sample-exact."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from bridge.remote.wire import audio_from_wav, audio_to_wav, blob_id
from conditioning.types import Audio


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    out, pos = [], 12
    while pos < len(data):
        name, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        out.append((name, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


@pytest.mark.parametrize("channels", [1, 2])
def test_a_wav_blob_is_only_the_format_and_the_samples_and_reads_back_exactly(channels: int) -> None:
    rng = np.random.default_rng(channels)
    audio = Audio(rng.standard_normal((channels, 4801)).astype(np.float32), 44100)
    data = audio_to_wav(audio)
    chunks = _chunks(data)
    assert [name for name, _ in chunks] == [b"fmt ", b"fact", b"data"]  # no PEAK chunk with a write time
    fmt, fact, samples = (body for _, body in chunks)
    assert struct.unpack("<HHIIHH", fmt[:16]) == (3, channels, 44100, 44100 * 4 * channels, 4 * channels, 32)
    assert struct.unpack("<I", fact)[0] == 4801
    assert samples == np.ascontiguousarray(audio.samples.T, dtype="<f4").tobytes()
    info = sf.info(io.BytesIO(data))
    assert (info.subtype, info.channels, info.samplerate, info.frames) == ("FLOAT", channels, 44100, 4801)
    back = audio_from_wav(data)
    assert back.sample_rate == 44100
    np.testing.assert_array_equal(back.samples, audio.samples)


def test_the_same_audio_has_the_same_blob_id_whatever_its_memory_layout() -> None:
    samples = np.linspace(-1, 1, 2000, dtype=np.float32).reshape(2, 1000)
    a = Audio(samples, 48000)
    b = Audio(np.asfortranarray(samples.astype(np.float64)).astype(np.float32), 48000)
    assert blob_id(audio_to_wav(a)) == blob_id(audio_to_wav(b))
    assert blob_id(audio_to_wav(a)) != blob_id(audio_to_wav(Audio(samples, 44100)))

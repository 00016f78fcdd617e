"""Audio file I/O: reading, atomic non-overwriting writes, resampling, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conditioning.io.audio import read_audio, resample, write_wav
from conditioning.types import Audio


def _tone(seconds: float = 0.5, sr: int = 48000, channels: int = 2) -> Audio:
    t = np.arange(int(seconds * sr)) / sr
    mono = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    return Audio(np.stack([mono * (0.5 + 0.5 * c) for c in range(channels)]).astype(np.float32), sr)


def test_write_then_read_round_trips_samples_and_rate(tmp_path: Path) -> None:
    audio = _tone()
    path = write_wav(tmp_path / "tone.wav", audio)
    back = read_audio(path)
    assert back.sample_rate == 48000
    assert back.samples.shape == (2, 24000)
    assert back.samples.dtype == np.float32
    np.testing.assert_allclose(back.samples, audio.samples, atol=1e-6)  # 24-bit
    assert sf.info(str(path)).subtype == "PCM_24"


def test_write_16_bit_and_mono(tmp_path: Path) -> None:
    audio = _tone(channels=1)
    path = write_wav(tmp_path / "m.wav", audio, subtype="PCM_16")
    info = sf.info(str(path))
    assert (info.channels, info.subtype, info.frames) == (1, "PCM_16", 24000)
    np.testing.assert_allclose(read_audio(path).samples, audio.samples, atol=1.0 / 32767)


def test_write_refuses_to_overwrite_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", _tone())
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="never overwrites"):
        write_wav(path, _tone(seconds=0.1))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_write_rejects_bad_subtype_missing_folder_and_empty_audio(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PCM_24"):
        write_wav(tmp_path / "x.wav", _tone(), subtype="MP3")
    with pytest.raises(ValueError, match="does not exist"):
        write_wav(tmp_path / "nope" / "x.wav", _tone())
    with pytest.raises(ValueError, match="no samples"):
        write_wav(tmp_path / "x.wav", Audio.silence(0, 48000))
    assert list(tmp_path.iterdir()) == []


def test_write_clips_integer_formats(tmp_path: Path) -> None:
    loud = Audio(np.full((1, 100), 2.0, dtype=np.float32), 8000)
    back = read_audio(write_wav(tmp_path / "loud.wav", loud, subtype="PCM_16"))
    assert float(back.samples.max()) <= 1.0
    assert float(back.samples.max()) > 0.999


def test_read_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"hum\.wav.*does not exist"):
        read_audio(tmp_path / "hum.wav")


def test_read_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder"):
        read_audio(tmp_path)


def test_read_corrupt_file_names_it_and_says_how_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(64)))
    with pytest.raises(ValueError, match=r"broken\.wav.*export it again"):
        read_audio(bad)


def test_read_text_file_pretending_to_be_wav(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n")
    with pytest.raises(ValueError, match=r"notes\.wav"):
        read_audio(bad)


def test_read_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.wav"):
        read_audio(empty)


def test_read_wav_with_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    sf.write(str(path), np.zeros((0, 1), dtype=np.float32), 48000, subtype="PCM_16")
    with pytest.raises(ValueError, match=r"silent\.wav.*no samples"):
        read_audio(path)


def test_resample_changes_length_and_keeps_pitch() -> None:
    audio = _tone(seconds=1.0, sr=48000, channels=1)
    out = resample(audio, 22050)
    assert out.sample_rate == 22050
    assert out.num_samples == 22050
    spectrum = np.abs(np.fft.rfft(out.samples[0]))
    peak_hz = np.argmax(spectrum) * 22050 / out.num_samples
    assert abs(peak_hz - 440.0) < 2.0
    assert resample(audio, 48000) is audio


def test_resample_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="positive whole number"):
        resample(_tone(), 0)

"""Broadcast-WAV positions in stem WAVs, read back by the independent ``wavinfo`` package."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from wavinfo import WavInfoReader

from bridge.export.bwf import BextInfo, bext_chunk, bext_payload
from bridge.job.placement import write_section_stems
from conditioning.io.audio import write_wav
from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio
from models.base import Generation


def _noise(n: int, sr: int = 48000, channels: int = 2, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio(rng.uniform(-1.2, 1.2, (channels, n)).astype(np.float32), sr)


@pytest.mark.parametrize("subtype", ["FLOAT", "PCM_24", "PCM_16"])
def test_bext_chunk_keeps_samples_bit_identical(tmp_path: Path, subtype: str) -> None:
    audio = _noise(12_345)  # odd length: the data chunk is the last chunk either way
    plain = write_wav(tmp_path / "plain.wav", audio, subtype=subtype)
    info = BextInfo(1_234_567, "stembridge: Verse 1 / drums / take 1", "job-1", datetime(2026, 1, 2, 3, 4, 5))
    tagged = write_wav(tmp_path / "tagged.wav", audio, subtype=subtype, extra_chunks=[bext_chunk(info)])
    a, sr_a = sf.read(str(plain), dtype="float64", always_2d=True)
    b, sr_b = sf.read(str(tagged), dtype="float64", always_2d=True)
    assert sr_a == sr_b == 48000
    assert a.shape == b.shape == (12_345, 2)
    assert np.array_equal(a, b)
    # the data chunk's bytes themselves are identical, too
    raw_a, raw_b = plain.read_bytes(), tagged.read_bytes()
    assert raw_a[raw_a.index(b"data"):] == raw_b[raw_b.index(b"data"):]
    reader = WavInfoReader(str(tagged))
    assert reader.bext is not None
    assert reader.bext.time_reference == 1_234_567
    assert reader.bext.description == "stembridge: Verse 1 / drums / take 1"
    assert reader.bext.originator == "stembridge"
    assert reader.bext.originator_ref == "job-1"
    assert reader.bext.originator_date == "2026-01-02"
    assert reader.bext.originator_time == "03:04:05"
    assert reader.bext.version == 2
    assert reader.fmt.sample_rate == 48000 and reader.fmt.channel_count == 2
    assert sf.info(str(tagged)).frames == 12_345
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.wav", "tagged.wav"]  # no temp file left


def test_time_reference_above_32_bits_and_odd_chunk_padding(tmp_path: Path) -> None:
    big = 2**32 + 17  # a day and more at 48 kHz: the high word is written too
    audio = _noise(100, channels=1)
    path = write_wav(tmp_path / "far.wav", audio, "FLOAT", extra_chunks=[bext_chunk(BextInfo(big, "x")), (b"junk", b"abc")])
    assert WavInfoReader(str(path)).bext.time_reference == big
    assert np.array_equal(sf.read(str(path), dtype="float32", always_2d=True)[0].T, audio.samples)
    riff_size = int.from_bytes(path.read_bytes()[4:8], "little")
    assert riff_size == path.stat().st_size - 8


def test_descriptions_with_hostile_names_stay_ascii_and_bounded() -> None:
    payload = bext_payload(BextInfo(0, "Chorüs\x00 \x07\u2603 " + "x" * 400))
    assert len(payload) == 602
    desc = payload[:256]
    assert desc.startswith(b"Chorus? ??")
    assert all(32 <= c < 127 for c in desc)
    with pytest.raises(ValueError, match="project start"):
        BextInfo(-1, "before the start")


def test_bad_chunk_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="four bytes"):
        write_wav(tmp_path / "a.wav", _noise(10), extra_chunks=[(b"data", b"")])
    assert not list(tmp_path.iterdir())


def test_section_stems_carry_their_position_in_samples(tmp_path: Path) -> None:
    tm = TempoMap.from_json([
        {"beat": 0, "bpm": 92, "time_signature": [4, 4]},
        {"beat": 16, "bpm": 140, "time_signature": [7, 8]},
    ])
    section = Section.from_bars("Bridge \u00e9t\u00e9", 5, 7, tm)
    sr = 44100
    n = section.length_samples(tm, sr)
    gen = Generation(stems={"drums": _noise(n, sr), "bass": _noise(n, sr, seed=1)})
    placements = write_section_stems(gen, section, 3, tmp_path, "stembridge/renders/J42", tm, sr)
    expected = round((16 * 60 / 92) * sr)  # bar 5 starts after four 4/4 bars at 92 bpm
    assert tm.beat_to_samples(section.start_beat, sr) == expected
    for p in placements:
        reader = WavInfoReader(str(tmp_path / Path(p.file).name))
        assert reader.bext.time_reference == expected
        assert reader.bext.description == f"stembridge: Bridge ete / {p.stem} / take 3"
        assert reader.bext.originator_ref == "J42"
        back, rate = sf.read(str(tmp_path / Path(p.file).name), dtype="float32", always_2d=True)
        assert rate == sr
        assert np.array_equal(back.T, gen.stems[p.stem].samples)

"""Demucs separation: the stem mapping, the debug model, and the missing-weights message."""

from __future__ import annotations

import numpy as np
import pytest

from conditioning.types import Audio
from models.base import ModelUnavailableError
from models.separation.stems import SOURCES, source_assignment, stems_from_sources

pytestmark = pytest.mark.neural


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (["drums", "bass", "keys", "lead"], {"drums": ("drums",), "bass": ("bass",), "keys": ("other",), "lead": ("vocals",)}),
        (["drums", "bass", "lead"], {"drums": ("drums",), "bass": ("bass",), "lead": ("vocals", "other")}),
        (["drums", "bass", "keys"], {"drums": ("drums",), "bass": ("bass",), "keys": ("other", "vocals")}),
        (["drums"], {"drums": ("drums",)}),
        (["keys", "pad"], {"keys": ("other", "drums", "bass", "vocals"), "pad": ()}),
    ],
)
def test_source_assignment(requested: list[str], expected: dict[str, tuple[str, ...]]) -> None:
    assert source_assignment(requested) == expected


def test_assignment_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="at least one"):
        source_assignment([])
    with pytest.raises(ValueError, match="twice"):
        source_assignment(["drums", "drums"])


def test_stems_sum_sources_and_keep_the_mix() -> None:
    rng = np.random.default_rng(0)
    sources = {s: Audio(rng.standard_normal((2, 1000)).astype(np.float32), 48000) for s in SOURCES}
    stems, notes = stems_from_sources(sources, ["drums", "bass", "keys"])
    np.testing.assert_allclose(stems["keys"].samples, sources["other"].samples + sources["vocals"].samples)
    total = sum(a.samples for a in stems.values())
    np.testing.assert_allclose(total, sum(a.samples for a in sources.values()), atol=1e-5)
    assert notes["keys"] == "other+vocals"


@pytest.fixture(scope="module")
def separator():  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    pytest.importorskip("demucs")
    from models.separation.demucs import DemucsSeparator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield DemucsSeparator("demucs-debug", device="cpu")
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("sr", "channels"), [(48000, 2), (44100, 1), (32000, 2)])
def test_debug_separation_lengths_and_rates(separator, sr: int, channels: int) -> None:  # type: ignore[no-untyped-def]
    n = int(sr * 1.3)
    mix = Audio(np.random.default_rng(1).standard_normal((channels, n)).astype(np.float32) * 0.1, sr)
    out = separator.separate(mix)
    assert set(out) == set(SOURCES)
    for audio in out.values():
        assert audio.sample_rate == sr and audio.num_samples == n and audio.channels == 2
        assert np.all(np.isfinite(audio.samples))


def test_debug_separation_is_deterministic(separator) -> None:  # type: ignore[no-untyped-def]
    mix = Audio(np.random.default_rng(2).standard_normal((2, 44100)).astype(np.float32) * 0.1, 44100)
    a, b = separator.separate(mix), separator.separate(mix)
    for s in SOURCES:
        np.testing.assert_array_equal(a[s].samples, b[s].samples)
    assert any(np.abs(a[s].samples).max() > 0 for s in SOURCES)


def test_missing_htdemucs_gives_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("demucs")
    import huggingface_hub.constants as hub_constants

    from models.separation.demucs import DemucsSeparator, htdemucs_weights

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    present, detail = htdemucs_weights()
    assert (present, detail) == (False, "Demucs htdemucs (adefossez/HTDemucs) is not downloaded")
    with pytest.raises(ModelUnavailableError, match="on a machine with internet"):
        DemucsSeparator("htdemucs", device="cpu")
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        DemucsSeparator("htdemucs", path=str(tmp_path / "nowhere"), device="cpu")

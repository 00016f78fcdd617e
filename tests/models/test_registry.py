"""The generator registry: what each spec declares matches the backend it names."""

from __future__ import annotations

from models.arranger.generator import SUPPORTED_STEMS
from models.registry import MODELS


def test_the_arrangers_declared_stems_are_the_ones_it_plays() -> None:
    # requests are checked against the spec when parsed; the backend refuses anything else later
    assert MODELS["arranger"].stems == SUPPORTED_STEMS


def test_models_that_split_a_mix_accept_any_stem_name() -> None:
    musicgen = [spec for name, spec in MODELS.items() if name.startswith("musicgen")]
    assert musicgen and all(spec.stems is None for spec in musicgen)

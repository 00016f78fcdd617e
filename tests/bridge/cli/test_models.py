"""`stembridge models`: one compact table, each how-to said once, weights named one way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import models.registry as registry
from bridge.cli.main import main


def _models_output(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["models"]) == 0
    return capsys.readouterr().out


def test_missing_packages_are_one_row_each_and_one_how_to(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        registry, "missing_requirements",
        lambda name: [] if name == "arranger" else ["torch", "transformers", "demucs"],
    )
    out = _models_output(capsys)
    for name in registry.MODELS:
        assert out.count(f" {name} ") == 1, name
    assert out.count("packages: bash scripts/setup.sh --neural") == 1
    assert "stembridge[neural]" in out  # printed as written, not eaten as console markup
    assert "separator_path" not in out
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["arranger"]["ready"] is True
    assert rows["musicgen-small"] == {
        "name": "musicgen-small", "ready": False, "detail": "packages missing: torch, transformers, demucs",
        "description": registry.MODELS["musicgen-small"].description,
        "install_hint": registry.MODELS["musicgen-small"].install_hint,
    }


def test_missing_weights_name_the_repositories_and_say_how_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    if registry.missing_requirements("musicgen-small"):
        pytest.skip("the neural stack is not installed here")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    out = _models_output(capsys)
    assert out.count("huggingface-cli download REPO") == 1
    assert "facebook/htdemucs" not in out and "adefossez/HTDemucs" in out
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["musicgen-small"]["ready"] is False
    assert rows["musicgen-small"]["detail"] == (
        "facebook/musicgen-small is not downloaded; Demucs htdemucs (adefossez/HTDemucs) is not downloaded"
    )
    assert rows["musicgen-debug"]["ready"] is True

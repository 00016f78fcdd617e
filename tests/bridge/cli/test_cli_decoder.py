"""``--decoder stock|fast`` reaches the MusicGen generator's options (generate and serve)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bridge.job.pipeline as pipeline
from bridge.cli.main import main
from bridge.job.request import RequestError
from tests.bridge.conftest import base_request


def test_generate_passes_the_decoder_choice(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_run(request: Any, *, progress: Any, model_options: dict[str, Any], **_: Any) -> Any:
        seen.append(dict(model_options))
        raise RequestError("schema", "stop here")

    monkeypatch.setattr(pipeline, "run_request", fake_run)
    req = project / "req.json"
    req.write_text(json.dumps(base_request(project, stems=["bass"], model="musicgen-debug")))
    assert main(["generate", str(req), "--quiet", "--decoder", "stock"]) == 2
    assert main(["generate", str(req), "--quiet"]) == 2
    assert seen == [{"decoder": "stock"}, {}]


def test_unknown_decoder_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["generate", str(project / "req.json"), "--decoder", "quick"])
    assert exc.value.code == 2
    assert "invalid choice: 'quick'" in capsys.readouterr().err


def test_serve_puts_the_decoder_in_every_job_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.app as app

    configs: list[Any] = []

    def fake_serve(config: Any, **kwargs: Any) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr(app, "serve", fake_serve)
    assert main(["serve", "--project-dir", str(tmp_path), "--decoder", "fast"]) == 0
    assert main(["serve", "--project-dir", str(tmp_path)]) == 0
    assert [dict(c.model_options) for c in configs] == [{"decoder": "fast"}, {}]


def test_a_decoder_for_a_model_without_one_is_an_input_error(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = project / "arranger.json"
    req.write_text(json.dumps(base_request(project, stems=["bass"], model="arranger")))
    assert main(["generate", str(req), "--quiet", "--decoder", "fast"]) == 2
    err = capsys.readouterr().err
    assert "--decoder does not apply to model 'arranger'" in err
    assert not (project / "stembridge").exists()  # refused before anything was written


def test_server_wide_options_are_left_out_for_models_that_do_not_take_them() -> None:
    from models.registry import build_generator, unsupported_options

    assert unsupported_options("arranger", {"decoder": "fast", "model_path": "x"}) == ["decoder", "model_path"]
    assert unsupported_options("musicgen-debug", {"decoder": "fast"}) == []
    build_generator("arranger", decoder="fast")  # a serve --decoder fast bridge still runs arranger jobs

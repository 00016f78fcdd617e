"""A generation task runs away from the project and gives the same takes as the local stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.gpuworker.task import GenerationTask, ModelCache, execute_task
from bridge.job.generation import Bases, StagedProgress, run_generation
from bridge.job.request import RequestError, parse_request
from bridge.remote.wire import WireError, audio_from_wav, outcome_from_json, portable_request
from models.base import CancelToken
from tests.bridge.conftest import base_request


def _task(project: Path, **overrides: object) -> GenerationTask:
    portable = portable_request(parse_request(base_request(project, **overrides)))
    files = {rel: path.read_bytes() for rel, path in portable.files.items()}
    return GenerationTask(job_id="t1", request=portable.raw, files=files, seed=7)


def test_a_task_gives_sample_identical_takes_to_the_local_stage(project: Path, tmp_path: Path) -> None:
    task = _task(project)
    assert set(task.files) == {"chords.mid", "drums.mid"}
    cache = ModelCache()
    result = execute_task(task, models=cache, work_dir=tmp_path)
    remote = outcome_from_json(result.result, lambda ref: audio_from_wav(result.blobs[ref]))
    local = run_generation(parse_request(base_request(project)), seed=7, bases=Bases(),
                           progress=StagedProgress(None), cancel=CancelToken())
    assert remote.material == local.material
    assert [s.name for s in remote.sections] == [s.name for s in local.sections]
    for r, loc in zip(remote.sections, local.sections, strict=True):
        for rg, lg in zip(r.generations, loc.generations, strict=True):
            assert set(rg.stems) == set(lg.stems)
            for name in rg.stems:
                np.testing.assert_array_equal(rg.stems[name].samples, lg.stems[name].samples)
            assert rg.parts == lg.parts and dict(rg.programs) == dict(lg.programs)
    assert not list(tmp_path.glob("stembridge-*")), "the temporary project was left behind"


def test_the_model_is_loaded_once_for_many_tasks(project: Path, tmp_path: Path) -> None:
    cache = ModelCache()
    for _ in range(2):
        execute_task(_task(project), models=cache, work_dir=tmp_path)
    assert cache.loads == 1 and cache.loaded == ["arranger"]


@pytest.mark.parametrize("name", ["../escape.mid", "/etc/passwd", "a/../../b.mid", "a\\b.mid", ""])
def test_a_file_name_that_leaves_the_job_folder_is_refused(project: Path, tmp_path: Path, name: str) -> None:
    task = _task(project)
    bad = GenerationTask(job_id="t1", request=task.request, files={name: b"x"}, seed=7)
    with pytest.raises(WireError) as info:
        execute_task(bad, models=ModelCache(), work_dir=tmp_path)
    assert info.value.code == "path"
    assert not (tmp_path.parent / "escape.mid").exists()


def test_a_request_naming_a_file_the_task_lacks_is_an_input_error(project: Path, tmp_path: Path) -> None:
    task = _task(project)
    bad = GenerationTask(job_id="t1", request=task.request, files={}, seed=7)
    with pytest.raises(RequestError) as info:
        execute_task(bad, models=ModelCache(), work_dir=tmp_path)
    assert info.value.code == "path"

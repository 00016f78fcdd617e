"""One generation task, self-contained, and the function that runs it wherever a model lives.

A :class:`GenerationTask` carries everything the generation stage needs as plain data (the
portable request, the bytes of its input files, the seed, the bases with their audio bytes),
so it can be pickled to the worker's generator process or to a Ray Serve replica on another
machine. :func:`execute_task` rebuilds the project folder in a private temporary directory,
parses the request there (so its paths cannot leave that folder), runs
:func:`bridge.job.generation.run_generation` with a :class:`ModelCache` that keeps models
loaded between tasks, and returns a :class:`TaskResult`: the result document with every stem
as a blob (bytes inline, named by their SHA-256).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.job.generation import StagedProgress, run_generation
from bridge.job.request import parse_request
from bridge.remote.wire import (
    WireError,
    audio_from_wav,
    audio_to_wav,
    bases_from_json,
    blob_id,
    outcome_to_json,
    safe_relative_path,
)
from conditioning.types import Audio
from models.base import CancelToken, Generator
from models.registry import build_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationTask:
    """Everything one job's generation stage needs, as picklable data.

    Attributes:
        job_id: the worker's id for the job.
        request: the portable request v1 (``project.dir`` = ".", relative input paths).
        files: relative path -> that input file's bytes.
        seed: the job's seed (take ``v`` uses ``seed + v``).
        bases: the bases document (:func:`bridge.remote.wire.bases_to_json`) or None.
        blobs: blob id -> bytes, for every audio blob ``bases`` names.
    """

    job_id: str
    request: Mapping[str, Any]
    files: Mapping[str, bytes]
    seed: int
    bases: Mapping[str, Any] | None = None
    blobs: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """What a task produced.

    Attributes:
        result: the result document (:func:`bridge.remote.wire.outcome_to_json`).
        blobs: blob id -> bytes for every stem the result names.
    """

    result: Mapping[str, Any]
    blobs: Mapping[str, bytes]


class ModelCache:
    """Generators by model name, built once and kept loaded (least recently used dropped first).

    Args:
        model_options: keyword options for every generator (e.g. ``model_path``, ``device``).
        max_models: most generators kept loaded at once (each may hold GBs of GPU memory).
        factory: builds one generator (default :func:`models.registry.build_generator`).
    """

    def __init__(
        self,
        model_options: Mapping[str, Any] | None = None,
        *,
        max_models: int = 2,
        factory: Callable[..., Generator] = build_generator,
    ) -> None:
        self._options = dict(model_options or {})
        self._max = max(1, max_models)
        self._factory = factory
        self._loaded: OrderedDict[str, Generator] = OrderedDict()
        self._lock = threading.Lock()
        #: How many times a generator was built (a warm job builds none).
        self.loads = 0

    def __call__(self, name: str) -> Generator:
        """The generator for ``name``, built now if it is not loaded yet."""
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            generator = self._factory(name, **self._options)
            self.loads += 1
            self._loaded[name] = generator
            while len(self._loaded) > self._max:
                dropped, _ = self._loaded.popitem(last=False)
                log.info("unloading model %s to make room", dropped)
            return generator

    @property
    def loaded(self) -> list[str]:
        """Names of the generators loaded now, least recently used first."""
        with self._lock:
            return list(self._loaded)


def _write_inputs(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / safe_relative_path(rel)
        if not path.resolve().is_relative_to(root.resolve()):
            raise WireError("path", f"file name {rel!r} would leave the job folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def execute_task(
    task: GenerationTask,
    *,
    models: Callable[[str], Generator],
    progress: Callable[[float, str], None] | None = None,
    cancel: CancelToken | None = None,
    work_dir: Path | None = None,
) -> TaskResult:
    """Run one task's generation stage here.

    Args:
        task: the task.
        models: gives the generator by name (a :class:`ModelCache` keeps them warm).
        progress: called with (fraction 0-1 of the generation stage, message).
        cancel: checked between steps.
        work_dir: folder for the temporary project (default: the system's temp folder).

    Raises:
        RequestError / WireError: a bad request or task (``code`` says which kind).
        models.base.ModelUnavailableError, models.base.GenerationCancelled, and whatever the
        generator raises.
    """
    cancel = cancel or CancelToken()
    stage_progress = StagedProgress(None if progress is None else lambda f, m: progress(min(1.0, f / 0.9), m))
    with tempfile.TemporaryDirectory(prefix=f"stembridge-{task.job_id[:40]}-", dir=work_dir) as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        _write_inputs(root, task.files)
        raw = {**dict(task.request), "project": {**dict(task.request.get("project") or {}), "dir": str(root)}}
        request = parse_request(raw)
        blobs = dict(task.blobs)

        def load_audio(ref: str) -> Audio:
            if ref not in blobs:
                raise WireError("schema", f"the task names audio blob {ref[:12]}… but does not carry it")
            return audio_from_wav(blobs[ref])

        bases = bases_from_json(task.bases, load_audio)
        outcome = run_generation(
            request, seed=task.seed, bases=bases, progress=stage_progress, cancel=cancel, generator_factory=models
        )
    out_blobs: dict[str, bytes] = {}

    def save_audio(audio: Audio) -> str:
        data = audio_to_wav(audio)
        ref = blob_id(data)
        out_blobs[ref] = data
        return ref

    return TaskResult(result=outcome_to_json(outcome, save_audio), blobs=out_blobs)

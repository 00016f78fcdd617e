"""Generator registry: names -> lazily imported generator classes.

Backends are imported only when a job asks for them, so the bridge starts without torch.
Add a backend by adding a :class:`ModelSpec` to :data:`MODELS`; never branch on model names.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from models.base import Generator, ModelUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named generator.

    Attributes:
        name: the name used in requests (``"model": "arranger"``).
        target: ``"module:attribute"`` of a factory taking keyword options.
        description: one line for ``stembridge models``.
        requires: importable modules the backend needs (checked before importing it).
        install_hint: what to install when a requirement is missing.
        options: default keyword options passed to the factory.
        weights: ``"module:function"`` returning (present: bool, detail: str), or None when
            the backend needs no weights.
        stems: the stem names the generator can make, or None when it makes any name a
            request gives (a backend that splits a mix). Requests are checked against it when
            they are parsed, before any work, so it is declared here and not read from the
            (lazily imported) backend.
    """

    name: str
    target: str
    description: str
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    weights: str | None = None
    stems: tuple[str, ...] | None = None


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    """Add ``spec`` to the registry (a later spec with the same name replaces it)."""
    MODELS[spec.name] = spec


register(
    ModelSpec(
        name="arranger",
        target="models.arranger.generator:ArrangerGenerator",
        description="embedded arranger: drums, bass, keys, lead from your material, rendered "
        "with FluidSynth and a General MIDI SoundFont (no weights, CPU)",
        requires=("fluidsynth", "pretty_midi"),
        install_hint="install the Debian package libfluidsynth3 and `pip install pyfluidsynth pretty_midi`",
        stems=("drums", "bass", "keys", "lead"),  # models.arranger.generator.SUPPORTED_STEMS
    )
)


def _resolve(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def missing_requirements(name: str) -> list[str]:
    """Modules ``name`` needs that are not importable here (empty when all are present)."""
    spec = spec_for(name)
    return [mod for mod in spec.requires if importlib.util.find_spec(mod) is None]


def spec_for(name: str) -> ModelSpec:
    """The spec registered as ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ValueError(f"unknown model {name!r}; choose one of: {known}") from None


def weights_status(name: str, **options: Any) -> tuple[bool, str]:
    """Whether ``name``'s weights are present here, with a detail line.

    Args:
        name: registered model name.
        **options: generator options that say where weights are (``model_path``, ``adapter``);
            each is passed on only when the backend's weight check takes it.
    """
    spec = spec_for(name)
    if spec.weights is None:
        return True, "no weights needed"
    missing = missing_requirements(name)
    if missing:
        return False, f"missing packages: {', '.join(missing)}"
    check = _resolve(spec.weights)
    accepted = inspect.signature(check).parameters
    present, detail = check(**{k: v for k, v in options.items() if k in accepted and v is not None})
    return bool(present), str(detail)


def build_generator(name: str, **options: Any) -> Generator:
    """Import and construct the generator registered as ``name``.

    Raises:
        ValueError: unknown model name.
        ModelUnavailableError: a package it needs is not installed (the message says what to install).
    """
    spec = spec_for(name)
    missing = missing_requirements(name)
    if missing:
        raise ModelUnavailableError(
            f"model {name!r} needs {', '.join(missing)}, which is not installed here; "
            f"{spec.install_hint or 'install the neural extra: pip install stembridge[neural]'}"
        )
    factory = _resolve(spec.target)
    ignored = _unaccepted(factory, options)
    if ignored:  # server-wide options (e.g. --decoder) apply to the models that take them
        log.info("model %r takes no option %s; ignoring it", name, ", ".join(ignored))
    generator = factory(**{**spec.options, **{k: v for k, v in options.items() if k not in ignored}})
    if not isinstance(generator, Generator):
        raise TypeError(f"{spec.target} did not build a Generator")
    return generator


def unsupported_options(name: str, options: Mapping[str, Any]) -> list[str]:
    """The keys of ``options`` that the generator registered as ``name`` does not take (sorted).

    Imports the generator's module (not its heavy backend), so call it only when about to build.

    Raises:
        ValueError: unknown model name.
    """
    return _unaccepted(_resolve(spec_for(name).target), options)


def _unaccepted(factory: Callable[..., Any], options: Mapping[str, Any]) -> list[str]:
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    names = {p.name for p in params}
    return sorted(k for k in options if k not in names)


# -- MusicGen (neural; torch + transformers, Demucs for stems) ---------------------------------
_MUSICGEN_HINT = (
    "bash scripts/setup.sh --neural (or pip install 'stembridge[neural]' and "
    "pip install --no-deps -r requirements-nodeps.txt for demucs)"
)
for _size in ("small", "medium", "large"):
    register(
        ModelSpec(
            name=f"musicgen-{_size}",
            target="models.musicgen.generator:build",
            description=f"MusicGen {_size} (text prompt), stems split by Demucs htdemucs (GPU advised)",
            requires=("torch", "transformers", "demucs"),
            install_hint=_MUSICGEN_HINT,
            options={"model": f"facebook/musicgen-{_size}"},
            weights=f"models.musicgen.loading:{_size}_weights",
        )
    )
register(
    ModelSpec(
        name="musicgen-melody",
        target="models.musicgen.generator:build",
        description="MusicGen melody: text + your hummed melody and chords as chroma, stems by Demucs",
        requires=("torch", "transformers", "demucs"),
        install_hint=_MUSICGEN_HINT,
        options={"model": "facebook/musicgen-melody"},
        weights="models.musicgen.loading:melody_weights",
    )
)
for _name, _melody in (("musicgen-debug", False), ("musicgen-melody-debug", True)):
    register(
        ModelSpec(
            name=_name,
            target="models.musicgen.generator:build",
            description="tiny random-weight MusicGen for tests (noise; CPU, no download)",
            requires=("torch", "transformers", "demucs"),
            install_hint=_MUSICGEN_HINT,
            options={
                "debug": True, "melody": _melody, "separator": "demucs-debug",
                "window_s": 2.0, "context_s": 0.5, "margin_s": 0.25, "device": "cpu",
            },
            weights="models.musicgen.loading:debug_weights",
        )
    )

# -- Coco-Mulla (MusicGen-large + content adapter: chords, piano roll, drums) ------------------
_COCO_REQUIRES = ("torch", "transformers", "demucs", "fluidsynth", "pretty_midi")

register(
    ModelSpec(
        name="cocomulla",
        target="models.cocomulla.generator:build",
        description="Coco-Mulla: MusicGen-large led by your chords, piano roll and drums "
        "(needs --adapter FILE; GPU advised), stems by Demucs",
        requires=_COCO_REQUIRES,
        install_hint=_MUSICGEN_HINT,
        weights="models.cocomulla.weights:cocomulla_weights",
    )
)
register(
    ModelSpec(
        name="cocomulla-debug",
        target="models.cocomulla.generator:build",
        description="tiny random-weight Coco-Mulla for tests (noise; CPU, no download)",
        requires=_COCO_REQUIRES,
        install_hint=_MUSICGEN_HINT,
        options={
            "debug": True, "separator": "demucs-debug", "window_s": 2.0, "context_s": 0.5,
            "margin_s": 0.25, "device": "cpu",
        },
        weights="models.cocomulla.weights:debug_weights",
    )
)

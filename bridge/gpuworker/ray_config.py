"""The configuration file of the Ray Serve worker (``stembridge worker --ray CONFIG``).

A TOML file (read with :mod:`tomllib`), every section and key optional except where noted::

    [worker]                          # the HTTP service (docs/worker-api.md)
    name = "ray-worker"               # reported in /v1/health and job documents
    host = "127.0.0.1"                # Serve's HTTP proxy binds here (loopback by default)
    port = 9100
    token_file = "worker-token"       # required; relative paths start at this file's folder
    state_dir = "worker-state"        # jobs, blobs and results on disk (the ingress's node)
    max_queue = 16                    # jobs queued or running at most
    max_upload_mb = 512               # largest blob accepted, in MiB
    keep_hours = 24                   # results kept this long, in hours

    [ray]
    address = ""                      # "" starts a local cluster; "auto" or "HOST:PORT" joins one
    num_cpus = 0                      # CPUs of a local cluster (0: all of this machine's)

    [models]
    preload = ["musicgen-small"]      # loaded by every replica before it takes requests
    max_models = 2                    # generators kept loaded per replica
    [models.options]                  # keyword options of every generator
    device = "cuda"

    [replicas]                        # the Generation deployment
    min = 1                           # autoscaling bounds (min may be 0)
    max = 2
    initial = 1
    num_gpus = 1                      # per replica (fractions share a GPU)
    num_cpus = 1                      # per replica
    max_ongoing_requests = 4          # tasks one replica runs at once (concurrent takes batch)
    target_ongoing_requests = 4       # autoscaling target per replica (default: max_ongoing_requests)
    graceful_shutdown_s = 300         # a replica being removed finishes its tasks this long, in s

:func:`load_ray_config` validates everything and raises :class:`RayConfigError` naming the file,
the key, what is wrong and how to fix it. Nothing here imports Ray.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

#: Every section and the keys it may hold (anything else is a typo and refused).
_KEYS: dict[str, set[str]] = {
    "worker": {"name", "host", "port", "token_file", "state_dir", "max_queue", "max_upload_mb", "keep_hours"},
    "ray": {"address", "num_cpus"},
    "models": {"preload", "max_models", "options"},
    "replicas": {"min", "max", "initial", "num_gpus", "num_cpus", "max_ongoing_requests",
                 "target_ongoing_requests", "graceful_shutdown_s"},
}


class RayConfigError(ValueError):
    """The configuration file is unreadable or a value in it is wrong (the message says which)."""


@dataclass(frozen=True)
class ReplicaConfig:
    """How the Generation deployment scales (the ``[replicas]`` section).

    Attributes:
        min: fewest replicas autoscaling keeps (0 lets it scale to none when idle).
        max: most replicas.
        initial: replicas started with the application.
        num_gpus: GPUs reserved per replica (a fraction shares one GPU).
        num_cpus: CPUs reserved per replica.
        max_ongoing_requests: tasks one replica runs at once, each in its own thread on the
            replica's shared model cache (so concurrent takes can batch on one generator).
        target_ongoing_requests: autoscaling's target of ongoing tasks per replica.
        graceful_shutdown_s: seconds a replica being removed (scaled down, redeployed) may
            finish its running tasks before it is killed (those then fail with
            ``worker_crashed``).
    """

    min: int = 1
    max: int = 1
    initial: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    max_ongoing_requests: int = 4
    target_ongoing_requests: float = 4.0
    graceful_shutdown_s: float = 300.0


@dataclass(frozen=True)
class RayServeConfig:
    """A validated configuration file.

    Attributes:
        source: the file it was read from.
        name: the worker's name (health and job documents).
        host: address Serve's HTTP proxy binds.
        port: its TCP port.
        token_file: file holding the bearer token (absolute).
        state_dir: folder of the jobs, blobs and results (absolute).
        max_queue: jobs queued or running at most.
        max_upload_mb: largest blob accepted, in MiB.
        keep_hours: hours results are kept.
        ray_address: cluster to join, or "" to start a local one.
        ray_num_cpus: CPUs of a local cluster (None: all).
        preload: models every replica loads before taking requests.
        max_models: generators kept loaded per replica.
        model_options: keyword options of every generator.
        replicas: the Generation deployment's scaling.
    """

    source: Path
    token_file: Path
    state_dir: Path
    name: str = "ray-worker"
    host: str = "127.0.0.1"
    port: int = 9100
    max_queue: int = 16
    max_upload_mb: int = 512
    keep_hours: float = 24.0
    ray_address: str = ""
    ray_num_cpus: int | None = None
    preload: tuple[str, ...] = ()
    max_models: int = 2
    model_options: Mapping[str, Any] = field(default_factory=dict)
    replicas: ReplicaConfig = field(default_factory=ReplicaConfig)

    def token(self) -> str:
        """The bearer token, read from :attr:`token_file` now.

        Raises:
            RayConfigError: the file is missing, unreadable or empty.
        """
        try:
            text = self.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise RayConfigError(
                f"{self.source}: [worker] token_file {str(self.token_file)!r} cannot be read ({exc}); "
                "write a long random token into it, e.g. `python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\" > FILE`") from None
        if not text:
            raise RayConfigError(f"{self.source}: [worker] token_file {str(self.token_file)!r} is empty; "
                                 "write a long random token into it")
        return text


class _Section:
    """Typed reads from one TOML table, each error naming the file, section and key."""

    def __init__(self, source: Path, name: str, table: Any) -> None:
        self.source = source
        self.name = name
        if not isinstance(table, dict):
            self.fail(None, f"must be a table ([{name}]), not {type(table).__name__}")
        unknown = sorted(set(table) - _KEYS[name])
        if unknown:
            self.fail(None, f"has unknown key(s) {', '.join(unknown)}; the keys are "
                            f"{', '.join(sorted(_KEYS[name]))}")
        self.table: dict[str, Any] = table

    def fail(self, key: str | None, what: str) -> NoReturn:
        where = f"[{self.name}]" + (f" {key}" if key else "")
        raise RayConfigError(f"{self.source}: {where} {what}")

    def integer(self, key: str, default: int, *, low: int, high: int | None = None) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, not {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.fail(key, f"must be {bound} (got {value})")
        return int(value)

    def number(self, key: str, default: float, *, low: float, above: bool = False) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, f"must be a number, not {value!r}")
        if value < low or (above and value == low):
            self.fail(key, f"must be {'above' if above else 'at least'} {low:g} (got {value})")
        return float(value)

    def text(self, key: str, default: str | None, *, empty: bool = False) -> str:
        value = self.table.get(key, default)
        if value is None:
            self.fail(key, "is required")
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.fail(key, f"must be a non-empty string, not {value!r}")
        return str(value).strip()

    def path(self, key: str, default: str | None) -> Path:
        path = Path(self.text(key, default)).expanduser()
        return (path if path.is_absolute() else self.source.parent / path).resolve()


def parse_ray_config(data: Mapping[str, Any], source: Path) -> RayServeConfig:
    """Validate an already decoded configuration (``source`` names it in errors, anchors paths).

    Raises:
        RayConfigError: a section or key is unknown, or a value is of the wrong type or range.
    """
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise RayConfigError(f"{source}: unknown section(s) {', '.join(unknown)}; the sections are "
                             f"{', '.join(sorted(_KEYS))}")
    worker = _Section(source, "worker", data.get("worker", {}))
    ray = _Section(source, "ray", data.get("ray", {}))
    models = _Section(source, "models", data.get("models", {}))
    rep = _Section(source, "replicas", data.get("replicas", {}))

    preload = models.table.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(m, str) and m.strip() for m in preload):
        models.fail("preload", f"must be a list of model names, e.g. [\"musicgen-small\"], not {preload!r}")
    options = models.table.get("options", {})
    if not isinstance(options, dict):
        models.fail("options", f"must be a table ([models.options]), not {options!r}")

    low = rep.integer("min", 1, low=0)
    high = rep.integer("max", max(low, 1), low=1)
    if low > high:
        rep.fail("min", f"({low}) must not exceed max ({high})")
    initial = rep.integer("initial", max(low, 1), low=0)
    if not low <= initial <= high:
        rep.fail("initial", f"({initial}) must lie between min ({low}) and max ({high})")
    ongoing = rep.integer("max_ongoing_requests", 4, low=1, high=1024)
    replicas = ReplicaConfig(
        min=low, max=high, initial=initial,
        num_gpus=rep.number("num_gpus", 0.0, low=0.0),
        num_cpus=rep.number("num_cpus", 1.0, low=0.0),
        max_ongoing_requests=ongoing,
        target_ongoing_requests=rep.number("target_ongoing_requests", float(ongoing), low=0.0, above=True),
        graceful_shutdown_s=rep.number("graceful_shutdown_s", 300.0, low=0.0),
    )
    num_cpus = ray.integer("num_cpus", 0, low=0)
    return RayServeConfig(
        source=source,
        name=worker.text("name", "ray-worker"),
        host=worker.text("host", "127.0.0.1"),
        port=worker.integer("port", 9100, low=1, high=65535),
        token_file=worker.path("token_file", None),
        state_dir=worker.path("state_dir", "worker-state"),
        max_queue=worker.integer("max_queue", 16, low=1),
        max_upload_mb=worker.integer("max_upload_mb", 512, low=1),
        keep_hours=worker.number("keep_hours", 24.0, low=0.0, above=True),
        ray_address=ray.text("address", "", empty=True),
        ray_num_cpus=num_cpus or None,
        preload=tuple(m.strip() for m in preload),
        max_models=models.integer("max_models", 2, low=1),
        model_options=dict(options),
        replicas=replicas,
    )


def load_ray_config(path: Path) -> RayServeConfig:
    """Read and validate the configuration file at ``path``.

    Raises:
        RayConfigError: the file is missing or not TOML, or a value in it is wrong.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RayConfigError(f"cannot read the Ray Serve configuration {path}: {exc.strerror or exc}; "
                             "pass the path of a TOML file like examples/ray-serve.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RayConfigError(f"{path} is not valid TOML ({exc}); see examples/ray-serve.toml") from None
    return parse_ray_config(data, path.resolve())

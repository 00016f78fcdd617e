"""The Ray Serve worker's configuration file: the example reads, every wrong value is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.gpuworker.ray_config import RayConfigError, load_ray_config, parse_ray_config
from bridge.gpuworker.ray_serve import check_resources

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ray-serve.toml"
    path.write_text(text)
    return path


def test_the_example_reads_with_paths_from_its_own_folder_and_home() -> None:
    config = load_ray_config(REPO / "examples" / "ray-serve.toml")
    assert config.host == "127.0.0.1" and config.port == 9100
    assert config.token_file == Path("~/.stembridge/worker-token").expanduser().resolve()
    assert config.replicas.min == 1 and config.replicas.max == 2 and config.replicas.num_gpus == 1
    assert config.replicas.max_ongoing_requests == 4 and config.preload == ("musicgen-small",)
    assert config.model_options == {"device": "cuda"} and config.replicas.graceful_shutdown_s == 300


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_ray_config(_write(tmp_path, '[worker]\ntoken_file = "tok"\n'))
    assert config.token_file == (tmp_path / "tok").resolve() and config.state_dir == (tmp_path / "worker-state").resolve()
    rep = config.replicas
    assert (rep.min, rep.max, rep.initial, rep.num_gpus, rep.num_cpus) == (1, 1, 1, 0.0, 1.0)
    assert rep.target_ongoing_requests == rep.max_ongoing_requests == 4
    assert config.ray_address == "" and config.ray_num_cpus is None and config.host == "127.0.0.1"


@pytest.mark.parametrize(("text", "needles"), [
    ("[worker]\nport = 9100\n", ["[worker] token_file", "is required"]),
    ('[worker]\ntoken_file = "t"\nport = 70000\n', ["[worker] port", "between 1 and 65535", "70000"]),
    ('[worker]\ntoken_file = "t"\nport = "9100"\n', ["[worker] port", "whole number"]),
    ('[worker]\ntoken_file = "t"\nhots = "x"\n', ["[worker]", "unknown key(s) hots", "host"]),
    ('[workers]\ntoken_file = "t"\n', ["unknown section(s) workers", "worker"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\nmin = 3\nmax = 2\n', ["[replicas] min", "must not exceed max"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\nmax = 0\n', ["[replicas] max", "at least 1"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\nmin = 1\nmax = 2\ninitial = 3\n', ["[replicas] initial", "between min"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\nnum_gpus = -1\n', ["[replicas] num_gpus", "at least 0"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\nnum_gpus = true\n', ["[replicas] num_gpus", "a number"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\nmax_ongoing_requests = 0\n', ["max_ongoing_requests", "between 1"]),
    ('[worker]\ntoken_file = "t"\n[replicas]\ntarget_ongoing_requests = 0\n', ["target_ongoing_requests", "above 0"]),
    ('[worker]\ntoken_file = "t"\n[models]\npreload = "musicgen-small"\n', ["[models] preload", "list of model names"]),
    ('[worker]\ntoken_file = "t"\n[models]\noptions = 3\n', ["[models] options", "table"]),
    ('[worker]\ntoken_file = "t"\nkeep_hours = 0\n', ["[worker] keep_hours", "above 0"]),
    ('worker = 3\n', ["[worker]", "must be a table"]),
])
def test_a_wrong_value_is_named_with_its_section_and_key(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RayConfigError) as info:
        load_ray_config(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_a_missing_or_broken_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RayConfigError, match="cannot read the Ray Serve configuration"):
        load_ray_config(tmp_path / "nope.toml")
    with pytest.raises(RayConfigError, match="is not valid TOML"):
        load_ray_config(_write(tmp_path, "[worker\n"))


def test_the_token_is_read_when_asked_and_an_unusable_file_is_named(tmp_path: Path) -> None:
    config = parse_ray_config({"worker": {"token_file": "tok"}}, tmp_path / "c.toml")
    with pytest.raises(RayConfigError, match="token_file .* cannot be read"):
        config.token()
    (tmp_path / "tok").write_text("\n")
    with pytest.raises(RayConfigError, match="is empty"):
        config.token()
    (tmp_path / "tok").write_text("  s3cret \n")
    assert config.token() == "s3cret"


def test_replicas_the_cluster_cannot_place_are_refused(tmp_path: Path) -> None:
    config = parse_ray_config({"worker": {"token_file": "t"}, "replicas": {"num_gpus": 1}}, tmp_path / "c.toml")
    with pytest.raises(RayConfigError, match=r"num_gpus = 1 per replica, but this Ray cluster has 0 GPU"):
        check_resources(config, {"CPU": 8.0})
    check_resources(config, {"CPU": 8.0, "GPU": 1.0})
    cpu_heavy = parse_ray_config({"worker": {"token_file": "t"}, "replicas": {"num_cpus": 4}}, tmp_path / "c.toml")
    with pytest.raises(RayConfigError, match="num_cpus = 4"):
        check_resources(cpu_heavy, {"CPU": 2.0})


def test_the_ray_modules_import_neither_ray_nor_torch_until_they_serve() -> None:
    import subprocess
    import sys

    code = ("import sys, bridge.gpuworker.ray_serve, bridge.gpuworker.ray_config, bridge.cli.ray_worker, "
            "bridge.cli.main; print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"

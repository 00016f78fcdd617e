"""``stembridge worker --ray CONFIG``: the worker scaled out on Ray Serve (docs/worker-api.md).

Everything is set in the TOML file (:mod:`bridge.gpuworker.ray_config`, an example in
``examples/ray-serve.toml``); the standalone worker's options do not apply and are refused.
The command starts a local Ray cluster on loopback (or joins the one at ``[ray] address``),
deploys the application with Serve's HTTP proxy on ``host:port`` and blocks until Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import socket
import sys
from pathlib import Path

from bridge.gpuworker.ray_config import RayConfigError, RayServeConfig, load_ray_config

log = logging.getLogger(__name__)

EXIT_INPUT = 2
#: Options of ``stembridge worker`` that the config file replaces: (flag, dest, where it is set).
_REPLACED = (
    ("--listen", "listen", "[worker] host and port"),
    ("--token-file", "token_file", "[worker] token_file"),
    ("--state-dir", "state_dir", "[worker] state_dir"),
    ("--model-path", "model_path", "[models.options] model_path"),
    ("--adapter", "adapter", "[models.options] adapter"),
    ("--device", "device", "[models.options] device"),
    ("--decoder", "decoder", "[models.options] decoder"),
    ("--max-upload-mb", "max_upload_mb", "[worker] max_upload_mb"),
    ("--max-queue", "max_queue", "[worker] max_queue"),
    ("--keep-hours", "keep_hours", "[worker] keep_hours"),
    ("--name", "name", "[worker] name"),
)


def _check_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    for flag, dest, where in _REPLACED:
        if getattr(args, dest, None) != parser.get_default(dest):
            raise RayConfigError(f"{flag} does not apply with --ray; set {where} in {args.ray} instead")
    if getattr(args, "ssl_keyfile", None) or getattr(args, "ssl_certfile", None):
        raise RayConfigError("--ssl-keyfile/--ssl-certfile do not apply with --ray: Serve's HTTP proxy speaks "
                             "plain HTTP; put TLS in front of it (docs/worker-api.md, 'TLS')")


def _check_ready(config: RayServeConfig) -> None:
    """Refuse now what would fail later: no Ray Serve installed, no token, no state folder, a busy port."""
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.serve") is None:
        raise RayConfigError("Ray Serve is not installed here; install it with `pip install 'stembridge[ray]'`")
    config.token()
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RayConfigError(f"{config.source}: cannot create [worker] state_dir {config.state_dir}: "
                             f"{exc.strerror or exc}") from None
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            raise RayConfigError(f"cannot listen on {config.host}:{config.port} ({exc.strerror or exc}); another "
                                 f"program may use that port: choose another in {config.source} ([worker] port)") from None


def cmd_ray_worker(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Serve the worker on Ray Serve until Ctrl-C.

    Args:
        args: the parsed ``stembridge worker`` options (``args.ray`` is the config file).
        parser: the ``worker`` subcommand's parser (an option away from its default was given).

    Returns:
        0 after Ctrl-C, 2 for a problem with the config or the options (the message says which).
    """
    from bridge.transports.osc import is_loopback

    try:
        _check_options(args, parser)
        config = load_ray_config(Path(args.ray))
        _check_ready(config)
    except RayConfigError as exc:
        sys.stderr.write(f"stembridge: {exc}\n")
        return EXIT_INPUT
    if not is_loopback(config.host):
        log.warning("the token travels in the clear on %s; put TLS in front (docs/worker-api.md, 'TLS')",
                    config.host)
    from bridge.gpuworker.ray_serve import serve_forever

    def announce(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        serve_forever(config, announce=announce)
    except KeyboardInterrupt:
        pass
    except RayConfigError as exc:
        sys.stderr.write(f"stembridge: {exc}\n")
        return EXIT_INPUT
    except RuntimeError as exc:  # Serve could not deploy (a replica failed to start: its log says why)
        sys.stderr.write(f"stembridge: the Ray Serve worker did not start: {exc}\n")
        return 1
    sys.stdout.write("stembridge worker stopped\n")
    return 0

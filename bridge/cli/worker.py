"""``stembridge worker``: serve the generation stage to bridges on other machines (docs/worker-api.md).

``bridge.cli.main`` calls :func:`add_worker_command`. The worker is the web app of
:mod:`bridge.gpuworker.app` with a :class:`~bridge.gpuworker.local_executor.LocalExecutor`
(a generator process on this machine), served by uvicorn; Ctrl-C stops it (uvicorn's signal
handling), and jobs still queued or running then run again at the next start.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import socket
import sys
from pathlib import Path

from bridge.transports.osc import is_loopback

log = logging.getLogger(__name__)

EXIT_INPUT = 2
DEFAULT_LISTEN = "127.0.0.1:9100"
#: Environment variable holding the token when no --token-file is given.
TOKEN_ENV = "STEMBRIDGE_WORKER_TOKEN"
_MAKE_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))" > token'


class WorkerArgsError(ValueError):
    """A ``stembridge worker`` option that cannot be used; the message says how to fix it."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port).

    Raises:
        WorkerArgsError: not of that form, or the port is not 0-65535.
    """
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise WorkerArgsError(f"--listen {text!r} must be HOST:PORT, e.g. {DEFAULT_LISTEN} or 0.0.0.0:9100")
    return host, int(port_text)


def read_token(token_file: str | None) -> str | None:
    """The token from ``token_file`` (first line, stripped), else from ``STEMBRIDGE_WORKER_TOKEN``.

    Raises:
        WorkerArgsError: the file cannot be read or is empty.
    """
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WorkerArgsError(f"cannot read --token-file {token_file}: {exc.strerror or exc}; "
                                  f"make one with `{_MAKE_TOKEN}`") from None
        if not token:
            raise WorkerArgsError(f"--token-file {token_file} is empty; make a token with `{_MAKE_TOKEN}`")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or None


def _check_tls(args: argparse.Namespace) -> None:
    if bool(args.ssl_keyfile) != bool(args.ssl_certfile):
        raise WorkerArgsError("--ssl-keyfile and --ssl-certfile go together; give both or neither")
    for flag, value in (("--ssl-keyfile", args.ssl_keyfile), ("--ssl-certfile", args.ssl_certfile)):
        if value and not Path(value).is_file():
            raise WorkerArgsError(f"{flag} {value} is not a file")


def _model_options(args: argparse.Namespace) -> dict[str, str]:
    """The generator options given on the command line (as ``stembridge generate`` passes them)."""
    return {k: getattr(args, k) for k in ("model_path", "adapter", "device", "decoder") if getattr(args, k, None)}


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise WorkerArgsError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                              "another program may use that port: choose another with --listen") from None
    sock.set_inheritable(True)
    return sock


def _check_installed() -> None:
    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise WorkerArgsError(f"the worker needs {', '.join(missing)}, which is not installed here; "
                              "install the worker extra: pip install 'stembridge[worker]'")


def cmd_worker(args: argparse.Namespace) -> int:
    """``stembridge worker``: serve until Ctrl-C."""
    if args.ray:
        from bridge.cli.ray_worker import cmd_ray_worker

        return cmd_ray_worker(args, args.worker_parser)
    try:
        if not args.state_dir:
            raise WorkerArgsError("--state-dir is required: the folder for uploaded files, jobs and results "
                                  "(or give --ray CONFIG, which sets it)")
        _check_installed()
        host, port = parse_listen(args.listen)
        token = read_token(args.token_file)
        if token is None:
            where = "this machine only" if is_loopback(host) else f"the network ({host})"
            raise WorkerArgsError(
                f"the worker needs a token even when it listens on {where}: every call carries one. "
                f"Make one with `{_MAKE_TOKEN}` and pass --token-file token (or set {TOKEN_ENV})")
        _check_tls(args)
        for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-queue", args.max_queue),
                            ("--keep-hours", args.keep_hours)):
            if value <= 0:
                raise WorkerArgsError(f"{flag} must be positive, not {value}")
        state_dir = Path(args.state_dir).expanduser().resolve()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkerArgsError(f"cannot create --state-dir {state_dir}: {exc.strerror or exc}") from None
        sock = _bind(host, port)
    except WorkerArgsError as exc:
        sys.stderr.write(f"stembridge: {exc}\n")
        return EXIT_INPUT
    return _serve(args, sock, token, state_dir)


def _serve(args: argparse.Namespace, sock: socket.socket, token: str, state_dir: Path) -> int:
    import uvicorn

    from bridge.gpuworker.app import MiB, WorkerConfig, build_app
    from bridge.gpuworker.local_executor import LocalExecutor

    config = WorkerConfig(
        state_dir=state_dir, token=token, max_upload_bytes=int(args.max_upload_mb * MiB),
        max_queue=args.max_queue, keep_hours=args.keep_hours,
    )
    if args.name:
        config.name = args.name
    executor = LocalExecutor(_model_options(args))
    executor.start()  # the generator process imports while uvicorn starts
    app = build_app(config, executor)
    host, port = sock.getsockname()[:2]
    tls = bool(args.ssl_certfile)
    if not tls and not is_loopback(host):
        log.warning("the token travels in the clear on %s; put TLS in front (docs/worker-api.md, "
                    "'TLS') or pass --ssl-keyfile/--ssl-certfile", host)
    server = uvicorn.Server(uvicorn.Config(
        app, log_config=None, lifespan="on", ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile,
        timeout_graceful_shutdown=5,
    ))
    shown = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"stembridge worker {config.name} serving on {'https' if tls else 'http'}://{shown}:{port} "
                     f"(state {state_dir}; Ctrl-C to stop)\n")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the Ctrl-C
        pass
    finally:
        sock.close()
    sys.stdout.write("stembridge worker stopped\n")
    return 0


def add_worker_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``worker`` to a CLI's subparsers."""
    p = subparsers.add_parser("worker", help="serve generation to bridges on other machines (GPU worker)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN})")
    p.add_argument("--token-file", default=None, help=f"file holding the bearer token (or set {TOKEN_ENV})")
    p.add_argument("--state-dir", default=None, help="folder for uploaded files, jobs and results (required)")
    p.add_argument("--ray", metavar="CONFIG", default=None,
                   help="serve on Ray Serve, scaled out over replicas, as set in CONFIG (a TOML file like "
                        "examples/ray-serve.toml); the other options are set there")
    p.add_argument("--model-path", help="local folder with the model's weights (neural models)")
    p.add_argument("--adapter", help="Coco-Mulla adapter checkpoint (.pth) for the cocomulla model")
    p.add_argument("--device", help="torch device for the models, e.g. cuda, cuda:1 or cpu (default: the model's)")
    p.add_argument("--decoder", choices=("stock", "fast"), default=None,
                   help="MusicGen decoding loop for every job (default: fast; stock for comparison)")
    p.add_argument("--max-upload-mb", type=float, default=512, help="largest file accepted, MiB (default 512)")
    p.add_argument("--max-queue", type=int, default=16, help="most jobs queued or running at once (default 16)")
    p.add_argument("--keep-hours", type=float, default=24, help="hours results stay on the worker (default 24)")
    p.add_argument("--name", default=None, help="the worker's name in answers (default: the host name)")
    p.add_argument("--ssl-keyfile", default=None, help="TLS private key (with --ssl-certfile): serve https")
    p.add_argument("--ssl-certfile", default=None, help="TLS certificate chain (with --ssl-keyfile)")
    # SUPPRESS: the top-level ``stembridge -v worker`` must not be reset to False by this subparser
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more to the console")
    p.set_defaults(func=cmd_worker)
    p.set_defaults(worker_parser=p)  # --ray tells the options given from their defaults

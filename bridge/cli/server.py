"""Command-line subcommands of the bridge: ``serve``, ``status``, ``cancel`` and ``midi``.

``bridge.cli.main`` calls :func:`add_server_commands`; each subcommand's handler is stored as the
parser default ``func`` and returns an exit code. ``python -m bridge.cli.server ...`` runs
them on their own.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.job.layout import ProjectLayout, is_job_id
from conditioning.io.atomic import write_text_atomic

if TYPE_CHECKING:
    from bridge.remote.client import WorkerSettings

log = logging.getLogger(__name__)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _project(args: argparse.Namespace) -> Path:
    return Path(args.project_dir).expanduser().resolve()


def worker_settings(args: argparse.Namespace) -> WorkerSettings | None:
    """The remote worker ``--worker URL`` names (token from the file or STEMBRIDGE_WORKER_TOKEN), or None.

    Raises:
        ValueError: a malformed URL, or no readable token (the message says how to fix it).
    """
    from bridge.remote.client import WorkerSettings

    if not args.worker:
        if args.worker_token_file:
            raise ValueError("--worker-token-file needs --worker URL")
        return None
    token = os.environ.get("STEMBRIDGE_WORKER_TOKEN", "")
    if args.worker_token_file:
        path = Path(args.worker_token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the worker token file {str(path)!r} ({exc}); copy the worker's token "
                             "file to this machine and pass its path") from None
    return WorkerSettings(url=args.worker, token=token, wait_s=args.worker_wait_s)


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    """``--worker URL``, ``--worker-token-file FILE`` and ``--worker-wait-s S`` (serve, generate, demo)."""
    p.add_argument("--worker", default=None, metavar="URL",
                   help="run generation on a remote worker (stembridge worker), e.g. http://gpu-box:9100")
    p.add_argument("--worker-token-file", default=None, metavar="FILE",
                   help="file holding the worker's token (or set STEMBRIDGE_WORKER_TOKEN)")
    p.add_argument("--worker-wait-s", type=float, default=60.0, metavar="S",
                   help="how long a job waits for an unreachable worker before it fails (default 60)")


def cmd_serve(args: argparse.Namespace) -> int:
    """``stembridge serve``: run the bridge until Ctrl-C."""
    from bridge.app import ServerBusyError, ServerConfig, serve
    from bridge.transports.osc import PortBusyError

    token = args.token or os.environ.get("STEMBRIDGE_TOKEN") or None
    try:
        worker = worker_settings(args)
    except ValueError as exc:
        _err(f"stembridge: {exc}")
        return 2
    config = ServerConfig(
        project_dir=_project(args), host=args.host, osc_port=args.osc_port, reply_port=args.reply_port,
        allow_remote=args.allow_remote, token=token, max_queue=args.max_queue,
        midi_map=Path(args.midi_map).resolve() if args.midi_map else None,
        model_options={"decoder": args.decoder} if args.decoder else {},
        worker=worker,
    )
    if args.runner:
        config.runner = args.runner

    def ready(server: object) -> None:
        port = getattr(server, "osc_port", args.osc_port)
        _out(f"stembridge bridge serving {config.project_dir} on OSC {args.host}:{port} (Ctrl-C to stop)")

    try:
        return serve(config, ready=ready)
    except (PortBusyError, ServerBusyError, ValueError) as exc:
        _err(f"stembridge: {exc}")
        return 2


def _format_status(status: dict[str, object], *, bridge_running: bool) -> list[str]:
    lines = []
    age = time.time() - float(status.get("updated", 0) or 0)  # type: ignore[arg-type]
    if not bridge_running:
        lines.append(f"(no bridge is running for this project; this is what the last one wrote {age:.0f} s ago)")
    elif age > 10:
        lines.append(f"(status.json was last updated {age:.0f} s ago; the bridge may be stuck)")
    running = status.get("running") or []
    queued = status.get("queued") or []
    finished = status.get("finished") or []
    for r in running:  # type: ignore[attr-defined]
        where = f"  on {r['worker']}" if r.get("worker") else ""
        lines.append(f"running   {r['job_id']}  {100 * float(r['progress']):5.1f}%  {r['message']}{where}")
    for q in queued:  # type: ignore[attr-defined]
        note = "  (interrupted, runs again)" if q.get("interrupted") else ""
        lines.append(f"queued    {q['job_id']}  {q.get('model', '')}  from {q.get('source', '')}{note}")
    for f in finished:  # type: ignore[attr-defined]
        detail = f["manifest"] if f["status"] == "done" else f"{f['error']['code']}: {f['error']['message']}"
        where = f"  (on {f['worker']})" if f.get("worker") not in (None, "local") else ""
        lines.append(f"{f['status']:<9} {f['job_id']}  {detail}{where}")
    if not (running or queued or finished):
        lines.append("no jobs yet")
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    """``stembridge status``: show what the project's bridge is doing (from status.json)."""
    from bridge.server.status import read_status

    try:
        status = read_status(_project(args))
    except ValueError as exc:
        _err(f"stembridge: {exc}")
        return 1
    if status is None:
        _err(f"stembridge: no bridge has run for {_project(args)} yet; start one with `stembridge serve --project-dir ...`")
        return 1
    if args.json:
        _out(json.dumps(status, indent=2))
    else:
        for line in _format_status(status, bridge_running=_bridge_pid(ProjectLayout(_project(args))) is not None):
            _out(line)
    return 0


def _bridge_pid(layout: ProjectLayout) -> int | None:
    """The pid of the bridge serving this project now, or None when none is running.

    A running bridge holds an exclusive ``flock`` on ``stembridge/server.lock`` and writes
    ``pid N`` into it (see ``bridge.app``); the file stays behind when the bridge stops, so
    the pid must be alive and the lock held.
    """
    try:
        text = layout.lock_file.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.match(r"pid (\d+)", text.strip())
    if match is None:
        return None
    pid = int(match.group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, owned by another user
        pass
    try:
        with open(layout.lock_file, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)  # only free when no bridge holds it
            fcntl.flock(fh, fcntl.LOCK_UN)
    except BlockingIOError:
        return pid
    except OSError:
        return None
    return None  # the pid was reused by another process


def _job_state(layout: ProjectLayout, job_id: str) -> str | None:
    """What the project knows of ``job_id``: its state in the queue, status.json or outbox, or None."""
    from bridge.job.takes import read_manifest
    from bridge.server.queue import read_job_state
    from bridge.server.status import read_status

    state = read_job_state(layout.queue_db, job_id)
    if state is not None:
        return state
    try:
        status = read_status(layout.project_dir) or {}
    except ValueError:
        status = {}
    for kind in ("running", "queued"):
        if any(e.get("job_id") == job_id for e in status.get(kind, []) if isinstance(e, dict)):
            return kind
    for entry in status.get("finished", []):
        if isinstance(entry, dict) and entry.get("job_id") == job_id:
            return str(entry.get("status"))
    manifest = read_manifest(layout.manifest_path(job_id)) if layout.manifest_path(job_id).is_file() else None
    return manifest.status if manifest is not None else None


def _error_text(path: Path, deadline: float) -> dict[str, str]:
    """The ``code:``/``job_id:``/``message:`` fields of a mailbox ``.error.txt`` (waits until written)."""
    text = ""
    while True:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        if text.strip() or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cmd_cancel(args: argparse.Namespace) -> int:
    """``stembridge cancel JOB``: ask the project's running bridge to cancel a job, and wait for it.

    Exit status: 0 cancelled (or accepted and stopping); 2 not a job id, or no such job in the
    project; 1 the job already finished, no bridge is running, or the bridge refused.
    """
    from bridge.server.queue import FINAL_STATES
    from bridge.server.status import read_status

    if not is_job_id(args.job_id):
        _err(f"stembridge: {args.job_id!r} is not a job id (see `stembridge status`)")
        return 2
    project = _project(args)
    layout = ProjectLayout(project)
    if not project.is_dir():
        _err(f"stembridge: {str(project)!r} is not a folder; give the DAW project folder with --project-dir")
        return 2
    state = _job_state(layout, args.job_id)
    if state is None:
        _err(f"stembridge: there is no job {args.job_id} in {project}; `stembridge status --project-dir {project}` "
             "lists its jobs")
        return 2
    if state in FINAL_STATES:
        _err(f"stembridge: job {args.job_id} already finished ({state}); there is nothing to cancel")
        return 1
    pid = _bridge_pid(layout)
    if pid is None:
        _err(f"stembridge: no bridge is running for {project}, so nothing was cancelled; job {args.job_id} is "
             f"{state} and runs when a bridge starts (`stembridge serve --project-dir {project}`, then cancel it)")
        return 1
    name = f"cancel-{args.job_id}-{secrets.token_hex(3)}.json"
    write_text_atomic(layout.inbox / name, json.dumps({"version": 1, "action": "cancel", "job_id": args.job_id}))
    deadline = time.monotonic() + args.wait
    picked_up = False
    while time.monotonic() < deadline:
        failed = layout.inbox / "failed" / name
        if failed.exists():
            fields = _error_text(failed.with_name(name.replace(".json", ".error.txt")), deadline + 2.0)
            message = fields.get("message") or "the bridge gave no reason"
            _err(f"stembridge: could not cancel {args.job_id}: {message}")
            return 2 if fields.get("code") == "unknown_job" else 1
        picked_up = picked_up or (layout.inbox / "done" / name).exists()
        if picked_up:
            status = read_status(layout.project_dir) or {}
            for entry in status.get("finished", []):
                if entry.get("job_id") == args.job_id:
                    if entry.get("status") == "cancelled":
                        _out(f"{args.job_id}: cancelled")
                        return 0
                    _err(f"stembridge: job {args.job_id} finished ({entry.get('status')}) before the cancel took effect")
                    return 1
        time.sleep(0.1)  # the CLI waits for the bridge; no transport thread here
    if picked_up:
        _out(f"{args.job_id}: cancel accepted by the bridge (pid {pid}); the job stops at its next step "
             "(see `stembridge status`)")
        return 0
    _err(f"stembridge: the bridge (pid {pid}) has not picked up the cancel of {args.job_id} within {args.wait:g} s; "
         f"the request waits in {layout.inbox} and is handled when the bridge reads its inbox")
    return 1


def cmd_midi_ports(args: argparse.Namespace) -> int:
    """``stembridge midi ports``: list MIDI input ports."""
    from bridge.transports.midi import list_input_ports

    try:
        names = list_input_ports()
    except OSError as exc:
        _err(f"stembridge: MIDI is not available here: {exc}; MIDI triggers need a MIDI system "
             "(on Linux the ALSA sequencer: `sudo modprobe snd-seq`)")
        return 1
    if not names:
        _out("no MIDI input ports; connect a controller")
    for name in names:
        _out(name)
    return 0


def cmd_midi_learn(args: argparse.Namespace) -> int:
    """``stembridge midi learn ACTION``: bind the next pressed note/CC to ACTION."""
    from bridge.transports.midi import learn, list_input_ports, load_mapping, save_binding

    mapping = Path(args.mapping).resolve() if args.mapping else ProjectLayout(_project(args)).root / "midi.toml"
    try:
        load_mapping(mapping)  # a broken mapping is reported before anyone presses a button
    except ValueError as exc:
        _err(f"stembridge: {exc}")
        return 2
    try:
        names = [n for n in list_input_ports() if args.port is None or args.port.lower() in n.lower()]
    except OSError as exc:
        _err(f"stembridge: MIDI is not available here ({exc})")
        return 1
    _out(f"press the button for {args.action!r} on {', '.join(names) or '(no ports)'} ...")
    try:
        binding = learn(args.action, names, timeout_s=args.timeout)
    except (ValueError, OSError) as exc:
        _err(f"stembridge: {exc}")
        return 1
    if binding is None:
        _err(f"stembridge: nothing was pressed within {args.timeout:g} s")
        return 1
    try:
        save_binding(mapping, binding)
    except (ValueError, OSError) as exc:  # edited meanwhile, or an unwritable folder
        _err(f"stembridge: the binding was not saved: {exc}")
        return 1
    channel = f" channel {binding.channel}" if binding.channel else ""
    _out(f"bound {binding.kind} {binding.number}{channel} on {binding.port!r} to {binding.action} in {mapping}")
    return 0


def add_server_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve``, ``status``, ``cancel`` and ``midi`` to a CLI's subparsers."""
    from bridge.transports.midi import ACTIONS

    p = subparsers.add_parser("serve", help="run the bridge next to the DAW (OSC, inbox, MIDI triggers)")
    p.add_argument("--project-dir", required=True, help="the DAW project folder")
    p.add_argument("--osc-port", type=int, default=9000, help="OSC UDP port (default 9000)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--reply-port", type=int, default=None, help="send OSC replies to this port on the sender's host")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (needs --token)")
    p.add_argument("--token", default=None, help="secret every request must carry (or STEMBRIDGE_TOKEN)")
    p.add_argument("--max-queue", type=int, default=100, help="most jobs waiting at once (default 100)")
    p.add_argument("--midi-map", default=None, help="MIDI trigger mapping (default <project>/stembridge/midi.toml)")
    p.add_argument("--decoder", choices=("stock", "fast"), default=None,
                   help="MusicGen decoding loop for every job (default: fast; stock for comparison)")
    add_worker_arguments(p)
    p.add_argument("--runner", default=None, help=argparse.SUPPRESS)
    # SUPPRESS: the top-level ``stembridge -v serve`` must not be reset to False by this subparser
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more to the console")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("status", help="show queued, running and finished jobs of a project")
    p.add_argument("--project-dir", default=".", help="the DAW project folder (default: this folder)")
    p.add_argument("--json", action="store_true", help="print status.json as is")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("job_id", metavar="JOB", help="the job id (see `stembridge status`)")
    p.add_argument("--project-dir", default=".", help="the DAW project folder (default: this folder)")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the outcome (default 5)")
    p.set_defaults(func=cmd_cancel)

    p = subparsers.add_parser("midi", help="MIDI controller triggers")
    midi = p.add_subparsers(dest="midi_command", required=True)
    q = midi.add_parser("ports", help="list MIDI input ports")
    q.set_defaults(func=cmd_midi_ports)
    q = midi.add_parser("learn", help="bind the next pressed note/CC to an action")
    q.add_argument("action", choices=ACTIONS, metavar="ACTION", help=f"one of: {', '.join(ACTIONS)}")
    q.add_argument("--project-dir", default=".", help="the DAW project folder (default: this folder)")
    q.add_argument("--mapping", default=None, help="mapping file (default <project>/stembridge/midi.toml)")
    q.add_argument("--port", default=None, help="listen only on ports whose name contains this")
    q.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    q.set_defaults(func=cmd_midi_learn)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one bridge subcommand (``python -m bridge.cli.server serve --project-dir DIR``)."""
    parser = argparse.ArgumentParser(prog="stembridge")
    add_server_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from bridge.cli.console import console_logging

    with console_logging(verbose=getattr(args, "verbose", False)):
        return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

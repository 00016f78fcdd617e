"""Command-line subcommands of the bridge: ``serve``, ``status``, ``cancel`` and ``midi``.

``bridge.cli.main`` calls :func:`add_server_commands`; each subcommand's handler is stored as the
parser default ``func`` and returns an exit code. ``python -m bridge.cli.server ...`` runs
them on their own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bridge.job.layout import ProjectLayout

log = logging.getLogger(__name__)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _project(args: argparse.Namespace) -> Path:
    return Path(args.project_dir).expanduser().resolve()


def cmd_serve(args: argparse.Namespace) -> int:
    """``stembridge serve``: run the bridge until Ctrl-C."""
    from bridge.app import ServerBusyError, ServerConfig, serve
    from bridge.transports.osc import PortBusyError

    token = args.token or os.environ.get("STEMBRIDGE_TOKEN") or None
    config = ServerConfig(
        project_dir=_project(args), host=args.host, osc_port=args.osc_port, reply_port=args.reply_port,
        allow_remote=args.allow_remote, token=token, max_queue=args.max_queue,
        midi_map=Path(args.midi_map).resolve() if args.midi_map else None,
        model_options={"decoder": args.decoder} if args.decoder else {},
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


def _format_status(status: dict[str, object]) -> list[str]:
    lines = []
    age = time.time() - float(status.get("updated", 0) or 0)  # type: ignore[arg-type]
    if age > 10:
        lines.append(f"(status.json was last updated {age:.0f} s ago; the bridge may not be running)")
    running = status.get("running") or []
    queued = status.get("queued") or []
    finished = status.get("finished") or []
    for r in running:  # type: ignore[attr-defined]
        lines.append(f"running   {r['job_id']}  {100 * float(r['progress']):5.1f}%  {r['message']}")
    for q in queued:  # type: ignore[attr-defined]
        note = "  (interrupted, runs again)" if q.get("interrupted") else ""
        lines.append(f"queued    {q['job_id']}  {q.get('model', '')}  from {q.get('source', '')}{note}")
    for f in finished:  # type: ignore[attr-defined]
        detail = f["manifest"] if f["status"] == "done" else f"{f['error']['code']}: {f['error']['message']}"
        lines.append(f"{f['status']:<9} {f['job_id']}  {detail}")
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
        for line in _format_status(status):
            _out(line)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """``stembridge cancel JOB``: drop a cancel control file in the inbox and wait for the outcome."""
    from bridge.server.service import JOB_ID
    from bridge.server.status import read_status

    if not JOB_ID.match(args.job_id):
        _err(f"stembridge: {args.job_id!r} is not a job id (see `stembridge status`)")
        return 2
    layout = ProjectLayout(_project(args)).ensure()
    name = f"cancel-{args.job_id}-{secrets.token_hex(3)}.json"
    tmp = layout.inbox / f".{name}.tmp"
    tmp.write_text(json.dumps({"version": 1, "action": "cancel", "job_id": args.job_id}), encoding="utf-8")
    tmp.replace(layout.inbox / name)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if (layout.inbox / "failed" / name).exists():
            err = (layout.inbox / "failed" / name.replace(".json", ".error.txt"))
            text = err.read_text(encoding="utf-8") if err.exists() else ""
            _err(f"stembridge: could not cancel {args.job_id}: {text.strip()}")
            return 1
        if not (layout.inbox / "done" / name).exists():  # not picked up yet
            time.sleep(0.1)
            continue
        status = read_status(layout.project_dir) or {}
        for entry in status.get("finished", []):
            if entry.get("job_id") == args.job_id:
                _out(f"{args.job_id}: {entry.get('status')}")
                return 0 if entry.get("status") == "cancelled" else 1
        time.sleep(0.2)  # the CLI waits for the bridge; no transport thread here
    _out(f"cancel requested for {args.job_id} (the bridge picks it up from the inbox)")
    return 0


def cmd_midi_ports(args: argparse.Namespace) -> int:
    """``stembridge midi ports``: list MIDI input ports."""
    from bridge.transports.midi import list_input_ports

    try:
        names = list_input_ports()
    except OSError as exc:
        _err(f"stembridge: MIDI is not available here ({exc})")
        return 1
    if not names:
        _out("no MIDI input ports; connect a controller")
    for name in names:
        _out(name)
    return 0


def cmd_midi_learn(args: argparse.Namespace) -> int:
    """``stembridge midi learn ACTION``: bind the next pressed note/CC to ACTION."""
    from bridge.transports.midi import learn, list_input_ports, save_binding

    mapping = Path(args.mapping).resolve() if args.mapping else ProjectLayout(_project(args)).root / "midi.toml"
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
    save_binding(mapping, binding)
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
    p.add_argument("--runner", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true", help="log to the console too")
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
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

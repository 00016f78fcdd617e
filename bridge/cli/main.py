"""The ``stembridge`` command line.

Exit status: 0 on success, 2 for a problem with the input (the message says what and how to fix
it), 1 for an unexpected failure, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge.cli.analyze import analyze_file, summary_text
from bridge.cli.cocomulla import add_cocomulla_commands
from bridge.cli.console import console_logging
from bridge.cli.report import add_report_command
from bridge.cli.server import add_server_commands
from bridge.cli.worker import add_worker_command
from bridge.job.request import RequestError, decode_request, parse_request

EXIT_INPUT = 2


def _progress_runner(quiet: bool) -> Any:
    """A context manager yielding a (fraction, message) callback drawing a rich progress bar."""
    from contextlib import contextmanager

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    @contextmanager
    def runner() -> Any:
        if quiet:
            yield lambda f, m: None
            return
        with Progress(
            TextColumn("[bold]{task.description:<48}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), transient=False, console=_console(stderr=True),
        ) as bar:
            task = bar.add_task("starting", total=1.0)
            yield lambda f, m: bar.update(task, completed=f, description=m[:48])

    return runner()


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # a pipe or a log file gets wide rows instead of rich's 80-column default
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 160)


def print_placements(manifest: dict[str, Any]) -> None:
    """Print a table of what was placed where."""
    from rich.table import Table

    folders = sorted({p["file"].rsplit("/", 1)[0] for p in manifest["placements"]})
    table = Table(title=f"job {manifest['job_id']} — {manifest['model']}, seed {manifest['seed']}")
    for col in ("section", "bars", "start (s)", "length (s)", "track", "take", "file"):
        table.add_column(col, no_wrap=col == "file")
    for p in manifest["placements"]:
        table.add_row(
            p["section"], f"{p['start_bar']}–{p['end_bar']}", f"{p['start_s']:.3f}", f"{p['length_s']:.3f}",
            p["track"], str(p["take"]), p["file"].rsplit("/", 1)[-1],
        )
    console = _console()
    console.print(table)
    console.print(f"files in: {', '.join(folders)}")


def _run(request_data: Any, base_dir: Path, args: argparse.Namespace) -> int:
    from bridge.job.pipeline import run_request
    from models.base import GenerationCancelled, ModelUnavailableError
    from models.registry import missing_requirements, unsupported_options

    try:
        request = parse_request(request_data, base_dir=base_dir)
        options = {k: getattr(args, k) for k in ("model_path", "adapter") if getattr(args, k, None)}
        if getattr(args, "decoder", None):
            options["decoder"] = args.decoder
        if options and missing_requirements(request.model) == [] and (
                unsupported := unsupported_options(request.model, options)):
            flags = ", ".join("--" + k.replace("_", "-") for k in unsupported)
            raise RequestError("schema", f"{flags} does not apply to model {request.model!r}; "
                                         "leave it out or choose a model that takes it (stembridge models)")
        with _progress_runner(args.quiet) as progress:
            result = run_request(request, progress=progress, model_options=options)
    except (RequestError, ModelUnavailableError) as exc:
        print(f"stembridge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except GenerationCancelled:
        print("stembridge: cancelled; nothing was written", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.manifest, indent=2))
    else:
        print_placements(result.manifest)
        print(f"manifest: {result.manifest_path}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """``stembridge generate REQUEST.json``."""
    path = Path(args.request)
    try:
        data = decode_request(path, what=f"request {path}")
    except RequestError as exc:
        print(f"stembridge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    return _run(data, path.resolve().parent, args)


def cmd_demo(args: argparse.Namespace) -> int:
    """``stembridge demo [--out DIR]``: run the example session."""
    from bridge.cli.demo import bundled_session, prepare_demo

    try:
        session = Path(args.examples) if args.examples else bundled_session()
        request_data, project_dir = prepare_demo(session, Path(args.out))
    except ValueError as exc:
        print(f"stembridge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.model:
        request_data["model"] = args.model
    if args.seed is not None:
        request_data["seed"] = args.seed
    print(f"demo project: {project_dir}", file=sys.stderr)
    return _run(request_data, project_dir, args)


def cmd_analyze(args: argparse.Namespace) -> int:
    """``stembridge analyze PATH --role chords|drums|melody [--json]``."""
    try:
        result = analyze_file(Path(args.path), args.role)
    except ValueError as exc:
        print(f"stembridge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(summary_text(result, args.role))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``stembridge models``: list generators and whether they can run here."""
    from bridge.cli.models import model_rows, models_json, print_models

    rows = model_rows(model_path=args.model_path, adapter=args.adapter)
    if args.json:
        print(models_json(rows))
    else:
        print_models(rows, _console())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="stembridge", description="Co-create stems with AI inside your DAW.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="run one request v1 (JSON file)")
    p.add_argument("request", help="path of the request JSON")
    p.add_argument("--model-path", help="local folder with the model's weights (neural models)")
    p.add_argument("--decoder", choices=("stock", "fast"),
                   help="MusicGen decoding loop (default: fast; stock is transformers generate(), for comparison)")
    p.add_argument("--adapter", help="Coco-Mulla adapter checkpoint (.pth) for the cocomulla model")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="run the example session that ships with stembridge")
    p.add_argument("--out", default=str(Path.home() / "stembridge-demo"), help="project folder to create/use")
    p.add_argument("--examples", default=None,
                   help="folder holding session.toml and its material (default: the bundled example session)")
    p.add_argument("--model", help="generator to use instead of the session's")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for the take (default: a new one each run, recorded in the manifest)")
    p.add_argument("--model-path", help="local folder with the model's weights (neural models)")
    p.add_argument("--adapter", help="Coco-Mulla adapter checkpoint (.pth) for the cocomulla model")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("analyze", help="show what stembridge understands of a MIDI or audio file")
    p.add_argument("path", help="a .mid file (chords, drums, melody) or audio file (melody)")
    p.add_argument("--role", required=True, choices=("chords", "drums", "melody"))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("models", help="list generators and whether their weights are here")
    p.add_argument("--json", action="store_true")
    p.add_argument("--model-path", help="check this local model folder instead of the HuggingFace cache")
    p.add_argument("--adapter", help="Coco-Mulla adapter checkpoint (.pth) for the cocomulla model")
    p.set_defaults(func=cmd_models)

    add_server_commands(sub)
    add_worker_command(sub)
    add_report_command(sub)
    add_cocomulla_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stembridge`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # the console shows warnings and job events (everything with -v); the server's log file gets INFO
    try:
        with console_logging(verbose=args.verbose):
            return int(args.func(args))
    except KeyboardInterrupt:
        print("stembridge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""``stembridge report JOB [--project-dir DIR]``: draw a finished job's session report again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_INPUT = 2


def _job_and_project(job: str, project_dir: str | None) -> tuple[str, Path]:
    """A job id, or a manifest path (``.../stembridge/outbox/<id>.json``) that names its project."""
    path = Path(job)
    if path.suffix == ".json" and path.parent.name == "outbox" and project_dir is None:
        return path.stem, path.resolve().parent.parent.parent
    return job, Path(project_dir) if project_dir is not None else Path.cwd()


def cmd_report(args: argparse.Namespace) -> int:
    """Write ``report.html`` (or ``report-2.html``, ...) into the job's render folder; prints its path."""
    from bridge.job.report import report_for_job
    from bridge.job.request import RequestError

    job_id, project_dir = _job_and_project(args.job, args.project_dir)
    if not project_dir.is_dir():
        print(f"stembridge: project folder {project_dir} does not exist; pass --project-dir", file=sys.stderr)
        return EXIT_INPUT
    try:
        page = report_for_job(project_dir, job_id)
    except RequestError as exc:
        print(f"stembridge: {exc}", file=sys.stderr)
        return EXIT_INPUT
    print(page)
    return 0


def add_report_command(subparsers: Any) -> None:
    """Add ``report`` to the ``stembridge`` subcommands."""
    p = subparsers.add_parser("report", help="draw a finished job's session report (HTML + pictures)")
    p.add_argument("job", help="the job id (or the path of its manifest in stembridge/outbox)")
    p.add_argument("--project-dir", help="the DAW project folder (default: the current folder)")
    p.set_defaults(func=cmd_report)

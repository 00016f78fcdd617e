"""A short soak of a running bridge: fuzz, malformed mailbox files, SIGKILLs, a full disk; nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # about 30 s here: three server starts, a worker spawn after each kill, 15 real jobs
def test_a_short_soak_loses_no_job_and_leaves_no_partial_take() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak_bridge.py"), "--datagrams", "2000", "--files", "50",
         "--kills", "2", "--disk-full-s", "2", "--time-limit", "120", "--settle", "90"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    figures = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line and not line.startswith(" "))
    figures = {k.strip(): v.strip() for k, v in figures.items()}
    assert figures["datagrams tried"] == "2000" and figures["mailbox files tried"] == "50"
    assert figures["server kills"] == "2" and figures["server crashes"] == "0"
    assert figures["jobs lost"] == "0" and figures["partial takes"] == "0"
    assert int(figures["jobs accepted"]) >= 9 and figures["jobs finished"] == figures["jobs accepted"]
    assert "(0 unanswered)" in figures["ping p99"]

"""A bridge without a remote worker does not load the remote client at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_starting_a_bridge_imports_neither_the_remote_client_nor_the_pipeline() -> None:
    script = (
        "import sys, bridge.app, bridge.cli.main\n"
        "print(' '.join(m for m in ('httpx', 'bridge.remote.client', 'bridge.job.pipeline', 'torch')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""

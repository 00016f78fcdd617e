"""The worker's web side never imports torch: models load only in the generator process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_app_the_executor_and_the_cli_import_no_torch_and_no_ray() -> None:
    code = ("import sys, bridge.gpuworker.app, bridge.gpuworker.local_executor, bridge.cli.worker; "
            "print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"

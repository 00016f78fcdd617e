#!/usr/bin/env bash
# Set up (idempotent), then run the example session into ./demo-out (or the folder given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/stembridge demo --out "${1:-demo-out}"

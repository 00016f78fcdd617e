#!/usr/bin/env bash
# Set up (idempotent), then lint, type-check and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --neural --dev
echo "== ruff"; .venv/bin/ruff check bridge conditioning models daw_scripts tests benchmarks examples
echo "== mypy"; .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports --no-cache
echo "== pytest"; .venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Installs what the tests need (scripts/test-env.sh) and runs the quality gates and the tests.
# This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-env.sh
venv="${OPSMON_VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
echo "== ruff check";        ruff check .
echo "== ruff format";       ruff format --check .
echo "== mypy --strict";     mypy --strict monitor
echo "== pytest";            pytest -q -p no:cacheprovider "$@"

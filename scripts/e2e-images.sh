#!/usr/bin/env bash
# Build the end-to-end suite's images (tests/e2e/images.py) that are missing: debootstrapped
# Node (bookworm) and PostgreSQL+pgvector (trixie) bases, the database, the Next.js frontend
# and the backend's variants. Each image is tagged by a hash of its inputs, so a second run
# (or CI on a fresh clone, with the same Docker image store) builds nothing. Prints one line
# per image: built/cached and seconds. Needs docker, debootstrap, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${OPSMON_VENV:-.venv}"
exec "$venv/bin/python" -m tests.e2e.images

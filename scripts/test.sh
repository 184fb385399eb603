#!/usr/bin/env bash
# Set up everything the tests need, then run them: scripts/test.sh [pytest args].
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
exec .venv/bin/python -m pytest "$@"

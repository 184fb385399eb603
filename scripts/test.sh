#!/usr/bin/env bash
# Set up everything the tests need, then run them: scripts/test.sh [pytest args].
# PyTorch comes as for the demo: DRIVELAB_TORCH_SPEC, else `drivelab setup torch` (scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Create .venv (if missing) and install drivelab into it, editable.
#   scripts/bootstrap.sh          what the main job needs
#   scripts/bootstrap.sh test     plus the test tools
# DRIVELAB_TORCH_SPEC picks the PyTorch to install first (default torch==2.13.0);
# DRIVELAB_PYTHON the interpreter that creates the venv (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${DRIVELAB_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "error: drivelab needs Python >= 3.10 ($python is $("$python" --version 2>&1))" >&2; exit 1; }
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check --quiet)
# A venv's bundled pip can be years old; its resolver messages (which `setup torch` explains) differ.
"${pip[@]}" install --upgrade "pip>=24"
# torch first and pinned: an unpinned resolve may pull a multi-GB build this machine does not need.
"${pip[@]}" install "${DRIVELAB_TORCH_SPEC:-torch==2.13.0}"
if [ "${1:-}" = "test" ]; then
  "${pip[@]}" install -e ".[test]"
else
  "${pip[@]}" install -e .
fi

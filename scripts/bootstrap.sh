#!/usr/bin/env bash
# Create .venv (if missing), install drivelab into it, editable, then the PyTorch that fits.
#   scripts/bootstrap.sh          what the main job needs
#   scripts/bootstrap.sh test     plus the test tools
# PyTorch: with DRIVELAB_TORCH_SPEC set (a pip requirement, e.g. torch==2.13.0), exactly that,
# from your pip configuration (how CI and offline machines pin a build); otherwise
# `drivelab setup torch`, which plans the build for this machine's accelerator, installs it
# and verifies it, and keeps an installed torch that already passes its checks.
# DRIVELAB_PYTHON is the interpreter that creates the venv (default python3).
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
# drivelab does not depend on torch, so this never pulls one in (nor a multi-GB CUDA build).
if [ "${1:-}" = "test" ]; then
  "${pip[@]}" install -e ".[test]"
else
  "${pip[@]}" install -e .
fi
if [ -n "${DRIVELAB_TORCH_SPEC:-}" ]; then
  echo "PyTorch: installing $DRIVELAB_TORCH_SPEC (DRIVELAB_TORCH_SPEC)" >&2
  "${pip[@]}" install "$DRIVELAB_TORCH_SPEC"
else
  # Shows the plan, installs it and verifies it; a torch already in place that passes
  # the checks is kept, so a second run installs nothing and needs no network.
  .venv/bin/drivelab setup torch --yes --if-needed
fi

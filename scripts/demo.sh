#!/usr/bin/env bash
# Set up everything, then run the main job: drivelab demo [DIR] [options].
#   scripts/demo.sh                     workspace ./drivelab-demo
#   scripts/demo.sh ~/lab --epochs 3
# Offline? Point DRIVELAB_MNIST_MIRROR at a folder or server holding the MNIST .gz files.
# No access to download.pytorch.org? Set DRIVELAB_TORCH_SPEC (see scripts/bootstrap.sh).
# A relative workspace (./drivelab-demo, or the folder given) is where you run it from, not the clone.
set -euo pipefail
clone=$(cd "$(dirname "$0")/.." && pwd)
"$clone/scripts/bootstrap.sh"
exec "$clone/.venv/bin/drivelab" demo "$@"

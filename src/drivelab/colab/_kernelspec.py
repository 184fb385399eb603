"""The lab's kernel: a Jupyter kernelspec in the workspace's local state.

It is named ``python3``, like the kernel every notebook from Colab asks for,
and lives in ``.drivelab/jupyter/kernels/python3``; the lab puts
``.drivelab/jupyter`` first on ``JUPYTER_PATH``, so that only the servers
drivelab starts use it. Its command is ``python -m drivelab.colab._kernel``
with this interpreter, so kernels see the same drivelab, torch and packages.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from drivelab.workspace import WORKSPACE_ENV, Workspace

__all__ = ["KERNEL_NAME", "KernelSpecInfo", "install_kernel"]

KERNEL_NAME = "python3"
DISPLAY_NAME = "Python 3 (drivelab)"


@dataclass(frozen=True)
class KernelSpecInfo:
    name: str
    path: Path
    """The kernelspec folder (holding ``kernel.json``)."""
    jupyter_path: Path
    """The folder to put first on ``JUPYTER_PATH`` so that Jupyter finds the kernelspec."""
    argv: list[str]


def jupyter_dir(ws: Workspace) -> Path:
    return ws.state / "jupyter"


def install_kernel(ws: Workspace) -> KernelSpecInfo:
    """Write (or refresh) the workspace's kernelspec; returns where it is.

    Uses ipykernel's own writer (logos, metadata) with drivelab's command and
    ``$DRIVELAB_WORKSPACE`` set to the workspace. Replaced atomically.
    """
    from ipykernel.kernelspec import write_kernel_spec

    target = jupyter_dir(ws) / "kernels" / KERNEL_NAME
    argv = [sys.executable, "-m", "drivelab.colab._kernel", "-f", "{connection_file}"]
    overrides = {
        "argv": argv,
        "display_name": DISPLAY_NAME,
        "env": {WORKSPACE_ENV: str(ws.root)},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    current = target / "kernel.json"
    if current.is_file():
        try:
            spec = json.loads(current.read_text())
        except (OSError, ValueError):
            spec = {}
        if all(spec.get(k) == v for k, v in overrides.items()):
            return KernelSpecInfo(KERNEL_NAME, target, jupyter_dir(ws), argv)
    staging = Path(tempfile.mkdtemp(prefix=".kernel-", dir=target.parent))
    try:
        write_kernel_spec(staging / KERNEL_NAME, overrides=overrides)
        old = target.parent / f".{KERNEL_NAME}.old"
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(staging / KERNEL_NAME, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return KernelSpecInfo(KERNEL_NAME, target, jupyter_dir(ws), argv)

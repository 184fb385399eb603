"""Reading what a notebook run left in its cells; a workspace whose kernel Jupyter finds as the lab does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from drivelab.colab import install_kernel
from drivelab.workspace import Workspace, init_workspace

__all__ = ["lab_kernel_workspace", "text_of"]


def lab_kernel_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A fresh workspace with the lab's kernelspec, found by Jupyter (``python3``) as the lab finds it;
    no drivelab or Jupyter variable of the test run's, Jupyter's own folders in ``tmp_path``."""
    ws = init_workspace(tmp_path / "ws").workspace
    kernel = install_kernel(ws)
    for name in [k for k in os.environ if k.startswith(("DRIVELAB_", "JUPYTER"))]:
        monkeypatch.delenv(name)
    home = tmp_path / "jupyter"
    home.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(kernel.jupyter_path))
    for key, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        monkeypatch.setenv(key, str(home / sub))
    monkeypatch.setenv("NO_COLOR", "1")
    return ws


def text_of(cell: Any) -> str:
    """A code cell's printed text: its streams and its outputs' ``text/plain``, in order."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)

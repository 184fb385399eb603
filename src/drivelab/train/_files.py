"""Names of a run folder's checkpoint files, without importing PyTorch.

A checkpoint is ``ckpt-epochNNNN.pt`` plus a ``.sha256`` sidecar written after
it; the sidecar says the checkpoint is complete. The jobs layer watches run
folders through these functions, so it never pays for importing torch.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["checkpoint_path", "digest_path", "list_checkpoints", "latest_complete_checkpoint"]

_NAME = re.compile(r"ckpt-epoch(\d{4,})\.pt$")


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / f"ckpt-epoch{epoch:04d}.pt"


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every checkpoint file in ``run_dir``, newest first."""
    found = []
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        for path in run_dir.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def latest_complete_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """The newest checkpoint whose digest sidecar exists (its write finished).

    Cheap (no file is read); loading still verifies the digest.
    """
    for epoch, path in list_checkpoints(run_dir):
        if digest_path(path).is_file():
            return epoch, path
    return None

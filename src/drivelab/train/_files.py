"""Names of a run folder's checkpoint files, and how its files are written, without importing PyTorch.

A checkpoint is ``ckpt-epochNNNN.pt`` plus a ``.sha256`` sidecar written after
it; the sidecar says the checkpoint is complete. The jobs layer watches run
folders through these functions, so it never pays for importing torch.

Every file the training code writes into a run folder goes through
:func:`write_run_file`: published atomically, and a full disk is always the
same :class:`DiskFullError` naming the file and the space left.
"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from drivelab._atomic import write_bytes_atomic
from drivelab.errors import DiskFullError, TrainError

__all__ = ["checkpoint_path", "digest_path", "list_checkpoints", "latest_complete_checkpoint", "write_run_file"]

_FULL = (errno.ENOSPC, errno.EDQUOT)

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


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_run_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :mod:`drivelab._atomic`): the whole file, or nothing.

    Serialise to bytes first (``torch.save`` into a buffer, a figure into PNG
    bytes): a writer that fails half-way inside torch says only "unexpected
    pos", never why. Raises :class:`DiskFullError` when the disk or quota is
    full (a restart cannot fix it), :class:`TrainError` naming the file and
    the system's reason for any other failure.
    """
    path = Path(path)
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        if exc.errno in _FULL:
            raise DiskFullError(
                path,
                _free_bytes(path.parent),
                hint=f"free space where the run folder is ({path.parent}; this file needs {len(data):,} bytes), "
                "or use another --runs-dir; then rerun with the same --run to resume from its last checkpoint",
            ) from exc
        raise TrainError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the run folder is writable and the drive attached",
        ) from exc

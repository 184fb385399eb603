"""Checkpoints that are either complete or ignored.

Each checkpoint is ``ckpt-epochNNNN.pt`` (a plain ``torch.save`` file) plus a
``.sha256`` sidecar written after it. The ``.pt`` is published atomically
(temporary name, fsync, rename); the sidecar is the manifest that says it is
complete, so on storage without atomic rename (object stores) a reader still
never trusts a partial file. Loading walks from the newest checkpoint down,
skipping (with a reason) any whose digest is missing or wrong or that fails to
unpickle.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from drivelab._atomic import write_bytes_atomic, write_text_atomic
from drivelab.errors import CheckpointError
from drivelab.train._files import checkpoint_path, list_checkpoints
from drivelab.train._files import digest_path as _digest_path

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "load_latest_checkpoint", "LoadedCheckpoint", "list_checkpoints"]

CHECKPOINT_FORMAT = 1


@dataclass
class LoadedCheckpoint:
    state: dict[str, Any] | None
    path: Path | None
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Checkpoints found but not trusted, newest first, with the reason."""


def save_checkpoint(run_dir: Path, epoch: int, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write the checkpoint of ``epoch`` durably, then drop all but the newest ``keep``."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "epoch": epoch, **state}, buffer)
    data = buffer.getvalue()
    path = checkpoint_path(run_dir, epoch)
    try:
        write_bytes_atomic(path, data)
        write_text_atomic(_digest_path(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
    except OSError as exc:
        raise CheckpointError(
            f"cannot write checkpoint {path}: {exc.strerror or exc}",
            hint="check free space and that the drive is attached and writable",
        ) from exc
    for _, old in list_checkpoints(run_dir)[keep:]:
        for stale in (_digest_path(old), old):
            stale.unlink(missing_ok=True)
    return path


def _verify(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    digest_file = _digest_path(path)
    try:
        expected = digest_file.read_text().split()[0]
    except (OSError, IndexError):
        return None, "no digest (the write did not finish)"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        return None, f"SHA-256 {actual[:12]}... does not match the recorded {expected[:12]}... (truncated or corrupt)"
    try:
        # weights_only: a checkpoint on a shared drive must not be able to run code.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a checkpoint that does not unpickle is skipped, whatever the cause
        return None, f"cannot be loaded: {exc}"
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        return None, "not a drivelab checkpoint of a known format"
    return state, None


def load_latest_checkpoint(run_dir: Path) -> LoadedCheckpoint:
    """The newest complete checkpoint in ``run_dir``, and what was skipped to find it."""
    result = LoadedCheckpoint(state=None, path=None)
    for _, path in list_checkpoints(run_dir):
        state, reason = _verify(path)
        if state is not None:
            result.state, result.path = state, path
            return result
        result.skipped.append((path, reason or "unknown"))
    return result


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """The checkpoint at ``path``, verified; raises :class:`CheckpointError` if it is not complete."""
    state, reason = _verify(Path(path))
    if state is None:
        raise CheckpointError(f"cannot load checkpoint {path}: {reason}", hint="rerun: the run resumes from its newest complete checkpoint")
    return LoadedCheckpoint(state=state, path=Path(path))

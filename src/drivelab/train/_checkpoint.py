"""Checkpoints that are either complete or ignored.

Each checkpoint is ``ckpt-epochNNNN.pt`` (a plain ``torch.save`` file) plus a
``.sha256`` sidecar written after it. The ``.pt`` is published atomically
(temporary name, fsync, rename); the sidecar is the manifest that says it is
complete, so on storage without atomic rename (object stores) a reader still
never trusts a partial file. Loading walks from the newest checkpoint down,
skipping (with a reason) any whose digest is missing or wrong or that fails to
unpickle.

Several processes resume from one checkpoint, chosen by rank 0 (see
:func:`load_agreed_checkpoint`): on several machines each sees the drive
through its own mount and cache, which may not show yet the checkpoint rank 0
just wrote, or may show an older copy, so no rank trusts its own listing.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from drivelab.errors import CheckpointError, DiskFullError, TrainError
from drivelab.train._distributed import World
from drivelab.train._files import checkpoint_path, list_checkpoints, write_run_file
from drivelab.train._files import digest_path as _digest_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "save_model",
    "load_checkpoint",
    "load_latest_checkpoint",
    "load_agreed_checkpoint",
    "LoadedCheckpoint",
    "list_checkpoints",
]

CHECKPOINT_FORMAT = 1
_POLL = 0.25
"""Seconds between looks for a checkpoint that rank 0 chose and this rank's view of the drive does not show yet."""


@dataclass
class LoadedCheckpoint:
    state: dict[str, Any] | None
    path: Path | None
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Checkpoints found but not trusted, newest first, with the reason."""
    digest: str | None = None
    """The SHA-256 of the bytes loaded."""
    sent_to: list[int] = field(default_factory=list)
    """On rank 0 of several processes: the ranks that got the checkpoint's bytes from it, their own view of the
    drive not showing that file (with that digest) within the wait."""


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_model(path: Path, state_dict: dict[str, Any]) -> None:
    """Write the final weights (a ``torch.save`` file) atomically; a full disk is :class:`DiskFullError`."""
    write_run_file(path, _torch_bytes(state_dict))


def save_checkpoint(run_dir: Path, epoch: int, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write the checkpoint of ``epoch`` durably, then drop all but the newest ``keep``.

    A full disk raises :class:`DiskFullError`; any other failure to write it :class:`CheckpointError`.
    """
    data = _torch_bytes({"format": CHECKPOINT_FORMAT, "epoch": epoch, **state})
    path = checkpoint_path(run_dir, epoch)
    try:
        write_run_file(path, data)
        write_run_file(_digest_path(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    except DiskFullError:
        path.unlink(missing_ok=True)  # no digest: never trusted, and its room is needed
        raise
    except TrainError as exc:
        path.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {str(exc).removeprefix('cannot write ')}", hint=exc.hint) from exc.__cause__
    for _, old in list_checkpoints(run_dir)[keep:]:
        for stale in (_digest_path(old), old):
            stale.unlink(missing_ok=True)
    return path


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unpickle(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        # weights_only: a checkpoint on a shared drive must not be able to run code.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a checkpoint that does not unpickle is skipped, whatever the cause
        return None, f"cannot be loaded: {exc}"
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        return None, "not a drivelab checkpoint of a known format"
    return state, None


def _read(path: Path) -> tuple[bytes | None, str]:
    """The checkpoint's bytes if they match its recorded digest, and that digest; else ``None`` and the reason."""
    digest_file = _digest_path(path)
    try:
        expected = digest_file.read_text().split()[0]
    except (OSError, IndexError):
        return None, "no digest (the write did not finish)"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    actual = _sha256(data)
    if actual != expected:
        return None, f"SHA-256 {actual[:12]}... does not match the recorded {expected[:12]}... (truncated or corrupt)"
    return data, expected


def _verify(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    data, digest = _read(path)
    if data is None:
        return None, digest
    return _unpickle(data)


def _newest(run_dir: Path) -> tuple[LoadedCheckpoint, bytes | None]:
    """The newest complete checkpoint in ``run_dir`` and its bytes, and what was skipped to find it."""
    result = LoadedCheckpoint(state=None, path=None)
    for _, path in list_checkpoints(run_dir):
        data, digest = _read(path)
        state, reason = _unpickle(data) if data is not None else (None, digest)
        if state is not None:
            result.state, result.path, result.digest = state, path, digest
            return result, data
        result.skipped.append((path, reason or "unknown"))
    return result, None


def load_latest_checkpoint(run_dir: Path) -> LoadedCheckpoint:
    """The newest complete checkpoint in ``run_dir``, and what was skipped to find it."""
    return _newest(run_dir)[0]


def _await_bytes(path: Path, digest: str, wait: float) -> bytes | None:
    """The bytes of ``path`` once they hash to ``digest``, looking again for up to ``wait`` seconds; ``None`` if they never did."""
    deadline = time.monotonic() + wait
    while True:
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        if data is not None and _sha256(data) == digest:
            return data
        if time.monotonic() >= deadline:
            return None
        time.sleep(_POLL)


def load_agreed_checkpoint(run_dir: Path, world: World, *, wait: float = 5.0) -> LoadedCheckpoint:
    """The checkpoint every rank of ``world`` resumes from: the same bytes on every rank, the ones rank 0 chose.

    Rank 0 takes its newest complete checkpoint (verified against its digest)
    and sends every rank its name and SHA-256. Each other rank reads that file
    from its own view of the run folder, looking again for up to ``wait``
    seconds until its bytes hash to that digest: a machine's mount may not
    show yet a file another machine wrote, or may still show an older copy.
    The ranks that did not get it then receive the bytes from rank 0 (one
    broadcast, which every rank joins). So no rank starts from another
    checkpoint than rank 0, whatever its view of the drive; rank 0 alone
    reports skipped checkpoints and, in ``sent_to``, which ranks needed its bytes.

    One process: :func:`load_latest_checkpoint`.
    """
    if not world.distributed:
        return load_latest_checkpoint(run_dir)
    loaded, data = _newest(run_dir) if world.is_main else (LoadedCheckpoint(state=None, path=None), None)
    chosen = world.agree((loaded.path.name, loaded.digest) if loaded.path is not None else None)
    if chosen is None:
        return loaded
    name, digest = chosen
    if not world.is_main:
        data = _await_bytes(Path(run_dir) / name, digest, wait)
    lacking = [rank for rank, missing in enumerate(world.gather(data is None)) if missing]
    if lacking:
        box = [data if world.is_main else None]
        dist.broadcast_object_list(box, src=0)
        if data is None:
            data = box[0]
    if world.is_main:
        loaded.sent_to = lacking
        return loaded
    again = "rerun: the run resumes from its newest complete checkpoint"
    if data is None or _sha256(data) != digest:
        raise CheckpointError(f"rank {world.rank} did not receive checkpoint {name} whole from rank 0", hint=again)
    state, reason = _unpickle(data)
    if state is None:
        raise CheckpointError(f"cannot load checkpoint {name} received from rank 0: {reason}", hint=again)
    return LoadedCheckpoint(state=state, path=Path(run_dir) / name, digest=digest)


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """The checkpoint at ``path``, verified; raises :class:`CheckpointError` if it is not complete."""
    state, reason = _verify(Path(path))
    if state is None:
        raise CheckpointError(f"cannot load checkpoint {path}: {reason}", hint="rerun: the run resumes from its newest complete checkpoint")
    return LoadedCheckpoint(state=state, path=Path(path))

"""Several processes, one run: joining the process group torchrun sets up.

``torchrun`` (``torch.distributed.run``, which ``drivelab run --nproc-per-node``
uses) starts one process per rank and tells each its place through the
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` environment variables. A process
started any other way is a world of one and nothing here does anything.
Ranks talk over NCCL on CUDA devices and Gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from drivelab.errors import TrainError
from drivelab.train._device import pick_device

__all__ = ["World", "join_world"]


@dataclass(frozen=True)
class World:
    """This process's place among the processes of one run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    """``"nccl"`` or ``"gloo"`` when distributed, else ``None``."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, metrics and output."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def agree(self, value):
        """Rank 0's ``value``, on every rank (a picklable object)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """Every rank's ``value`` (a picklable object), by rank, on every rank."""
        if not self.distributed:
            return [value]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def close(self) -> None:
        """Leave the process group (call once, when training is over)."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def join_world(requested_device: str = "auto") -> World:
    """This process's :class:`World`, joining torchrun's process group if there is one.

    Safe to call more than once. Under torchrun, ``auto`` (or ``cuda``) means
    the GPU of this process's local rank.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return World(device=pick_device(requested_device))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.type not in ("cuda", "cpu"):
        raise TrainError(
            f"training on several processes needs CUDA devices (NCCL) or the CPU (Gloo), not {device.type}",
            hint="pass --device cpu, or run a single process",
        )
    if not dist.is_available():
        raise TrainError("this PyTorch build has no torch.distributed", hint="run a single process")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        except (RuntimeError, ValueError) as exc:
            raise TrainError(
                f"rank {rank} could not join the process group ({backend}): {exc}",
                hint="check --rdzv-endpoint and that every node can reach it",
            ) from exc
    return World(device=device, rank=rank, world_size=world_size, local_rank=local_rank, backend=dist.get_backend())

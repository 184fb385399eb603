"""What a run reports: the events ``train()`` sends to its ``progress`` callable, and its result.

Plain dataclasses, no PyTorch: a script imports them before torch is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drivelab.train._metrics import EpochMetrics

__all__ = ["RunStarted", "CheckpointSkipped", "BatchProgress", "EpochEnd", "TrainEvent", "TrainResult"]


@dataclass(frozen=True)
class RunStarted:
    run_dir: Path
    recipe: str
    device: str
    epochs: int
    start_epoch: int
    """Epochs already done (0 for a fresh run, N when resumed from epoch N)."""
    checkpoint: Path | None
    sent_to: tuple[int, ...] = ()
    """Ranks that got the checkpoint's bytes from rank 0: their machine's view of the drive did not show it in time."""
    precision: str = ""
    """What the run computes in and why: ``"fp32 (auto: no bf16 instructions, fp32)"``."""


@dataclass(frozen=True)
class CheckpointSkipped:
    path: Path
    reason: str


@dataclass(frozen=True)
class BatchProgress:
    epoch: int
    step: int
    steps: int


@dataclass(frozen=True)
class EpochEnd:
    metrics: EpochMetrics
    checkpoint: Path


TrainEvent = RunStarted | CheckpointSkipped | BatchProgress | EpochEnd


@dataclass
class TrainResult:
    run_dir: Path
    recipe: str
    device: str
    epochs: int
    resumed_from: int | None
    history: list[EpochMetrics] = field(default_factory=list)
    """Filled on rank 0 only when several processes train."""
    skipped_checkpoints: list[tuple[Path, str]] = field(default_factory=list)
    world_size: int = 1
    precision: str | None = None
    """``"fp32"`` or ``"bf16"``: what this run computed in (rank 0's choice)."""
    precision_reason: str | None = None

    @property
    def final_accuracy(self) -> float | None:
        return self.history[-1].test_accuracy if self.history else None

    @property
    def best_accuracy(self) -> float | None:
        return max((m.test_accuracy for m in self.history), default=None)

    def to_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "recipe": self.recipe,
            "device": self.device,
            "epochs": self.epochs,
            "resumed_from": self.resumed_from,
            "final_accuracy": self.final_accuracy,
            "best_accuracy": self.best_accuracy,
            "history": [m.to_dict() for m in self.history],
            "skipped_checkpoints": [{"path": str(p), "reason": r} for p, r in self.skipped_checkpoints],
            "world_size": self.world_size,
            "precision": self.precision,
            "precision_reason": self.precision_reason,
        }

"""What a run trains, checked when it is described: :class:`TrainConfig`, :func:`check_run_name`.

Needs no PyTorch, so a script checks every option before it downloads,
creates or imports anything. A value a run cannot take raises
:class:`TrainOptionError` (a usage error, exit code 2), naming the option as
the training script spells it (``--lr``), the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from drivelab.errors import TrainOptionError

__all__ = ["TrainConfig", "check_run_name", "RECIPE_NAMES", "PRECISIONS", "SEED_MAX"]

RECIPE_NAMES = ("fast", "fast-long", "reference")
"""The registered recipes, the default first (kept equal to ``RECIPES``' keys)."""

PRECISIONS = ("auto", "fp32", "bf16")
"""What ``--precision`` takes: ``auto`` decides from the hardware (see ``drivelab.train._precision``), the others force it."""

SEED_MAX = 2**32 - 1
_DEVICE = re.compile(r"auto|(cpu|cuda|mps)(:\d+)?")
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_AT_LEAST_1 = "a whole number, at least 1"


def check_run_name(name: str) -> str:
    """``name`` if it is a safe folder name for a run under ``drive/runs/``; else :class:`TrainOptionError`."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name):
        raise TrainOptionError(
            "--run",
            name,
            "a folder name of letters, digits, '.', '_' and '-' that starts with a letter or digit, at most 128 characters",
            hint="e.g. --run exp1; leave --run out to name the run after the recipe and the time",
        )
    return name


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(option: str, value: object, *, default: bool = True) -> None:
    """A whole number >= 1 (or ``None``, the default, when ``default``)."""
    if value is None and default:
        return
    if not _is_whole(value) or value < 1:  # type: ignore[operator]
        hint = f"leave {option} out for the recipe's default" if default else None
        raise TrainOptionError(option, value, _AT_LEAST_1, hint=hint)


@dataclass(frozen=True)
class TrainConfig:
    """What a run trains. ``None`` means the recipe's default.

    Every value is checked when the config is made (also by
    :func:`dataclasses.replace`): a bad one raises :class:`TrainOptionError`
    before anything exists.
    """

    dataset_root: Path
    run_dir: Path
    recipe: str = "fast"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 1
    device: str = "auto"
    limit_train: int | None = None
    """Train on the first N training images only (smoke tests)."""
    resume: bool = True
    keep_checkpoints: int = 2
    stop_at_accuracy: float | None = None
    """Stop after the first epoch whose test accuracy reaches this (percent)."""
    threads: int | None = None
    """CPU threads for PyTorch (``torch.set_num_threads``); ``None``: PyTorch's choice."""
    precision: str = "auto"
    """``auto``: bf16 autocast where the hardware computes bf16 natively, else fp32; ``fp32`` or ``bf16`` forces it."""
    checkpoint_wait: float = 5.0
    """Seconds a rank on another machine than rank 0 looks for the checkpoint rank 0 chose in its own view of the
    drive before it gets the bytes from rank 0 instead (see :func:`drivelab.train.load_agreed_checkpoint`)."""

    def __post_init__(self) -> None:
        if self.recipe not in RECIPE_NAMES:
            raise TrainOptionError("--recipe", self.recipe, "one of " + ", ".join(RECIPE_NAMES))
        for option, value in (
            ("--epochs", self.epochs),
            ("--batch-size", self.batch_size),
            ("--limit-train", self.limit_train),
            ("--threads", self.threads),
        ):
            _check_count(option, value)
        _check_count("keep_checkpoints", self.keep_checkpoints, default=False)
        lr = self.lr
        if lr is not None and (not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0):
            raise TrainOptionError("--lr", lr, "a number greater than 0", hint="leave --lr out for the recipe's default")
        if not _is_whole(self.seed) or not 0 <= self.seed <= SEED_MAX:
            raise TrainOptionError("--seed", self.seed, f"a whole number from 0 to {SEED_MAX}")
        if not isinstance(self.device, str) or not _DEVICE.fullmatch(self.device):
            raise TrainOptionError("--device", self.device, "auto, cpu, cuda, cuda:N or mps", hint="auto picks CUDA, then Apple MPS, then the CPU")
        if self.precision not in PRECISIONS:
            raise TrainOptionError("--precision", self.precision, ", ".join(PRECISIONS[:-1]) + " or " + PRECISIONS[-1], hint="auto decides from the hardware")
        accuracy = self.stop_at_accuracy
        if accuracy is not None and (not isinstance(accuracy, (int, float)) or not 0 < accuracy <= 100):
            raise TrainOptionError("stop_at_accuracy", accuracy, "a percentage above 0 and at most 100")
        wait = self.checkpoint_wait
        if not isinstance(wait, (int, float)) or isinstance(wait, bool) or not 0 <= wait < math.inf:
            raise TrainOptionError("checkpoint_wait", wait, "a number of seconds, 0 or more")

    def identity(self) -> dict:
        """The settings a resumed run must share with the run it continues."""
        return {
            "recipe": self.recipe,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "limit_train": self.limit_train,
        }

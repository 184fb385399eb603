"""Training recipes, registered by name.

A recipe says everything that decides how a run trains: the network, the
batch size, the optimizer and its schedule, how batches are fed (a per-sample
DataLoader, or slices of one tensor already on the device), and the memory
format. ``train()`` runs any of them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from drivelab.errors import RecipeError
from drivelab.train._models import FastNet, ReferenceNet

__all__ = ["Recipe", "RECIPES", "get_recipe"]

# (optimizer, scheduler, step_per_batch)
OptimizerSetup = tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, bool]


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    epochs: int
    batch_size: int
    test_batch_size: int
    build_model: Callable[[], nn.Module]
    build_optimizer: Callable[[nn.Module, int, int, float | None], OptimizerSetup]
    """(model, steps_per_epoch, epochs, lr override) -> optimizer setup."""
    pipeline: str
    """``"loader"``: a per-sample DataLoader; ``"tensor"``: batches sliced from one device tensor."""
    channels_last: bool = False
    ema_decay: float | None = None
    """Evaluate (and finish with) an exponential moving average of the weights."""
    autocast: dict[str, torch.dtype] | None = None
    """Lower-precision compute per device type (``{"cuda": torch.bfloat16}``); fp32 elsewhere."""


def _reference_optimizer(model: nn.Module, steps_per_epoch: int, epochs: int, lr: float | None) -> OptimizerSetup:
    optimizer = torch.optim.Adadelta(model.parameters(), lr=lr or 1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return optimizer, scheduler, False


def _fast_optimizer(model: nn.Module, steps_per_epoch: int, epochs: int, lr: float | None) -> OptimizerSetup:
    max_lr = lr or 0.2
    optimizer = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    # OneCycleLR needs a warm-up longer than one step and at least two steps in
    # all: very short runs (a few batches, with --limit-train) get just that.
    total_steps = max(2, steps_per_epoch * epochs)
    pct_start = 0.25 if 0.25 * total_steps > 1 else 1.5 / total_steps
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start)
    return optimizer, scheduler, True


RECIPES: dict[str, Recipe] = {
    "reference": Recipe(
        name="reference",
        summary="the classic PyTorch MNIST example: batch 64, Adadelta 1.0, step decay 0.7, 14 epochs, DataLoader",
        epochs=14,
        batch_size=64,
        test_batch_size=1000,
        build_model=ReferenceNet,
        build_optimizer=_reference_optimizer,
        pipeline="loader",
    ),
    "fast": Recipe(
        name="fast",
        summary="a pixel-unshuffled conv-BN net on one device tensor, SGD-Nesterov one-cycle, weight EMA",
        epochs=2,
        batch_size=128,
        test_batch_size=2000,
        build_model=FastNet,
        build_optimizer=_fast_optimizer,
        pipeline="tensor",
        channels_last=True,
        ema_decay=0.999,
        # bf16 on GPUs that have it. Not on CPUs: on an AVX2 CPU without AMX,
        # bf16 autocast made every step 5-8x slower (measured); so was
        # torch.compile, which also costs 10-30 s to warm up.
        autocast={"cuda": torch.bfloat16},
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(
            f"unknown recipe {name!r}",
            hint=f"choose one of: {', '.join(RECIPES)}",
        ) from None

"""Training recipes, registered by name.

A recipe says everything that decides how a run trains: the network, the
batch size, the optimizer and its schedule, how batches are fed (a per-sample
DataLoader, or slices of one tensor already on the device), and the memory
format. ``train()`` runs any of them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from drivelab.errors import RecipeError
from drivelab.train._models import FastNet, ReferenceNet
from drivelab.train._sgd import NesterovSGD, OneCycle

__all__ = ["Recipe", "RECIPES", "get_recipe"]

# (optimizer, scheduler, step_per_batch): a torch.optim optimizer and scheduler, or what stands in for them (_sgd).
OptimizerSetup = tuple[Any, Any, bool]


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
    label_smoothing: float = 0.0
    """Of the training loss (the test loss is plain cross-entropy)."""
    shift: int = 0
    """Translate each training batch, as a whole, by up to this many cells of the network's input grid (FastNet's is
    the unshuffled 14x14 one: 2-pixel steps), a random amount along each axis, in every epoch but the last."""
    bf16: bool = False
    """Whether ``--precision auto`` may train it in bf16 autocast, on hardware with native bf16 (see ``_precision``)."""


def _reference_optimizer(model: nn.Module, steps_per_epoch: int, epochs: int, lr: float | None) -> OptimizerSetup:
    optimizer = torch.optim.Adadelta(model.parameters(), lr=lr or 1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return optimizer, scheduler, False


def _fast_optimizer(model: nn.Module, steps_per_epoch: int, epochs: int, lr: float | None) -> OptimizerSetup:
    max_lr = lr or 0.2
    # torch.optim.SGD's fused kernel (one for every tensor's update: a third of the foreach version's time on a
    # 2-core CPU) and OneCycleLR's schedule, without torch.optim's start-up cost (see _sgd).
    optimizer = NesterovSGD(model.parameters(), lr=max_lr, momentum=0.9, weight_decay=5e-4)
    # The schedule needs a warm-up longer than one step and at least two steps in
    # all: very short runs (a few batches, with --limit-train) get just that.
    total_steps = max(2, steps_per_epoch * epochs)
    pct_start = 0.25 if 0.25 * total_steps > 1 else 1.5 / total_steps
    scheduler = OneCycle(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start)
    return optimizer, scheduler, True


def _wide_fast_net() -> FastNet:
    # Wider at 7x7, where width is cheaper; the 14x14 layer, which costs the most per channel, stays at 16.
    return FastNet((16, 64, 64))


_FAST = Recipe(
    name="fast",
    summary="a pixel-unshuffled conv-pool-BN net on one device tensor, SGD-Nesterov one-cycle over 2 epochs, weight EMA",
    epochs=2,
    batch_size=128,
    test_batch_size=500,
    build_model=FastNet,
    build_optimizer=_fast_optimizer,
    pipeline="tensor",
    channels_last=True,
    ema_decay=0.999,
    label_smoothing=0.1,
    bf16=True,
)

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
    "fast": _FAST,
    "fast-long": replace(
        _FAST,
        name="fast-long",
        summary="the fast recipe's net, wider at 7x7, over 3 epochs, batches shifted by 2-pixel steps but in the last: >= 99.3%",
        epochs=3,
        build_model=_wide_fast_net,
        shift=1,
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

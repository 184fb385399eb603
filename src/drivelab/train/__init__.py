"""The MNIST ConvNet: recipes, training with checkpoints and resume, metrics, plots.

::

    from drivelab.train import TrainConfig, train
    result = train(TrainConfig(dataset_root=ws.dataset, run_dir=ws.run_dir("mnist")))
    result.final_accuracy

Under torchrun (``drivelab run --nproc-per-node N``) ``train`` is
data-parallel: :func:`join_world` joins the process group (NCCL on GPUs, Gloo
on the CPU) and rank 0 alone writes the run folder.

Recipes: ``reference`` (the classic PyTorch example, the baseline) and
``fast`` (the default: the quickest honest way to >= 99% test accuracy).

Names are imported on first use, so that ``import drivelab.train`` (and the
CLI) stays fast: PyTorch loads only when something that needs it is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivelab._lazy import lazy_exports

RECIPE_NAMES = ("fast", "reference")
"""The registered recipes, the default first (kept equal to ``RECIPES``' keys)."""

_EXPORTS = {
    "_checkpoint": ["load_checkpoint", "load_latest_checkpoint"],
    "_device": ["pick_device"],
    "_distributed": ["World", "join_world"],
    "_files": ["latest_complete_checkpoint", "list_checkpoints"],
    "_loop": ["BatchProgress", "CheckpointSkipped", "EpochEnd", "RunStarted", "TrainConfig", "TrainEvent", "TrainResult", "train"],
    "_metrics": ["EpochMetrics", "plot_curves", "read_metrics"],
    "_mnist": ["MnistTensors", "load_mnist"],
    "_models": ["FastNet", "ReferenceNet"],
    "_recipes": ["RECIPES", "Recipe", "get_recipe"],
}
__getattr__, __dir__, _LAZY = lazy_exports(__name__, _EXPORTS)
__all__ = ["RECIPE_NAMES", "recipe_names", *_LAZY]


def recipe_names() -> list[str]:
    return list(RECIPE_NAMES)


if TYPE_CHECKING:
    from drivelab.train._checkpoint import load_checkpoint, load_latest_checkpoint
    from drivelab.train._device import pick_device
    from drivelab.train._distributed import World, join_world
    from drivelab.train._files import latest_complete_checkpoint, list_checkpoints
    from drivelab.train._loop import (
        BatchProgress,
        CheckpointSkipped,
        EpochEnd,
        RunStarted,
        TrainConfig,
        TrainEvent,
        TrainResult,
        train,
    )
    from drivelab.train._metrics import EpochMetrics, plot_curves, read_metrics
    from drivelab.train._mnist import MnistTensors, load_mnist
    from drivelab.train._models import FastNet, ReferenceNet
    from drivelab.train._recipes import RECIPES, Recipe, get_recipe

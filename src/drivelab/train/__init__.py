"""The MNIST ConvNet: recipes, training with checkpoints and resume, metrics, plots.

::

    from drivelab.train import TrainConfig, train
    result = train(TrainConfig(dataset_root=ws.dataset, run_dir=ws.run_dir("mnist")))
    result.final_accuracy

Recipes: ``reference`` (the classic PyTorch example, the baseline) and
``fast`` (the default: the quickest honest way to >= 99% test accuracy).
"""

from drivelab.train._checkpoint import list_checkpoints, load_latest_checkpoint
from drivelab.train._device import pick_device
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
from drivelab.train._recipes import RECIPES, Recipe, get_recipe, recipe_names

__all__ = [
    "train",
    "TrainConfig",
    "TrainResult",
    "TrainEvent",
    "RunStarted",
    "CheckpointSkipped",
    "BatchProgress",
    "EpochEnd",
    "EpochMetrics",
    "read_metrics",
    "plot_curves",
    "load_latest_checkpoint",
    "list_checkpoints",
    "pick_device",
    "load_mnist",
    "MnistTensors",
    "FastNet",
    "ReferenceNet",
    "Recipe",
    "RECIPES",
    "get_recipe",
    "recipe_names",
]

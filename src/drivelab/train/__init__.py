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
What describes a run (:class:`TrainConfig`, which checks every option, the
events, metrics and checkpoint names) needs no PyTorch; without it, a name that
does raises :class:`TorchMissingError`, whose hint names ``drivelab setup torch``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from drivelab._lazy import lazy_exports
from drivelab.errors import TorchMissingError
from drivelab.train._config import RECIPE_NAMES

_EXPORTS = {
    "_checkpoint": ["load_agreed_checkpoint", "load_checkpoint", "load_latest_checkpoint", "save_checkpoint", "save_model"],
    "_device": ["pick_device"],
    "_distributed": ["World", "join_world"],
    "_files": ["latest_complete_checkpoint", "list_checkpoints", "write_run_file"],
    "_config": ["TrainConfig", "check_run_name"],
    "_events": ["BatchProgress", "CheckpointSkipped", "EpochEnd", "RunStarted", "TrainEvent", "TrainResult"],
    "_loop": ["train"],
    "_metrics": ["EpochMetrics", "curves_figure", "plot_curves", "read_metrics", "write_metrics"],
    "_mnist": ["MnistTensors", "load_mnist"],
    "_models": ["FastNet", "ReferenceNet"],
    "_recipes": ["RECIPES", "Recipe", "get_recipe"],
}
_lazy_getattr, __dir__, _LAZY = lazy_exports(__name__, _EXPORTS)
__all__ = ["RECIPE_NAMES", "recipe_names", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        return _lazy_getattr(name)
    except ModuleNotFoundError as exc:
        if exc.name != "torch":  # a torch that is there but broken says so itself
            raise
        raise TorchMissingError(sys.executable, needed_for="training") from None


def recipe_names() -> list[str]:
    return list(RECIPE_NAMES)


if TYPE_CHECKING:
    from drivelab.train._checkpoint import load_agreed_checkpoint, load_checkpoint, load_latest_checkpoint, save_checkpoint, save_model
    from drivelab.train._config import TrainConfig, check_run_name
    from drivelab.train._device import pick_device
    from drivelab.train._distributed import World, join_world
    from drivelab.train._events import BatchProgress, CheckpointSkipped, EpochEnd, RunStarted, TrainEvent, TrainResult
    from drivelab.train._files import latest_complete_checkpoint, list_checkpoints, write_run_file
    from drivelab.train._loop import train
    from drivelab.train._metrics import EpochMetrics, curves_figure, plot_curves, read_metrics, write_metrics
    from drivelab.train._mnist import MnistTensors, load_mnist
    from drivelab.train._models import FastNet, ReferenceNet
    from drivelab.train._recipes import RECIPES, Recipe, get_recipe

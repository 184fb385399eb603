"""Per-epoch metrics: ``metrics.jsonl`` (one JSON object a line) and ``curves.png``."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from drivelab.train._files import write_run_file

__all__ = ["EpochMetrics", "TARGET_ACCURACY", "read_metrics", "write_metrics", "curves_figure", "plot_curves"]


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    """Percent of the 10,000 test images classified right."""
    seconds: float
    """Wall time of this epoch: training and evaluation."""
    elapsed: float
    """Wall time of all epochs so far, across resumes (start-up excluded)."""
    lr: float
    precision: str | None = None
    """What the epoch computed in, ``"fp32"`` or ``"bf16"`` (None in lines written before it was recorded)."""
    precision_reason: str | None = None
    """Why: ``"auto: CPU has avx512_bf16"``, ``"auto: no bf16 instructions, fp32"``, ``"--precision fp32"``."""

    def to_dict(self) -> dict:
        return asdict(self)


def read_metrics(path: Path) -> list[EpochMetrics]:
    """Metrics of a run; a torn last line (a killed writer) is ignored."""
    history: list[EpochMetrics] = []
    if not path.is_file():
        return history
    for line in path.read_text().splitlines():
        try:
            history.append(EpochMetrics(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return history


def write_metrics(path: Path, history: list[EpochMetrics]) -> None:
    """Rewrite ``metrics.jsonl`` whole and atomically (it is a few lines)."""
    write_run_file(path, "".join(json.dumps(m.to_dict()) + "\n" for m in history).encode("utf-8"))


TARGET_ACCURACY = 99.0
"""The accuracy line drawn on the curves: the mark a good MNIST ConvNet passes."""


def curves_figure(history: list[EpochMetrics], title: str = ""):
    """Loss (train and test) and test accuracy per epoch: a :class:`matplotlib.figure.Figure`.

    The accuracy panel marks :data:`TARGET_ACCURACY` with a labelled line.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    epochs = [m.epoch for m in history]
    fig = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [m.train_loss for m in history], "o-", label="train")
    loss_ax.plot(epochs, [m.test_loss for m in history], "s-", label="test")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss", yscale="log")
    loss_ax.legend()
    acc_ax.plot(epochs, [m.test_accuracy for m in history], "o-", color="tab:green", label="test accuracy")
    acc_ax.axhline(TARGET_ACCURACY, color="grey", linestyle=":", linewidth=1, label=f"{TARGET_ACCURACY:g}% target")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    acc_ax.legend(loc="lower right")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(path: Path, history: list[EpochMetrics], title: str = "") -> None:
    """:func:`curves_figure`, written to ``path`` as a PNG (atomically)."""
    buffer = io.BytesIO()
    curves_figure(history, title).savefig(buffer, format="png")
    write_run_file(path, buffer.getvalue())

"""Both MNIST recipes on this machine, in one run: time to 99% test accuracy.

    python benchmarks/mnist_train.py                   # fast x3 seeds, reference until it reaches 99%
    python benchmarks/mnist_train.py --full            # reference for all its 14 epochs too
    python benchmarks/mnist_train.py --json out.json   # also save the figures

For each recipe and seed it prints: training seconds until the first epoch whose
test accuracy is >= the target (sum of epoch times: training + evaluation),
wall seconds until then (from the call, so data loading, checkpoints and plots
included), best accuracy, seconds per epoch; then the ratio reference / fast of
the mean times to target. MNIST comes from --data-dir, else is fetched from
--mirror / $DRIVELAB_MNIST_MIRROR / the repository's copy in tests/data/mnist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from drivelab.data import get_mnist
from drivelab.train import EpochEnd, TrainConfig, train

REPO_MNIST = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), capability {torch.backends.cpu.get_cpu_capability()}"


def run_once(recipe: str, seed: int, data: Path, workdir: Path, target: float, full: bool) -> dict:
    started = time.perf_counter()
    hit: dict = {}

    def on_event(event):
        if isinstance(event, EpochEnd) and not hit and event.metrics.test_accuracy >= target:
            hit.update(epoch=event.metrics.epoch, train_s=event.metrics.elapsed, wall_s=time.perf_counter() - started)

    config = TrainConfig(
        dataset_root=data,
        run_dir=workdir / f"{recipe}-{seed}",
        recipe=recipe,
        seed=seed,
        resume=False,
        stop_at_accuracy=None if full else (target if recipe == "reference" else None),
    )
    result = train(config, progress=on_event)
    epochs = result.history
    row = {
        "recipe": recipe,
        "seed": seed,
        "epochs_run": len(epochs),
        "epoch_to_target": hit.get("epoch"),
        "train_s_to_target": hit.get("train_s"),
        "wall_s_to_target": hit.get("wall_s"),
        "best_accuracy": result.best_accuracy,
        "final_accuracy": result.final_accuracy,
        "s_per_epoch": statistics.mean(m.seconds for m in epochs),
        "accuracy_per_epoch": [round(m.test_accuracy, 2) for m in epochs],
    }
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    print(
        f"{recipe:9s} seed {seed}: {fmt(row['train_s_to_target'], '7.1f')} s train / {fmt(row['wall_s_to_target'], '7.1f')} s wall "
        f"to {target}% (epoch {fmt(row['epoch_to_target'], 'd')}), best {row['best_accuracy']:.2f}%, "
        f"{row['s_per_epoch']:.1f} s/epoch, per epoch {row['accuracy_per_epoch']}",
        flush=True,
    )
    return row


def mean_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.mean(values) if len(values) == len(rows) and values else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds of the fast recipe (default 3)")
    p.add_argument("--reference-seeds", type=int, default=1, help="seeds of the reference recipe (default 1)")
    p.add_argument("--target", type=float, default=99.0, help="test accuracy target, percent (default 99.0)")
    p.add_argument("--full", action="store_true", help="run the reference for all its epochs, not just to the target")
    p.add_argument("--skip-reference", action="store_true", help="fast recipe only (no ratio)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding MNIST/raw")
    p.add_argument("--mirror", action="append", default=None, help="MNIST mirror URL")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = p.parse_args()

    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="drivelab-bench-") as tmp:
        workdir = Path(tmp)
        data = args.data_dir
        if data is None:
            data = workdir / "dataset"
            mirrors = args.mirror
            if not mirrors and not os.environ.get("DRIVELAB_MNIST_MIRROR"):
                mirrors = [REPO_MNIST.as_uri()]
            get_mnist(data, mirrors=mirrors)

        fast = [run_once("fast", seed, data, workdir, args.target, args.full) for seed in range(1, args.seeds + 1)]
        reference = []
        if not args.skip_reference:
            reference = [run_once("reference", seed, data, workdir, args.target, args.full) for seed in range(1, args.reference_seeds + 1)]

    summary = {
        "machine": machine(),
        "target": args.target,
        "fast_mean_train_s": mean_of(fast, "train_s_to_target"),
        "fast_mean_wall_s": mean_of(fast, "wall_s_to_target"),
        "fast_mean_best": statistics.mean(r["best_accuracy"] for r in fast),
        "reference_mean_train_s": mean_of(reference, "train_s_to_target") if reference else None,
        "reference_mean_wall_s": mean_of(reference, "wall_s_to_target") if reference else None,
    }
    if summary["fast_mean_train_s"] and summary["reference_mean_train_s"]:
        summary["ratio_train"] = summary["reference_mean_train_s"] / summary["fast_mean_train_s"]
        summary["ratio_wall"] = summary["reference_mean_wall_s"] / summary["fast_mean_wall_s"]
    print("\nsummary:")
    for key, value in summary.items():
        print(f"  {key}: {value:.2f}" if isinstance(value, float) else f"  {key}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": fast + reference}, indent=2) + "\n")


if __name__ == "__main__":
    main()

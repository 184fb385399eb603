"""Both MNIST recipes on this machine, in one run: time to 99% test accuracy.

    python benchmarks/mnist_train.py                      # fast x3 seeds, reference until it reaches 99%
    python benchmarks/mnist_train.py --skip-reference     # the fast recipe alone (and one run as a process)
    python benchmarks/mnist_train.py --recipe fast-long --target 99.3 --skip-reference
    python benchmarks/mnist_train.py --full               # reference for all its 14 epochs too
    python benchmarks/mnist_train.py --json out.json      # also save the figures

For each recipe and seed it prints: training seconds until the first epoch whose
test accuracy is >= the target (sum of epoch times: training + evaluation; on a
GPU each epoch ends reading its results back, so the times are synchronised),
wall seconds until then (from the call, so data loading, checkpoints and plots
included), the accuracy at the end of the schedule, seconds per epoch; then the
ratio reference / fast of the mean times to target. ``--process-runs`` more runs
of the training script itself (``main.py``, in a fresh interpreter) measure the
wall time a user sees: from starting the process to the line that reports the
target reached. MNIST comes from --data-dir, else is fetched from --mirror /
$DRIVELAB_MNIST_MIRROR / the repository's copy in tests/data/mnist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from drivelab.data import get_mnist
from drivelab.train import EpochEnd, RunStarted, TrainConfig, recipe_names, train

ROOT = Path(__file__).resolve().parents[1]
REPO_MNIST = ROOT / "tests" / "data" / "mnist"
MAIN = ROOT / "src" / "drivelab" / "_seed" / "colab" / "main.py"
_EPOCH_LINE = re.compile(r"^Epoch\s+(\d+)\s.*test accuracy ([\d.]+)%")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), capability {torch.backends.cpu.get_cpu_capability()}"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return text


def run_once(recipe: str, seed: int, data: Path, workdir: Path, args: argparse.Namespace, *, epochs: int | None) -> dict:
    started = time.perf_counter()
    hit: dict = {}
    precision: list[str] = []

    def on_event(event):
        if isinstance(event, RunStarted):
            precision.append(event.precision)
        if isinstance(event, EpochEnd) and not hit and event.metrics.test_accuracy >= args.target:
            hit.update(epoch=event.metrics.epoch, train_s=event.metrics.elapsed, wall_s=time.perf_counter() - started)

    is_reference = recipe == "reference"
    config = TrainConfig(
        dataset_root=data,
        run_dir=workdir / f"{recipe}-{seed}",
        recipe=recipe,
        seed=seed,
        resume=False,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        limit_train=args.limit_train,
        epochs=epochs,
        stop_at_accuracy=None if args.full else (args.target if is_reference else None),
    )
    result = train(config, progress=on_event)
    epochs_run = result.history
    row = {
        "recipe": recipe,
        "seed": seed,
        "precision": precision[0] if precision else None,
        "epochs_run": len(epochs_run),
        "epoch_to_target": hit.get("epoch"),
        "train_s_to_target": hit.get("train_s"),
        "wall_s_to_target": hit.get("wall_s"),
        "best_accuracy": result.best_accuracy,
        "final_accuracy": result.final_accuracy,
        "s_per_epoch": statistics.mean(m.seconds for m in epochs_run),
        "accuracy_per_epoch": [round(m.test_accuracy, 2) for m in epochs_run],
    }
    fmt = lambda v, f: "-" if v is None else format(v, f)
    print(
        f"{recipe:9s} seed {seed}: {fmt(row['train_s_to_target'], '7.2f')} s train / {fmt(row['wall_s_to_target'], '7.2f')} s wall "
        f"to {args.target}% (epoch {fmt(row['epoch_to_target'], 'd')}), final {row['final_accuracy']:.2f}%, best {row['best_accuracy']:.2f}%, "
        f"{row['s_per_epoch']:.2f} s/epoch, per epoch {row['accuracy_per_epoch']}",
        flush=True,
    )
    return row


def run_process(recipe: str, seed: int, data: Path, workdir: Path, args: argparse.Namespace) -> dict:
    """The training script in a fresh interpreter: wall seconds from starting it to the line reporting the target reached."""
    argv = [sys.executable, str(MAIN), "--recipe", recipe, "--seed", str(seed), "--data-dir", str(data), "--runs-dir", str(workdir / "process-runs"),
            "--run", f"{recipe}-{seed}", "--no-resume", "--device", args.device, "--precision", args.precision, "--log-every", "0"]  # fmt: skip
    for option, value in (("--threads", args.threads), ("--limit-train", args.limit_train), ("--epochs", args.epochs)):
        if value is not None:
            argv += [option, str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    started = time.perf_counter()
    hit: float | None = None
    first = None
    with subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            first = first or line.strip()
            match = _EPOCH_LINE.match(line)
            if hit is None and match and float(match.group(2)) >= args.target:
                hit = time.perf_counter() - started
        code = proc.wait()
    total = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{MAIN.name} exited with code {code}")
    print(f"{recipe:9s} seed {seed}, as a process: {'-' if hit is None else f'{hit:.2f}'} s from start to the {args.target}% line, {total:.2f} s in all | {first}")
    return {"recipe": recipe, "seed": seed, "process_wall_s_to_target": hit, "process_wall_s": total, "first_line": first}


def mean_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.mean(values) if len(values) == len(rows) and values else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="fast", choices=[r for r in recipe_names() if r != "reference"], help="the quick recipe measured (default fast)")
    p.add_argument("--seeds", type=int, default=3, help="seeds of the quick recipe: 1..N (default 3; 0: the reference alone)")
    p.add_argument("--reference-seeds", type=int, default=1, help="seeds of the reference recipe (default 1)")
    p.add_argument("--reference-epochs", type=int, default=None, help="at most this many reference epochs (default: until the target)")
    p.add_argument("--target", type=float, default=99.0, help="test accuracy target, percent (default 99.0)")
    p.add_argument("--full", action="store_true", help="run the reference for all its epochs, not just to the target")
    p.add_argument("--skip-reference", action="store_true", help="the quick recipe only (no ratio)")
    p.add_argument("--process-runs", type=int, default=None, help="runs of main.py as a process, seeds 1..N (default: 1 with --skip-reference, else 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (default auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's choice)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the quick recipe (default: the recipe's)")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N images (plumbing checks only)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding MNIST/raw")
    p.add_argument("--mirror", action="append", default=None, help="MNIST mirror URL")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = p.parse_args()
    process_runs = args.process_runs if args.process_runs is not None else (1 if args.skip_reference else 0)

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

        fast = [run_once(args.recipe, seed, data, workdir, args, epochs=args.epochs) for seed in range(1, args.seeds + 1)]
        reference = []
        if not args.skip_reference:
            reference = [
                run_once("reference", seed, data, workdir, args, epochs=args.reference_epochs) for seed in range(1, args.reference_seeds + 1)
            ]
        processes = [run_process(args.recipe, seed, data, workdir, args) for seed in range(1, process_runs + 1)]

    finals = [r["final_accuracy"] for r in fast]
    summary = {
        "machine": machine(),
        "recipe": args.recipe,
        "precision": fast[0]["precision"] if fast else None,
        "target": args.target,
        "fast_mean_train_s": mean_of(fast, "train_s_to_target") if fast else None,
        "fast_mean_wall_s": mean_of(fast, "wall_s_to_target") if fast else None,
        "fast_mean_best": statistics.mean(r["best_accuracy"] for r in fast) if fast else None,
        "fast_mean_final": statistics.mean(finals) if fast else None,
        "fast_min_final": min(finals) if fast else None,
        "fast_seeds_reaching_target": sum(r["train_s_to_target"] is not None for r in fast),
        "fast_max_train_s": max((r["train_s_to_target"] for r in fast if r["train_s_to_target"] is not None), default=None),
        "process_mean_wall_s": mean_of(processes, "process_wall_s_to_target") if processes else None,
        "reference_mean_train_s": mean_of(reference, "train_s_to_target") if reference else None,
        "reference_mean_wall_s": mean_of(reference, "wall_s_to_target") if reference else None,
        "reference_s_per_epoch": statistics.mean(r["s_per_epoch"] for r in reference) if reference else None,
    }
    if summary["fast_mean_train_s"] and summary["reference_mean_train_s"]:
        summary["ratio_train"] = summary["reference_mean_train_s"] / summary["fast_mean_train_s"]
        summary["ratio_wall"] = summary["reference_mean_wall_s"] / summary["fast_mean_wall_s"]
    print("\nsummary:")
    for key, value in summary.items():
        print(f"  {key}: {value:.2f}" if isinstance(value, float) else f"  {key}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": fast + reference, "processes": processes}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""What a job pays for running under `drivelab run`.

1. Overhead: `drivelab run SCRIPT` against `python SCRIPT` for a script that
   does nothing but print a line (median of --runs fresh processes each).
2. Kill to resumed: the MNIST trainer is SIGKILLed mid-training; the time from
   the kill to the restarted trainer printing "resuming after epoch N" (its
   model, optimizer and data loaded, about to train), median of --kills.
   The baseline is what a person does by hand: start `python main.py` again
   at once, from its start to the same line.

    .venv/bin/python benchmarks/jobs_run.py --mirror file:///data/mnist/
    .venv/bin/python benchmarks/jobs_run.py --runs 10 --kills 5 --json out.json

Needs MNIST: --mirror, else $DRIVELAB_MNIST_MIRROR, else the repository's copy in tests/data/mnist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivelab.data import get_mnist
from drivelab.jobs import JobSpec
from drivelab.workspace import init_workspace

REPO_MNIST = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist"
TRAIN = ["--limit-train", "6000", "--epochs", "30", "--threads", "1", "--log-every", "0"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env(), check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def overhead(ws: Path, runs: int) -> dict:
    script = ws / "drive" / "colab" / "trivial.py"
    script.write_text("print('hello')\n")
    python, drivelab = [], []
    timed([sys.executable, str(script)], ws)  # warm the caches once
    timed([sys.executable, "-m", "drivelab", "run", "--run", "warm", str(script)], ws)
    for i in range(runs):  # interleaved, so that drift hits both alike
        python.append(timed([sys.executable, str(script)], ws))
        drivelab.append(timed([sys.executable, "-m", "drivelab", "run", "--run", f"trivial-{i}", str(script)], ws))
    p, d = statistics.median(python), statistics.median(drivelab)
    return {"python_s": p, "drivelab_run_s": d, "overhead_s": d - p, "ratio": d / p, "runs": runs}


def wait_for_line(log: Path, offset: int, text: str, timeout: float = 300) -> tuple[float, int]:
    """Seconds (perf_counter) when ``text`` appears in ``log`` after byte ``offset``, and the new offset."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            with open(log, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            data = b""
        at = data.find(text.encode())
        if at >= 0:
            end = data.find(b"\n", at)
            return time.perf_counter(), offset + (end + 1 if end >= 0 else len(data))
        time.sleep(0.005)
    raise TimeoutError(f"{text!r} did not appear in {log}")


def newest_checkpoint(run_dir: Path) -> int:
    return max((int(p.name[10:14]) for p in run_dir.glob("ckpt-epoch*.pt.sha256")), default=0)


def kill_to_resumed(ws: Path, data_dir: Path, kills: int, backoff: float) -> dict:
    main = str(ws / "drive" / "colab" / "main.py")
    args = ["--data-dir", str(data_dir), *TRAIN]
    run_dir = ws / "drive" / "runs" / "killed"
    log = run_dir / "log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivelab", "run", "--run", "killed", "--restarts", str(kills + 2), "--backoff", str(backoff), main, *args],
        cwd=ws, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    samples = []
    try:
        offset = 0
        _, offset = wait_for_line(log, 0, "Run ")
        for _ in range(kills):
            done = newest_checkpoint(run_dir)
            while newest_checkpoint(run_dir) == done:  # kill mid-epoch, after a fresh checkpoint
                time.sleep(0.01)
            time.sleep(0.5)
            pid = json.loads((run_dir / "status.json").read_text())["attempts"][-1]["pid"]
            killed_at = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            resumed_at, offset = wait_for_line(log, offset, "resuming after epoch")
            samples.append(resumed_at - killed_at)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    # By hand: the same trainer started again at once, to the same line.
    by_hand = []
    for i in range(kills):
        out = ws / f"by-hand-{i}.log"
        with open(out, "wb") as fh:
            started = time.perf_counter()
            p = subprocess.Popen([sys.executable, main, "--run", "killed", *args], cwd=ws, env=env(), stdout=fh, stderr=subprocess.STDOUT)
            try:
                resumed_at, _ = wait_for_line(out, 0, "resuming after epoch")
                by_hand.append(resumed_at - started)
            finally:
                p.kill()
                p.wait()
    k, h = statistics.median(samples), statistics.median(by_hand)
    return {"kill_to_resumed_s": k, "restart_by_hand_s": h, "ratio": k / h, "backoff_s": backoff, "samples": samples, "by_hand": by_hand}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs of the trivial script (default 10)")
    parser.add_argument("--kills", type=int, default=5, help="kills of the trainer (default 5; 0: the overhead only)")
    parser.add_argument("--backoff", type=float, default=JobSpec.backoff, help=f"--backoff of the job (default {JobSpec.backoff}, drivelab run's default)")
    parser.add_argument("--mirror", action="append", default=None, help="MNIST mirror URL (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="drivelab-jobs-bench-") as tmp:
        ws = init_workspace(Path(tmp) / "lab").workspace.root
        mirrors = args.mirror
        if not mirrors and not os.environ.get("DRIVELAB_MNIST_MIRROR"):
            mirrors = [REPO_MNIST.as_uri()]
        get_mnist(ws / "drive" / "dataset", mirrors=mirrors)
        over = overhead(ws, args.runs)
        print(
            f"trivial script, median of {args.runs}: python {over['python_s'] * 1000:.0f} ms, "
            f"drivelab run {over['drivelab_run_s'] * 1000:.0f} ms; overhead {over['overhead_s'] * 1000:.0f} ms "
            f"(ratio {over['ratio']:.1f}x)",
            flush=True,
        )
        kill = kill_to_resumed(ws, ws / "drive" / "dataset", args.kills, args.backoff) if args.kills > 0 else None
        if kill is not None:
            print(
                f"kill to resumed, median of {args.kills}: {kill['kill_to_resumed_s']:.2f} s (backoff {args.backoff:g} s); "
                f"restarting python main.py by hand: {kill['restart_by_hand_s']:.2f} s (ratio {kill['ratio']:.2f}x)",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "overhead": over, "kill": kill}, indent=2) + "\n")


if __name__ == "__main__":
    main()

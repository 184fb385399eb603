"""Two machines against one: the same data-parallel run, over a c10d rendezvous and one drive both attach, or on one machine.

    .venv/bin/python benchmarks/multinode.py                     # 3 rounds, --limit-train 12000, 2 epochs
    .venv/bin/python benchmarks/multinode.py --rounds 3 --json out.json

One run, two ways, on this machine, interleaved round by round:

- one machine: `drivelab run --nproc-per-node 2 drive/colab/main.py ...` in
  workspace a: two processes, torchrun's standalone rendezvous;
- two machines: `drivelab run --nnodes 2 --nproc-per-node 1 --rdzv-endpoint
  127.0.0.1:PORT ...` in workspaces a and b at once, each with its own
  .drivelab state, rclone mount and VFS cache: two processes, one per
  "machine", meeting at a c10d rendezvous on loopback.

Both workspaces attach the same S3 remote (`rclone serve s3` on loopback,
MNIST already on it). Each way trains the same two ranks on the same data
(the same world size, so the same weights: the benchmark checks that they are
bitwise equal), so the difference is what spreading a run over machines
costs: a second supervisor and mount, the c10d rendezvous, the node names'
exchange, and writing through one mount while the other reads through its own.

"wall" runs from the launch to the last `drivelab run` exiting (the drive
flushed); "train" is the sum of the epochs' times in metrics.jsonl (training
and rank 0's evaluation), so wall - train is start-up and the end. On a
machine with two cores this measures overhead, not speed-up: both ways run
the same two processes on the same two cores; a speed-up needs machines of
their own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from rclone_servers import S3Server, free_port  # noqa: E402

from drivelab import drive  # noqa: E402
from drivelab.data import get_mnist  # noqa: E402
from drivelab.workspace import Workspace, init_workspace  # noqa: E402

MNIST_MIRROR = (ROOT / "tests" / "data" / "mnist").as_uri() + "/"
MAIN = "drive/colab/main.py"
BUCKET = "team"
"""The bucket on the loopback S3 server that both machines attach as their drive."""


def cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def env(node: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    return {**clean, "DRIVELAB_NODE_NAME": node, "NO_COLOR": "1"}


def launch(ws: Workspace, node: str, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "drivelab", "run", *args],
        cwd=ws.root, env=env(node), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_all(procs: list[subprocess.Popen[bytes]], what: str) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")


def train_seconds(run_dir: Path) -> float:
    return sum(json.loads(line)["seconds"] for line in (run_dir / "metrics.jsonl").read_text().splitlines())


def one_machine(a: Workspace, run: str, train: list[str]) -> float:
    started = time.perf_counter()
    wait_all([launch(a, "a", ["--run", run, "--nproc-per-node", "2", MAIN, *train])], "the one-machine run")
    return time.perf_counter() - started


def two_machines(a: Workspace, b: Workspace, run: str, train: list[str]) -> float:
    group = ["--run", run, "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-timeout", "120"]
    started = time.perf_counter()
    procs = [launch(a, "a", [*group, MAIN, *train])]
    # b once a's torchrun runs, so that a hosts the rendezvous (as the machine of --rdzv-endpoint does)
    status = a.run_dir(run) / "status.a.json"
    while not (status.is_file() and '"pid": ' in status.read_text()):
        if procs[0].poll() is not None:
            break
        time.sleep(0.02)
    procs.append(launch(b, "b", [*group, MAIN, *train]))
    wait_all(procs, "the two-machine run")
    return time.perf_counter() - started


def same_weights(x: Path, y: Path) -> bool:
    import torch

    p, q = torch.load(x, weights_only=True), torch.load(y, weights_only=True)
    return p.keys() == q.keys() and all(torch.equal(p[k], q[k]) for k in p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way, interleaved (default 3)")
    parser.add_argument("--limit-train", type=int, default=12000, help="training images (default 12000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    train = ["--limit-train", str(args.limit_train), "--epochs", str(args.epochs), "--threads", "1", "--device", "cpu", "--log-every", "0"]

    import torch

    machine = {
        "cpu": cpu(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "rclone": drive.find_rclone().version_text,
    }
    print(f"CPU {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, rclone {machine['rclone']}", flush=True)
    rounds: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="drivelab-multinode-bench-") as tmp:
        server = S3Server(Path(tmp) / "s3").start()
        workspaces: list[Workspace] = []
        try:
            get_mnist(server.backing / BUCKET / "dataset", mirrors=[MNIST_MIRROR])
            for name, local_files in (("a", "copy"), ("b", "set-aside")):
                ws = init_workspace(Path(tmp) / name).workspace
                drive.connect(ws, "box", "s3", server.options(), root=BUCKET)
                drive.attach(ws, "box", local_files=local_files)
                workspaces.append(ws)
            a, b = workspaces
            load = os.getloadavg()[0]
            for i in range(args.rounds):
                load = max(load, os.getloadavg()[0])
                one = one_machine(a, f"one-{i}", train)
                two = two_machines(a, b, f"two-{i}", train)
                runs = server.backing / BUCKET / "runs"
                found = {
                    "round": i,
                    "one_wall_s": round(one, 2),
                    "one_train_s": round(train_seconds(runs / f"one-{i}"), 2),
                    "two_wall_s": round(two, 2),
                    "two_train_s": round(train_seconds(runs / f"two-{i}"), 2),
                    # the same two ranks on the same data, whichever way
                    "same_weights": same_weights(runs / f"one-{i}" / "model.pt", runs / f"two-{i}" / "model.pt"),
                }
                rounds.append(found)
                print(
                    f"round {i}: one machine {one:.1f} s (train {found['one_train_s']:.1f} s), two machines {two:.1f} s "
                    f"(train {found['two_train_s']:.1f} s): x{two / one:.2f}; same weights: {found['same_weights']}",
                    flush=True,
                )
            load = max(load, os.getloadavg()[0])
        finally:
            for ws in workspaces:
                drive.detach(ws)
            server.close()

    summary = {key: round(statistics.median(r[key] for r in rounds), 2) for key in ("one_wall_s", "two_wall_s", "one_train_s", "two_train_s")}
    summary["wall_ratio"] = round(summary["two_wall_s"] / summary["one_wall_s"], 3)
    summary["train_ratio"] = round(summary["two_train_s"] / summary["one_train_s"], 3)
    summary["overhead_s"] = round(summary["two_wall_s"] - summary["one_wall_s"], 2)
    print(
        f"median of {args.rounds}: one machine {summary['one_wall_s']:.1f} s, two machines {summary['two_wall_s']:.1f} s: "
        f"x{summary['wall_ratio']:.2f} wall ({summary['overhead_s']:+.1f} s), x{summary['train_ratio']:.2f} in the epochs themselves "
        f"(two cores: this is overhead, not speed-up); load average up to {load:.1f}"
    )
    doc = {"machine": machine, "load_average_max": round(load, 2), "train": train, "rounds": rounds, "summary": summary}
    print(json.dumps(doc, indent=2))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Two machines against one: the same data-parallel run on two machines, or on one.

    .venv/bin/python benchmarks/multinode.py                         # two workspaces on loopback, one S3 drive
    .venv/bin/python benchmarks/multinode.py --rounds 5 --json out.json
    sudo .venv/bin/python benchmarks/multinode.py --hosts            # two hosts of a Slurm cluster on this machine

Each way trains the same two ranks on the same data, so both end with the same
weights (the benchmark checks that they are bitwise equal), and the difference is
what spreading the run over two machines costs. Round by round, interleaved:

Workspaces (the default): two workspaces stand for two machines, each with its
own .drivelab state, rclone mount and VFS cache of one `rclone serve s3` on
loopback: `drivelab run --nproc-per-node 2` in one, against `drivelab run --nnodes 2
--nproc-per-node 1 --rdzv-endpoint 127.0.0.1:PORT` in both at once.

Hosts (`--hosts`; needs root): a Slurm cluster of two hosts made on this
machine by `scripts/slurm-local.sh up --nodes 2` (Linux namespaces: each host its
own hostname, processes, network address and /tmp, on a bridge; the rest of the
file system shared), in a folder, subnet and bridge of the benchmark's own, taken
down at the end. The workspace is on the shared file system with a local drive.

- one host:  `drivelab run --on slurm --nodes 1 --nproc-per-node 2`: two
  processes on one host, torchrun's standalone rendezvous, Gloo over loopback;
- two hosts: `drivelab run --on slurm --nodes 2`: one process on each host, a
  c10d rendezvous on the first, Gloo between the hosts' addresses (veth pairs
  through the bridge).

"s/epoch" is the mean of the epochs' times in metrics.jsonl (training and rank 0's
evaluation), "train" their sum; "wall" runs from the launch to the last `drivelab run` exiting (for
Slurm: submission, scheduling and the job's start included). Either way the
two "machines" share this machine's cores, so this measures what the second
one costs (a second supervisor, and mount; the rendezvous; for hosts, Gloo
across network namespaces), not a speed-up: that needs machines of their own.
The CPU's model and its vector and matrix flags are printed first (all its
flags are in --json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from drivelab.data import get_mnist  # noqa: E402
from drivelab.workspace import Workspace, init_workspace  # noqa: E402

MNIST_MIRROR = (ROOT / "tests" / "data" / "mnist").as_uri() + "/"
MAIN = "drive/colab/main.py"
BUCKET = "team"
"""The bucket on the loopback S3 server that both workspaces attach as their drive (--workspaces)."""
SLURM_LOCAL = ROOT / "scripts" / "slurm-local.sh"
CLUSTER = {
    "SLURM_LOCAL_DIR": "/var/tmp/drivelab-multinode-bench-slurm",
    "SLURM_LOCAL_PORTS": "6957 6958",
    "SLURM_LOCAL_SUBNET": "10.213.209.0/24",
    "SLURM_LOCAL_BRIDGE": "dlslurmbnc",
    "SLURM_LOCAL_KEEP": str(ROOT) if ROOT.is_relative_to("/tmp") else "",  # a checkout under /tmp: the hosts still see it
}
"""The benchmark's cluster of hosts: none of these is the single-host cluster's, the tests' or the defaults."""
SIMD = re.compile(r"^(sse4_2|fma|f16c|avx|avx2|avx_vnni|avx512.*|amx.*)$")
"""The CPU flags that decide which kernels PyTorch runs."""


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and its flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, flags


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}, "NO_COLOR": "1", **extra}


def wait_all(procs: list[subprocess.Popen[bytes]], what: str) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"{what} failed (exit {proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")


def epochs(run_dir: Path) -> list[float]:
    return [json.loads(line)["seconds"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def same_weights(x: Path, y: Path) -> bool:
    import torch

    p, q = torch.load(x, weights_only=True), torch.load(y, weights_only=True)
    return p.keys() == q.keys() and all(torch.equal(p[k], q[k]) for k in p)


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


# --- two hosts of a Slurm cluster on this machine -------------------------------------------


def cluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SLURM_LOCAL), *args], env={**os.environ, **CLUSTER}, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def on_hosts(train: list[str], rounds: int, report: Callable[[dict], None]) -> dict:
    """The rounds on one host and on two; the cluster and the workspace are removed at the end, whatever happened."""
    if os.geteuid() != 0:
        raise SystemExit("the hosts are Linux namespaces and a bridge: run --hosts as root (sudo)")
    cluster("down")  # what an interrupted run of this benchmark may have left
    up = cluster("up", "--nodes", "2")
    if up.returncode != 0:
        cluster("down")
        raise SystemExit(f"scripts/slurm-local.sh up --nodes 2 failed:\n{up.stderr[-2000:]}")
    conf = Path(CLUSTER["SLURM_LOCAL_DIR"]) / "etc" / "slurm.conf"
    env = clean_env(SLURM_CONF=str(conf), DRIVELAB_MNIST_MIRROR=MNIST_MIRROR)
    shared = Path(tempfile.mkdtemp(prefix="drivelab-multinode-bench-", dir="/var/tmp"))  # not /tmp: every host has its own
    try:
        ws = init_workspace(shared / "lab").workspace
        get_mnist(ws.dataset, mirrors=[MNIST_MIRROR])  # on the drive once, before the runs, as on a real cluster

        def submit(run: str, *how: str) -> None:
            proc = subprocess.Popen(
                [sys.executable, "-m", "drivelab", "run", "--on", "slurm", *how, "--time", "30", "--run", run, MAIN, *train],
                cwd=ws.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            wait_all([proc], f"run {run}")

        for i in range(rounds):
            one = timed(lambda: submit(f"one-{i}", "--nodes", "1", "--nproc-per-node", "2", "--cpus-per-task", "2"))
            two = timed(lambda: submit(f"two-{i}", "--nodes", "2", "--cpus-per-task", "1"))
            report(measured(i, one, two, ws.run_dir(f"one-{i}"), ws.run_dir(f"two-{i}")))
        nodes = sorted(json.loads(p.read_text())["node"] for p in ws.run_dir(f"two-{rounds - 1}").glob("status.*.json"))
        return {"setup": "hosts", "hosts": nodes, "slurm": subprocess.run(["sinfo", "--version"], env=env, capture_output=True, text=True).stdout.strip()}
    finally:
        down = cluster("down")
        shutil.rmtree(shared, ignore_errors=True)
        if down.returncode == 0:
            shutil.rmtree(CLUSTER["SLURM_LOCAL_DIR"], ignore_errors=True)  # its configuration, state and logs
        else:
            print(f"warning: scripts/slurm-local.sh down failed:\n{down.stderr[-2000:]}", file=sys.stderr)


# --- two workspaces on loopback, one S3 drive ----------------------------------------------


def on_workspaces(train: list[str], rounds: int, report: Callable[[dict], None]) -> dict:
    from rclone_servers import S3Server, free_port

    from drivelab import drive

    def launch(ws: Workspace, node: str, args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "drivelab", "run", *args],
            cwd=ws.root, env=clean_env(DRIVELAB_NODE_NAME=node), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def two_machines(a: Workspace, b: Workspace, run: str) -> None:
        group = ["--run", run, "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-timeout", "120"]
        procs = [launch(a, "a", [*group, MAIN, *train])]
        # b once a's torchrun runs, so that a hosts the rendezvous (as the machine of --rdzv-endpoint does)
        status = a.run_dir(run) / "status.a.json"
        while not (status.is_file() and '"pid": ' in status.read_text()) and procs[0].poll() is None:
            time.sleep(0.02)
        procs.append(launch(b, "b", [*group, MAIN, *train]))
        wait_all(procs, "the two-machine run")

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
            runs = server.backing / BUCKET / "runs"
            for i in range(rounds):
                one = timed(lambda: wait_all([launch(a, "a", ["--run", f"one-{i}", "--nproc-per-node", "2", MAIN, *train])], "the one-machine run"))
                two = timed(lambda: two_machines(a, b, f"two-{i}"))
                report(measured(i, one, two, runs / f"one-{i}", runs / f"two-{i}"))
        finally:
            for ws in workspaces:
                drive.detach(ws)
            server.close()
        return {"setup": "workspaces", "rclone": drive.find_rclone().version_text}


def measured(i: int, one: float, two: float, one_dir: Path, two_dir: Path) -> dict:
    one_epochs, two_epochs = epochs(one_dir), epochs(two_dir)
    return {
        "round": i,
        "one_wall_s": round(one, 2),
        "one_train_s": round(sum(one_epochs), 2),
        "one_epoch_s": round(statistics.mean(one_epochs), 3),
        "two_wall_s": round(two, 2),
        "two_train_s": round(sum(two_epochs), 2),
        "two_epoch_s": round(statistics.mean(two_epochs), 3),
        # the same two ranks on the same data, whichever way
        "same_weights": same_weights(one_dir / "model.pt", two_dir / "model.pt"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", action="store_true", help="two hosts of a Slurm cluster made on this machine (root), not two workspaces")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way, interleaved (default 3)")
    parser.add_argument("--limit-train", type=int, default=12000, help="training images (default 12000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    train = ["--limit-train", str(args.limit_train), "--epochs", str(args.epochs), "--threads", "1", "--device", "cpu", "--log-every", "0"]

    import torch

    model, flags = cpu()
    simd = [f for f in flags if SIMD.match(f)]
    machine = {"cpu": model, "cores": os.cpu_count(), "simd_flags": simd, "flags": flags, "torch": torch.__version__, "python": platform.python_version()}
    print(f"CPU {model}, {machine['cores']} cores, torch {machine['torch']}", flush=True)
    print(f"CPU flags (vector and matrix): {' '.join(simd) or 'none'}", flush=True)
    one_name, two_name = ("one host", "two hosts") if args.hosts else ("one machine", "two machines")
    rounds: list[dict] = []
    load = [os.getloadavg()[0]]

    def report(found: dict) -> None:
        rounds.append(found)
        load.append(os.getloadavg()[0])
        print(
            f"round {found['round']}: {one_name} {found['one_epoch_s']:.2f} s/epoch (train {found['one_train_s']:.1f} s, wall {found['one_wall_s']:.1f} s), "
            f"{two_name} {found['two_epoch_s']:.2f} s/epoch (train {found['two_train_s']:.1f} s, wall {found['two_wall_s']:.1f} s): "
            f"x{found['two_epoch_s'] / found['one_epoch_s']:.2f} per epoch; same weights: {found['same_weights']}",
            flush=True,
        )

    setup = (on_hosts if args.hosts else on_workspaces)(train, args.rounds, report)
    keys = ("one_epoch_s", "two_epoch_s", "one_train_s", "two_train_s", "one_wall_s", "two_wall_s")
    summary = {key: round(statistics.median(r[key] for r in rounds), 3) for key in keys}
    summary["epoch_ratio"] = round(statistics.median(r["two_epoch_s"] / r["one_epoch_s"] for r in rounds), 3)
    summary["train_ratio"] = round(summary["two_train_s"] / summary["one_train_s"], 3)
    summary["wall_ratio"] = round(summary["two_wall_s"] / summary["one_wall_s"], 3)
    summary["overhead_s"] = round(summary["two_wall_s"] - summary["one_wall_s"], 2)
    print(
        f"median of {args.rounds}: {one_name} {summary['one_epoch_s']:.2f} s/epoch, {two_name} {summary['two_epoch_s']:.2f} s/epoch: "
        f"x{summary['epoch_ratio']:.2f} per epoch (the median of the rounds' ratios); wall {summary['one_wall_s']:.1f} s against "
        f"{summary['two_wall_s']:.1f} s (x{summary['wall_ratio']:.2f}, {summary['overhead_s']:+.1f} s); load average up to {max(load):.1f}"
    )
    doc = {"machine": machine, **setup, "load_average_max": round(max(load), 2), "train": train, "rounds": rounds, "summary": summary}
    print(json.dumps({k: v for k, v in doc.items() if k != "machine"} | {"machine": {k: v for k, v in machine.items() if k != "flags"}}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Several machines under torchrun, on this one: real processes, real signals, one drive that both attach.

Two "machines" are two workspaces, each with its own ``.drivelab`` state, its
own rclone mount of the drive and its own VFS cache, both attached to the same
S3 remote (``rclone serve s3`` on loopback), named apart by
``DRIVELAB_NODE_NAME`` (as two hosts are by their host names). Each runs
``drivelab run`` as a user types it on each machine; they meet at a c10d
rendezvous on loopback and train with Gloo on the CPU, one process each.

Machine b keeps its listings of the drive for ten minutes: it does not see
what machine a writes into a folder it has already listed, as a machine on a
real cloud drive may not for a while. What is on the drive is read from the
S3 server's own folder, after both machines flushed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivelab import drive
from drivelab.data import get_mnist
from drivelab.errors import JobError
from drivelab.jobs import JobSpec
from drivelab.jobs._torchrun import parse_group_line, parse_not_formed_line
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import in_ci  # noqa: E402
from _waiting import wait_until  # noqa: E402
from rclone_servers import S3Server, free_port  # noqa: E402
from test_drive import leave_no_mount  # noqa: E402
from test_jobs import Output, child_env, describe, drivelab_argv, pid_alive  # noqa: E402

FUSE_OK, FUSE_WHY = drive.fuse_available()
# FUSE is optional on a user's machine; in CI it must be there, so these fail loudly rather than skip.
needs_fuse = pytest.mark.skipif(not FUSE_OK and not in_ci(), reason=f"no FUSE here: {FUSE_WHY}")

BUCKET = "team"
TRAIN = ["--limit-train", "6000", "--epochs", "2", "--threads", "1", "--device", "cpu", "--log-every", "0"]
MAIN = "drive/colab/main.py"
OUTPUTS = {"metrics.jsonl", "model.pt", "curves.png", "ckpt-epoch0001.pt", "ckpt-epoch0001.pt.sha256", "ckpt-epoch0002.pt", "ckpt-epoch0002.pt.sha256"}


@dataclass
class Machine:
    name: str
    ws: Workspace

    def env(self) -> dict[str, str]:
        return child_env(DRIVELAB_NODE_NAME=self.name)

    def start(self, *args: str) -> tuple[subprocess.Popen[str], Output]:
        proc = subprocess.Popen(
            drivelab_argv(*args), cwd=self.ws.root, env=self.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return proc, Output(proc.stdout)

    def drivelab(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(drivelab_argv(*args), cwd=self.ws.root, env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    def status(self, run: str) -> dict:
        """This machine's status of ``run``, as this machine wrote it (its own mount shows its own writes)."""
        return json.loads((self.ws.run_dir(run) / f"status.{self.name}.json").read_text())


@pytest.fixture(scope="module")
def remote(s3: S3Server, mnist_mirror) -> Path:
    """The common drive's folder on the S3 server, MNIST already on it (as after a first run)."""
    backing = s3.backing / BUCKET
    get_mnist(backing / "dataset", mirrors=[mnist_mirror.url])
    return backing


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory, s3: S3Server, remote: Path) -> Iterator[tuple[Machine, Machine]]:
    """Machines a and b, the drive attached on each: a first (its drive/colab goes to the remote), then b."""
    made: list[Machine] = []
    try:
        for name, local_files, dir_cache in (("a", "copy", None), ("b", "set-aside", "10m")):
            ws = init_workspace(tmp_path_factory.mktemp(f"machine-{name}") / "lab").workspace
            made.append(Machine(name, ws))
            drive.connect(ws, "box", "s3", s3.options(), root=BUCKET)
            drive.attach(ws, "box", local_files=local_files, dir_cache_time=dir_cache)
        assert (made[1].ws.drive / "colab" / "main.py").is_file(), "machine b sees the script machine a put on the drive"
        yield made[0], made[1]
    finally:
        for machine in made:
            leave_no_mount(machine.ws)


def group_args(run: str, port: int, *extra: str) -> list[str]:
    return ["run", "--run", run, "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}", *extra]


def run_group(machines: tuple[Machine, Machine], run: str) -> dict[str, tuple[subprocess.Popen[str], Output]]:
    """Start ``run`` on both machines, b once a's torchrun runs (a hosts the rendezvous); each one's process and output."""
    port = free_port()
    started = {}
    for machine in machines:
        started[machine.name] = machine.start(*group_args(run, port, "--rdzv-timeout", "60"), MAIN, *TRAIN)
        wait_until(f"machine {machine.name}'s torchrun", lambda m=machine: _launched(m, run), 60)
    return started


def _launched(machine: Machine, run: str) -> bool:
    try:
        return bool(machine.status(run)["attempts"][-1]["pid"])
    except (OSError, ValueError, KeyError, IndexError):
        return False


def stop(started: dict[str, tuple[subprocess.Popen[str], Output]]) -> None:
    """What still runs, stopped as a user stops it (SIGTERM: the supervisor stops its job, flushes, records it), else killed."""
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.terminate()
    for proc, _ in started.values():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def finish(started: dict[str, tuple[subprocess.Popen[str], Output]], timeout: float = 180) -> dict[str, str]:
    """Each machine's output once both ended; both must have succeeded."""
    outputs = {}
    try:
        for name, (proc, output) in started.items():
            proc.wait(timeout=timeout)
            outputs[name] = output.finish()
    finally:
        stop(started)
    for name, (proc, _) in started.items():
        assert proc.returncode == 0, f"machine {name}: exit {proc.returncode}\n" + "\n".join(f"--- {n}\n{o}" for n, o in outputs.items())
    return outputs


def on_drive(remote: Path, run: str) -> set[str]:
    return {p.name for p in (remote / "runs" / run).iterdir()}


def state_dict(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)


def equal_weights(a: Path, b: Path) -> bool:
    import torch

    x, y = state_dict(a), state_dict(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def last_accuracy(remote: Path, run: str) -> float:
    return json.loads((remote / "runs" / run / "metrics.jsonl").read_text().splitlines()[-1])["test_accuracy"]


def rank0(machines: tuple[Machine, Machine], run: str) -> Machine:
    return next(m for m in machines if m.status(run)["group"]["rank"] == 0)


@pytest.fixture(scope="module")
def uninterrupted(machines: tuple[Machine, Machine], remote: Path) -> dict[str, str]:
    """The recipe run without a fault on both machines ("two"), and on machine a alone ("one"); their outputs by machine."""
    a, _ = machines
    one = a.drivelab("run", "--run", "one", MAIN, *TRAIN, timeout=300)
    assert one.returncode == 0, describe(one)
    return finish(run_group(machines, "two"))


@pytest.mark.slow
@needs_fuse
def test_two_machines_leave_one_set_of_outputs_and_train_like_one(machines, remote, uninterrupted):
    a, b = machines
    for machine in machines:
        status = machine.status("two")
        assert status["state"] == "succeeded" and status["restarts"] == 0, status
        assert status["node"] == machine.name and status["group"]["id"] == "two" and status["group"]["size"] == 2
        assert status["group"]["nodes"] == sorted(["a", "b"], key=lambda n: 0 if n == rank0(machines, "two").name else 1)
        assert status["command"][:3] == [sys.executable, "-m", "drivelab.jobs._torchrun"] and "c10d" in status["command"]
    assert sorted(m.status("two")["group"]["rank"] for m in machines) == [0, 1]

    # One set of outputs, written by rank 0; a status and a log per machine; nothing else.
    assert on_drive(remote, "two") == OUTPUTS | {"status.a.json", "status.b.json", "log.a", "log.b"}
    metrics = [json.loads(line) for line in (remote / "runs" / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert len(state_dict(remote / "runs" / "two" / "ckpt-epoch0002.pt")["rng_ranks"]) == 2
    first, other = rank0(machines, "two"), (b if rank0(machines, "two") is a else a)
    assert uninterrupted[first.name].count("Epoch  2") == 1 and "Epoch" not in uninterrupted[other.name]
    # Data-parallel over two machines trains like one process.
    assert abs(last_accuracy(remote, "two") - last_accuracy(remote, "one")) <= 0.3, (last_accuracy(remote, "two"), last_accuracy(remote, "one"))

    # Each machine lists the run with its own part in the group.
    for machine in machines:
        rank = machine.status("two")["group"]["rank"]
        listed = machine.drivelab("jobs", "list")
        assert listed.returncode == 0, describe(listed)
        assert f"two: node {rank} of 2 ({machine.name}), group two @ 127.0.0.1:" in listed.stderr, describe(listed)
        logs = machine.drivelab("jobs", "logs", "two")
        assert f"group formed (round 0): node {rank} of 2" in logs.stdout, logs.stdout


def _worker_of(launcher: int) -> int | None:
    """The worker process torchrun (``launcher``) started: its child running the script."""
    try:
        children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    except OSError:
        return None
    for child in map(int, children):
        try:
            if "main.py" in Path(f"/proc/{child}/cmdline").read_text():
                return child
        except OSError:
            continue
    return None


@pytest.mark.slow
@needs_fuse
def test_a_killed_worker_restarts_the_group_which_resumes_to_the_same_weights(machines, remote, uninterrupted):
    """SIGKILL of the worker on the machine without rank 0, once rank 0 wrote its first checkpoint: torchrun
    re-forms the group, every rank resumes from that checkpoint (the other machine gets its bytes from rank 0,
    its view of the drive not showing it), and the weights end bitwise those of the uninterrupted run."""
    started = run_group(machines, "killed")
    try:
        wait_until("the first epoch's checkpoint", lambda: any("Epoch  1" in out.text for _, out in started.values()), 240)
        first = next(m for m in machines if "Epoch  1" in started[m.name][1].text)
        other = next(m for m in machines if m is not first)
        worker = wait_until(f"machine {other.name}'s worker", lambda: _worker_of(other.status("killed")["attempts"][-1]["pid"]), 30)
        assert "Epoch  2" not in started[first.name][1].text, "the run ended before the kill"
        os.kill(worker, signal.SIGKILL)
        wait_until("the kill", lambda: not pid_alive(worker), 30)
        outputs = finish(started)
    finally:
        stop(started)
    context = "\n".join(f"--- {name}\n{text}" for name, text in outputs.items())
    assert "resuming after epoch 1" in outputs[first.name], context
    assert "ckpt-epoch0001.pt sent to rank(s) 1" in outputs[first.name], context
    for machine in machines:
        status = machine.status("killed")
        # torchrun restarted the group, not drivelab: one attempt, the group formed a second time.
        assert status["state"] == "succeeded" and len(status["attempts"]) == 1, context
        assert status["group"]["round"] == 1, (status["group"], context)
    assert [json.loads(line)["epoch"] for line in (remote / "runs" / "killed" / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert equal_weights(remote / "runs" / "two" / "model.pt", remote / "runs" / "killed" / "model.pt"), context


@pytest.mark.slow
@needs_fuse
def test_a_machine_that_never_arrives_ends_the_run_at_the_rendezvous_timeout(machines, remote):
    a, _ = machines
    port = free_port()
    started = time.monotonic()
    done = a.drivelab(*group_args("alone", port, "--rdzv-timeout", "10"), MAIN, *TRAIN, timeout=120)
    took = time.monotonic() - started
    assert done.returncode != 0, describe(done)
    said = done.stdout + done.stderr
    assert f"1 of 2 nodes joined the rendezvous 'alone' at 127.0.0.1:{port} within 10 s" in said, describe(done)
    assert "not restarted" in said and "Traceback" not in done.stderr, describe(done)
    assert took < 60, f"gave up after {took:.0f} s"
    status = a.status("alone")
    assert status["state"] == "failed" and len(status["attempts"]) == 1, status
    assert status["group"]["rank"] is None
    # What says it failed, and nothing else: no checkpoint, no metrics.
    assert on_drive(remote, "alone") == {"status.a.json", "log.a"}


# --- what each machine is told, and how the ranks agree on a checkpoint -----------------------------


def spec(**fields) -> JobSpec:
    return JobSpec(Path(__file__), **{"run": "exp", "nnodes": "2", "rdzv_endpoint": "10.0.0.1:29400", **fields})


def test_several_machines_meet_at_a_c10d_rendezvous_named_after_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVELAB_NODE_NAME", "gpu box/2")
    group = spec(nproc_per_node=4, rdzv_timeout=30)
    group.prepare()
    assert group.node == "gpu-box-2" and group.rendezvous == "c10d"
    argv = group.command(Workspace(tmp_path), tmp_path)
    assert argv[1:3] == ["-m", "drivelab.jobs._torchrun"]
    torchrun = " ".join(argv[argv.index("drivelab.jobs._torchrun") + 1 : argv.index("--")])
    assert torchrun == (
        "--nproc-per-node 4 --nnodes 2 --rdzv-backend c10d --rdzv-endpoint 10.0.0.1:29400 --rdzv-id exp --rdzv-conf join_timeout=30 --max-restarts 3"
    )
    assert "--node-rank" not in argv
    # Given a node rank: torchrun's static rendezvous, as before, which cannot re-form a group.
    static = spec(node_rank=1)
    static.prepare()
    argv = static.command(Workspace(tmp_path), tmp_path)
    assert argv[1:3] == ["-m", "torch.distributed.run"] and "--node-rank" in argv and argv[argv.index("--max-restarts") + 1] == "0"
    one = spec(nproc_per_node=2, nnodes="1", rdzv_endpoint=None, max_restarts=2).command(Workspace(tmp_path), tmp_path)
    assert one[5:8] == ["--standalone", "--max-restarts", "2"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"run": ""}, "2 machines need a run name, the same on each"),
        ({"rdzv_endpoint": None}, "need a rendezvous point"),
        ({"run": "", "rdzv_endpoint": None}, "need a rendezvous point"),
        ({"rdzv_endpoint": "10.0.0.1"}, "not a rendezvous endpoint"),
        ({"nnodes": "3:2"}, "--nnodes must be N or MIN:MAX"),
        ({"node_rank": 0, "rdzv_id": "x"}, "--rdzv-id apply to the c10d rendezvous"),
        ({"node_rank": 2}, "ranks 0 to N-1"),
        ({"nnodes": "1", "max_restarts": 1}, "need 0 or more, and a job under torchrun"),
    ],
)
def test_a_group_that_cannot_form_is_refused_before_anything_starts(fields, message):
    with pytest.raises(JobError, match=re.escape(message)):
        spec(**fields).prepare()


def test_drivelab_run_on_several_machines_wants_the_run_name_and_says_so(tmp_path):
    ws = init_workspace(tmp_path / "lab").workspace
    done = subprocess.run(
        drivelab_argv("run", "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:29400", MAIN),
        cwd=ws.root, env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "need a run name, the same on each" in done.stderr and "--run NAME" in done.stderr, describe(done)
    assert not ws.runs.exists() or not any(ws.runs.iterdir()), "nothing written"
    helped = subprocess.run(drivelab_argv("run", "--help"), env=child_env(COLUMNS="300"), capture_output=True, text=True, timeout=60)
    assert "only for torchrun's static rendezvous" in helped.stdout and "--rdzv-timeout" in helped.stdout, helped.stdout


def test_the_lines_of_drivelabs_torchrun_are_read_back():
    assert parse_group_line("[drivelab] group formed (round 1): node 0 of 2; nodes: a, b") == {"round": 1, "rank": 0, "size": 2, "nodes": ["a", "b"]}
    assert parse_group_line("[drivelab] group formed (round 0): node 3 of 4") == {"round": 0, "rank": 3, "size": 4, "nodes": None}
    assert parse_group_line("Epoch  1  train loss 0.6") is None
    assert parse_not_formed_line("[drivelab] group not formed: 1 of 2 nodes joined") == "1 of 2 nodes joined"


AGREE = r"""
import json, os, shutil, sys, threading
from pathlib import Path
from drivelab.train import join_world, load_agreed_checkpoint
from drivelab.train._checkpoint import save_checkpoint

world = join_world("cpu")
root = Path(sys.argv[1])
mine = root / f"rank{world.rank}"  # each rank's own view of the run folders, as a machine's mount
for case in ("missing", "stale", "late", "same", "none"):
    if world.is_main and case != "none":
        save_checkpoint(root / "rank0" / case, 1, {"case": case, "elapsed": 1.0})
        if case == "stale":  # an older copy under the same name, complete in itself
            save_checkpoint(root / "rank1" / case, 1, {"case": "older", "elapsed": 0.5})
        if case == "same":
            shutil.copytree(root / "rank0" / case, root / "rank1" / case)
        if case == "late":  # shows up on rank 1's side a second after the ranks start looking
            threading.Timer(1.0, shutil.copytree, (root / "rank0" / case, root / "rank1" / case)).start()
    world.barrier()
    loaded = load_agreed_checkpoint(mine / case, world, wait=8.0 if case == "late" else 0.5)
    state = loaded.state or {}
    with open(root / f"seen{world.rank}.jsonl", "a") as out:  # a file each: the ranks' lines would interleave on one output
        out.write(json.dumps({"case": case, "rank": world.rank, "from": state.get("case"), "digest": loaded.digest, "sent_to": loaded.sent_to}) + "\n")
world.close()
"""


def test_every_rank_resumes_from_the_bytes_rank_0_chose_whatever_its_view_of_the_drive(tmp_path):
    """Two ranks, each with its own folder standing for its machine's view of the run folder: rank 1's lacks
    the checkpoint, holds an older copy under its name, gets it late, holds the same one, or rank 0 has none."""
    script = tmp_path / "agree.py"
    script.write_text(AGREE)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script), str(tmp_path)],
        env=child_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, describe(done)
    lines = [line for rank in (0, 1) for line in (tmp_path / f"seen{rank}.jsonl").read_text().splitlines()]
    seen = {(r["case"], r["rank"]): r for r in map(json.loads, lines)}
    for case, sent_to in (("missing", [1]), ("stale", [1]), ("late", []), ("same", [])):
        zero, one = seen[(case, 0)], seen[(case, 1)]
        assert zero["from"] == one["from"] == case and zero["digest"] == one["digest"], (zero, one)
        assert zero["sent_to"] == sent_to, (case, zero)
    assert seen[("none", 0)]["from"] is None and seen[("none", 1)]["from"] is None


def test_a_resumed_run_takes_its_metrics_from_the_checkpoint_not_from_a_stale_metrics_file(tmp_path, mnist_mirror):
    """The rank 0 that resumes may sit on another machine than the one that wrote metrics.jsonl, and see an old
    copy of it: the history travels in the checkpoint, so the rewritten metrics.jsonl matches the weights."""
    from drivelab.train import TrainConfig, read_metrics, train

    get_mnist(tmp_path / "data", mirrors=[mnist_mirror.url])
    config = TrainConfig(dataset_root=tmp_path / "data", run_dir=tmp_path / "run", epochs=1, limit_train=1000, device="cpu", threads=1)
    first = train(config)
    (tmp_path / "run" / "metrics.jsonl").write_text("")  # what another machine's mount may still show
    again = train(config)
    assert again.resumed_from == 1 and [m.epoch for m in again.history] == [1]
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == first.history

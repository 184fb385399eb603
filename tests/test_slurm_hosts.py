"""drivelab across two hosts of a real Slurm cluster: ``run --on slurm --nodes 2``, and ``run --nnodes 2`` by hand.

The hosts are Linux namespaces on this machine (``scripts/slurm-local.sh up --nodes 2``, the
``slurm_hosts`` fixture): each has its own hostname (node1, node2), process table, network
address and /tmp, and they share the rest of the file system, as a cluster's nodes share a
home or project file system. The workspace is on that shared part (under /var/tmp), with a
local drive (a plain folder in it), so the hosts see one run folder. The daemons are Slurm's
own, the batch script is the one drivelab writes, torchrun's c10d rendezvous runs on node1,
and the two ranks train over Gloo between the hosts' addresses.

Every training run here is the same recipe on two ranks (one a host, one thread each), so the
uninterrupted Slurm run, the one whose processes on node2 are killed before it is requeued, and
the one started by hand on both hosts all end with the same weights, bit for bit. The dataset
is put on the drive once, before the runs (as docs/jobs.md says to), from the MNIST copy in
tests/data/mnist.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _waiting import wait_until  # noqa: E402
from test_jobs import Output, child_env, describe, drivelab_argv  # noqa: E402

from drivelab.data import get_mnist  # noqa: E402
from drivelab.workspace import init_workspace  # noqa: E402

if TYPE_CHECKING:
    from _slurm import LocalSlurmHosts

pytest_plugins = ["_slurm"]  # the `slurm_hosts` fixture

MIRROR = (Path(__file__).resolve().parent / "data" / "mnist").as_uri() + "/"
"""The MNIST copy in the repository, which every host reads from the shared file system."""
MAIN = "drive/colab/main.py"
# Four epochs: after the first checkpoint, room to kill a host's processes before the run ends.
TRAIN = ["--limit-train", "6000", "--epochs", "4", "--threads", "1", "--device", "cpu", "--log-every", "0"]
ON_TWO_HOSTS = ["--on", "slurm", "--nodes", "2", "--cpus-per-task", "1", "--time", "10"]
RUN_FILES = {"metrics.jsonl", "model.pt", "curves.png", "slurm.sh", "slurm.json", "log", "log.node1", "log.node2", "status.node1.json", "status.node2.json"}
"""A run folder of two hosts, checkpoints aside: one set of outputs, the batch script's log, a log and a status per host."""
FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


@pytest.fixture(scope="module")
def workspace(slurm_hosts: LocalSlurmHosts) -> Iterator[Path]:
    """A workspace every host sees, MNIST on its drive; its jobs still queued at the end are cancelled, then it is removed."""
    from _slurm import shared_folder  # imported by pytest as the plugin first (pytest_plugins)

    with shared_folder("drivelab-slurm-hosts-") as folder:
        root = init_workspace(folder / "lab").workspace.root
        get_mnist(root / "drive" / "dataset", mirrors=[MIRROR])
        try:
            yield root
        finally:
            listed = slurm_hosts.run("squeue", "--noheader", "--format=%i %Z", check=False).stdout.splitlines()
            mine = [job_id for job_id, _, workdir in (line.partition(" ") for line in listed) if Path(workdir).is_relative_to(root)]
            if mine:
                slurm_hosts.run("scancel", *mine, check=False)
                wait_until("the tests' jobs to end", lambda: not slurm_hosts.run("squeue", "--noheader", "--jobs", ",".join(mine), check=False).stdout.strip(), within=60)


def env_for(slurm_hosts: LocalSlurmHosts, **extra: str) -> dict[str, str]:
    """drivelab's environment here and on the hosts: the cluster's SLURM_CONF, the MNIST copy, no DRIVELAB_NODE_NAME."""
    return child_env(SLURM_CONF=str(slurm_hosts.conf), DRIVELAB_MNIST_MIRROR=MIRROR, **extra)


def drivelab(slurm_hosts: LocalSlurmHosts, workspace: Path, *args: str, on: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``drivelab ARGS`` in the workspace: on this machine (the login node), or with ``on`` on that host."""
    env = env_for(slurm_hosts)
    if on is None:
        return subprocess.run(drivelab_argv(*args), check=False, cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return slurm_hosts.on(on, *drivelab_argv(*args), check=False, env=env, cwd=workspace, timeout=timeout)


def checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.name[10:14]) for p in run_dir.glob("ckpt-epoch*.pt.sha256"))


def same_weights(a: Path, b: Path) -> bool:
    import torch

    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def wait_ended(slurm_hosts: LocalSlurmHosts, job_id: str, within: float) -> str:
    return wait_until(f"Slurm job {job_id} to end", lambda: (state := slurm_hosts.state(job_id)) in FINISHED and state, within=within, every=0.5)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


@pytest.fixture(scope="module")
def whole(slurm_hosts: LocalSlurmHosts, workspace: Path) -> subprocess.CompletedProcess[str]:
    """The uninterrupted run on two hosts, in the foreground: ``drivelab run --on slurm`` waits for the job, printing its log."""
    return drivelab(slurm_hosts, workspace, "run", *ON_TWO_HOSTS, "--run", "whole", MAIN, *TRAIN, timeout=240)


@pytest.mark.timeout(300)
def test_a_run_on_two_hosts_is_one_torchrun_group_with_one_model_and_a_log_per_host(slurm_hosts, workspace, whole):
    assert whole.returncode == 0, describe(whole)
    run_dir = workspace / "drive" / "runs" / "whole"
    job_id = json.loads((run_dir / "slurm.json").read_text())["job_ids"][-1]
    assert {p.name for p in run_dir.iterdir() if not p.name.startswith("ckpt-")} == RUN_FILES
    assert checkpoints(run_dir)[-1] == 4
    assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]

    # One group of two: c10d, its rendezvous on the allocation's first node (node1), at the job's own port.
    statuses = {node: json.loads((run_dir / f"status.{node}.json").read_text()) for node in slurm_hosts.nodes}
    ranks = {}
    for node, status in statuses.items():
        assert status["state"] == "succeeded" and status["node"] == node and status["host"] == node, status
        group = status["group"]
        assert (group["rendezvous"], group["id"], group["size"], group["round"]) == ("c10d", job_id, 2, 0), group
        assert group["endpoint"] == f"node1:{29500 + int(job_id) % 1000}", group
        ranks[group["rank"]] = node
        assert status["command"][1:3] == ["-m", "drivelab.jobs._torchrun"], status["command"]
    assert sorted(ranks) == [0, 1] and statuses["node1"]["group"]["nodes"] == [ranks[0], ranks[1]]
    # Rank 0 trained, printed and wrote the outputs; the other host has only its own log and status.
    assert "Epoch  4" in read(run_dir / f"log.{ranks[0]}") and "Epoch" not in read(run_dir / f"log.{ranks[1]}")
    assert "[slurm]" not in read(run_dir / "log.node1") and "drivelab run ended with exit code 0" in read(run_dir / "log")
    # Slurm ran one task on each host.
    output = read(workspace / ".drivelab" / "slurm" / "whole" / f"slurm-{job_id}.out")
    assert re.search(r"^0: drivelab: job whole: succeeded$", output, re.M) and re.search(r"^1: drivelab: job whole: succeeded$", output, re.M), output
    # drivelab run waited, printing the whole job's log as it grew: every host's lines, each named.
    for node in slurm_hosts.nodes:
        assert f"{node}: [drivelab] starting: " in whole.stderr and f"{node}: [drivelab] job whole: succeeded" in whole.stderr, describe(whole)
    assert f"{ranks[0]}: Epoch  4" in whole.stderr and "Run folder:" in whole.stderr, describe(whole)

    # The login node and each host show the whole job: Slurm's state, and every host's part.
    parts = f"on each node: node1 succeeded (rank {statuses['node1']['group']['rank']} of 2), node2 succeeded (rank {statuses['node2']['group']['rank']} of 2)"
    for where in (None, *slurm_hosts.nodes):
        listed = drivelab(slurm_hosts, workspace, "jobs", "list", on=where)
        assert listed.returncode == 0, describe(listed)
        assert f"whole: Slurm job {job_id} COMPLETED on node[1-2]; {parts}" in listed.stderr + listed.stdout, describe(listed)
        as_json = drivelab(slurm_hosts, workspace, "jobs", "list", "--json", on=where)
        job = {j["run"]: j for j in json.loads(as_json.stdout)["jobs"]}["whole"]
        assert job["state"] == "COMPLETED" and job["slurm"]["nodes"] == "node[1-2]", job
        assert sorted((n["node"], n["state"]) for n in job["slurm"]["nodes_recorded"]) == [("node1", "succeeded"), ("node2", "succeeded")], job
        logs = drivelab(slurm_hosts, workspace, "jobs", "logs", "whole", on=where)
        assert logs.returncode == 0, describe(logs)
        for node in slurm_hosts.nodes:
            assert f"{node}: [drivelab] job whole: succeeded\n" in logs.stdout, logs.stdout
        assert re.search(rf"^\[slurm\] .* job {job_id}: drivelab run ended with exit code 0$", logs.stdout, re.M), logs.stdout
        assert f"{ranks[0]}: Epoch  4" in logs.stdout, logs.stdout
    # --tail: the last lines of each log (the batch script's, then each host's).
    tail = drivelab(slurm_hosts, workspace, "jobs", "logs", "whole", "--tail", "1").stdout.splitlines()
    assert len(tail) == 3 and tail[0].startswith("[slurm]") and tail[1] == "node1: [drivelab] job whole: succeeded" and tail[2].startswith("node2: "), tail


@pytest.mark.timeout(360)
def test_a_host_killed_mid_run_then_requeued_resumes_to_the_weights_of_an_uninterrupted_run(slurm_hosts, workspace, whole):
    assert whole.returncode == 0, describe(whole)
    submitted = drivelab(slurm_hosts, workspace, "run", *ON_TWO_HOSTS, "--detach", "--json", "--run", "killed", MAIN, *TRAIN)
    assert submitted.returncode == 0, describe(submitted)
    job_id = json.loads(submitted.stdout)["slurm"]["job_id"]
    run_dir = workspace / "drive" / "runs" / "killed"
    wait_until("the first checkpoint", lambda: checkpoints(run_dir), within=150, every=0.05)

    # Every process of the job on node2 but its supervisor (torchrun's agent and the training worker) dies at once.
    killed = slurm_hosts.on("node2", "pkill", "-KILL", "-e", "-f", "--", str(workspace / MAIN), check=False)
    assert killed.returncode == 0 and len(killed.stdout.splitlines()) == 2, describe(killed)
    assert max(checkpoints(run_dir)) < 4, "the run ended before the kill"
    wait_until("node2's drivelab run to see the kill", lambda: "[drivelab] killed by SIGKILL" in read(run_dir / "log.node2"), within=30)
    # Then Slurm requeues the job: drivelab run stops on both hosts; the job runs again and resumes.
    slurm_hosts.run("scontrol", "requeue", job_id)
    assert wait_ended(slurm_hosts, job_id, within=240) == "COMPLETED", read(run_dir / "log.node1") + read(run_dir / "log.node2")

    log = drivelab(slurm_hosts, workspace, "jobs", "logs", "killed").stdout
    assert re.search(rf"^\[slurm\] .* job {job_id}: running on node\[1-2\] \(requeued 1 time\(s\)\)$", log, re.M), log
    resumed = re.findall(r"^node\d: Run .*, resuming after epoch (\d)$", log, re.M)
    assert resumed and 1 <= int(resumed[-1]) <= 3, log
    assert slurm_hosts.job(job_id)["Restarts"] == "1"
    assert [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert same_weights(workspace / "drive" / "runs" / "whole" / "model.pt", run_dir / "model.pt"), log


TICKS = """
    import itertools, os, time
    for i in itertools.count():
        print("tick", i, "rank", os.environ.get("RANK"), flush=True)
        time.sleep(0.2)
"""


@pytest.mark.timeout(180)
def test_jobs_list_logs_and_stop_cover_the_whole_job_from_the_login_node_and_from_a_host(slurm_hosts, workspace):
    (workspace / "drive" / "colab" / "ticks.py").write_text(textwrap.dedent(TICKS))
    # A two-minute limit, warned 115 s before it: USR2 comes 5 to 35 s after the start (slurmctld looks every 30 s).
    submitted = drivelab(slurm_hosts, workspace, "run", "--on", "slurm", "--nodes", "2", "--time", "2", "--warn-before", "115", "--detach", "--run", "ticks", "drive/colab/ticks.py")
    assert submitted.returncode == 0, describe(submitted)
    run_dir = workspace / "drive" / "runs" / "ticks"
    assert "#SBATCH --signal=B:USR2@115\n" in (run_dir / "slurm.sh").read_text()
    job_id = json.loads((run_dir / "slurm.json").read_text())["job_ids"][-1]
    for node in slurm_hosts.nodes:
        wait_until(f"{node} to tick", lambda n=node: "tick 3 " in read(run_dir / f"log.{n}"), within=90, every=0.1)

    for where in (None, *slurm_hosts.nodes):
        listed = drivelab(slurm_hosts, workspace, "jobs", "list", on=where)
        said = listed.stderr + listed.stdout
        assert re.search(rf"ticks: Slurm job {job_id} RUNNING on node\[1-2\]; on each node: node1 running \(rank [01] of 2\), node2 running \(rank [01] of 2\)", said), describe(listed)
        logs = drivelab(slurm_hosts, workspace, "jobs", "logs", "ticks", on=where)
        assert re.search(r"^node1: tick \d+ rank [01]$", logs.stdout, re.M) and re.search(r"^node2: tick \d+ rank [01]$", logs.stdout, re.M), logs.stdout
    follow = slurm_hosts.popen_on("node1", *drivelab_argv("jobs", "logs", "ticks", "-f", "--tail", "0"), env=env_for(slurm_hosts), cwd=workspace)
    followed = Output(follow.stdout)
    try:
        # Following from node1: what both hosts write from now on, each line named.
        for node in slurm_hosts.nodes:
            wait_until(f"{node}'s ticks in `jobs logs -f`", lambda n=node: re.search(rf"^{n}: tick \d+ rank [01]$", followed.text, re.M), within=30, every=0.1)
        # The warning before the time limit reaches the batch script; with no checkpoint there is nothing to requeue for.
        wait_until("USR2 before the time limit", lambda: "USR2: not requeueing: no new checkpoint" in read(run_dir / "log"), within=60, every=0.2)
        stopped = drivelab(slurm_hosts, workspace, "jobs", "stop", "ticks", "--json", on="node2")
        assert stopped.returncode == 0, describe(stopped)
        assert json.loads(stopped.stdout)["state"] == "CANCELLED", describe(stopped)
        follow.wait(timeout=30)  # -f ends with the job
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    shown = followed.finish()
    assert follow.returncode == 0, shown
    assert "node2: [drivelab] job ticks: stopped (SIGTERM)" in shown and re.search(r"^\[slurm\] .*: drivelab run ended with exit code", shown, re.M), shown
    assert slurm_hosts.state(job_id) == "CANCELLED"
    for node in slurm_hosts.nodes:
        assert json.loads((run_dir / f"status.{node}.json").read_text())["state"] == "stopped"
    for node in slurm_hosts.nodes:  # nothing of the job is left on the hosts
        assert "ticks.py" not in slurm_hosts.on(node, "ps", "-eo", "args=").stdout


@pytest.mark.timeout(300)
def test_drivelab_run_by_hand_on_two_hosts_names_them_by_their_hostnames(slurm_hosts, workspace, whole):
    assert whole.returncode == 0, describe(whole)
    env = env_for(slurm_hosts)
    assert not any(name.startswith("DRIVELAB_NODE") for name in env)
    argv = drivelab_argv("run", "--run", "hand", "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", "node1:29400", "--rdzv-timeout", "60", MAIN, *TRAIN)
    started = {node: slurm_hosts.popen_on(node, *argv, env=env, cwd=workspace) for node in slurm_hosts.nodes}
    outputs = {}
    try:
        for node, proc in started.items():
            outputs[node], _ = proc.communicate(timeout=240)
    finally:
        for node, proc in started.items():
            if proc.poll() is None:
                slurm_hosts.on(node, "pkill", "-TERM", "-f", "--", "--run hand", check=False)
                proc.kill()
                proc.wait()
    said = "\n".join(f"--- {node} (exit {started[node].returncode})\n{text}" for node, text in outputs.items())
    assert all(proc.returncode == 0 for proc in started.values()), said

    run_dir = workspace / "drive" / "runs" / "hand"
    statuses = {node: json.loads((run_dir / f"status.{node}.json").read_text()) for node in slurm_hosts.nodes}
    for node, status in statuses.items():
        assert status["state"] == "succeeded" and status["node"] == node and status["host"] == node, status
        assert status["group"]["endpoint"] == "node1:29400" and status["group"]["id"] == "hand", status
    assert sorted(statuses["node1"]["group"]["nodes"]) == ["node1", "node2"], said
    assert {p.name for p in run_dir.iterdir() if not p.name.startswith("ckpt-")} == {"metrics.jsonl", "model.pt", "curves.png", "log.node1", "log.node2", "status.node1.json", "status.node2.json"}
    # The same two ranks, the same recipe: the weights of the run Slurm started.
    assert same_weights(workspace / "drive" / "runs" / "whole" / "model.pt", run_dir / "model.pt"), said

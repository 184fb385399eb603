"""``drivelab run --on slurm`` and ``drivelab jobs`` on a real Slurm: the local one-node cluster.

Every job is submitted as a user would, ``python -m drivelab run --on slurm ...`` in a
workspace, and runs under Slurm's own daemons: the batch script drivelab kept in the run
folder, ``srun``, ``drivelab run`` on the node. Requeues are Slurm's (``scontrol requeue``)
or the batch script's own, on the USR2 that ``--signal=B:USR2@N`` sends before the time
limit (sent here at once with ``scancel --signal=USR2 --batch``, as in test_slurm_local).
The trainer runs on a slice of MNIST from the tests' loopback mirror, which the job finds
through ``$DRIVELAB_MNIST_MIRROR``: the node gets the submitting environment.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _waiting import wait_until
from test_jobs import child_env, drivelab_argv

from drivelab.workspace import init_workspace

if TYPE_CHECKING:
    from _slurm import LocalSlurm

pytest_plugins = ["_slurm"]  # the `slurm` fixture

# Six short epochs: one thread, so that two jobs share the node's two CPUs and train reproducibly.
TRAIN = ["--limit-train", "2000", "--epochs", "6", "--threads", "1", "--device", "cpu", "--log-every", "0"]
ON_SLURM = ["--on", "slurm", "--cpus-per-task", "1", "--time", "10"]
FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}




def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return init_workspace(tmp_path / "lab").workspace.root


@pytest.fixture
def on_cluster(tmp_path: Path, slurm: LocalSlurm):
    """``run(*args)``: drivelab in the workspace, talking to the local cluster; a test that fails leaves no job of its own queued."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = env or child_env(SLURM_CONF=str(slurm.conf))
        return subprocess.run(drivelab_argv(*args), check=False, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    yield run
    listed = slurm.run("squeue", "--noheader", "--format=%i %Z", check=False).stdout.splitlines()
    mine = [job_id for job_id, _, workdir in (line.partition(" ") for line in listed) if Path(workdir).is_relative_to(tmp_path)]
    if mine:
        slurm.run("scancel", *mine, check=False)


def listed(run, workspace: Path) -> dict[str, dict]:
    proc = run("jobs", "list", "--json", cwd=workspace)
    assert proc.returncode == 0, describe(proc)
    return {job["run"]: job for job in json.loads(proc.stdout)["jobs"]}


def checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.name[10:14]) for p in run_dir.glob("ckpt-epoch*.pt.sha256"))


def same_weights(a: Path, b: Path) -> bool:
    import torch

    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.timeout(240)
def test_a_slurm_job_trains_requeues_twice_and_ends_with_the_weights_of_an_uninterrupted_one(workspace, slurm, on_cluster, mnist_mirror, tmp_path):
    env = child_env(SLURM_CONF=str(slurm.conf), DRIVELAB_MNIST_MIRROR=mnist_mirror.url)
    main = "drive/colab/main.py"
    # Each its own dataset folder: two downloads into one folder at once would race.
    whole_args = ["--data-dir", "drive/dataset-whole", *TRAIN]
    # The uninterrupted run, in the foreground: drivelab run waits for its Slurm job and prints its log.
    console = tmp_path / "whole.console"
    with open(console, "w") as out:
        whole = subprocess.Popen(
            drivelab_argv("run", *ON_SLURM, "--run", "whole", main, *whole_args),
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
    try:
        # The interrupted one, detached: submitted, then drivelab returns.
        submitted = on_cluster(
            "run", *ON_SLURM, "--detach", "--json", "--run", "requeued", main, "--data-dir", "drive/dataset-requeued", *TRAIN, cwd=workspace, env=env
        )
        assert submitted.returncode == 0, describe(submitted)
        job_id = json.loads(submitted.stdout)["slurm"]["job_id"]
        run_dir = workspace / "drive" / "runs" / "requeued"
        log = run_dir / "log"

        # Slurm requeues it after its first checkpoint: it resumes from that checkpoint.
        wait_until("the first checkpoint", lambda: checkpoints(run_dir), within=90, every=0.05)
        slurm.run("scontrol", "requeue", job_id)
        resumed = wait_until("the resumed run", lambda: re.findall(r"resuming after epoch (\d+)", log.read_text()), within=90, every=0.1)
        start = int(resumed[0])
        assert start >= 1
        # Then, after a newer checkpoint, USR2 (what comes before the time limit): it requeues itself.
        wait_until("a newer checkpoint", lambda: max(checkpoints(run_dir)) > start, within=60, every=0.05)
        slurm.run("scancel", "--signal=USR2", "--batch", job_id)

        ended = wait_until("the requeued job to end", lambda: (state := slurm.state(job_id)) in FINISHED and state, within=120, every=0.5)
        assert ended == "COMPLETED", log.read_text()
        assert whole.wait(timeout=120) == 0, console.read_text()
    finally:
        if whole.poll() is None:
            whole.kill()

    text = log.read_text()
    assert len(re.findall(r"resuming after epoch \d+", text)) == 2, text
    assert "USR2: stopping drivelab run, then requeueing the job to resume from ckpt-epoch" in text, text
    assert slurm.job(job_id)["Restarts"] == "2"
    shown = console.read_text()
    assert "Submitted run whole to Slurm as job" in shown and "Epoch  6" in shown and "Run folder:" in shown, shown

    jobs = listed(on_cluster, workspace)
    for run, restarts in (("whole", 0), ("requeued", 2)):
        job = jobs[run]
        assert job["state"] == "COMPLETED", job
        assert job["slurm"]["nodes"] == slurm.node and job["slurm"]["restarts"] == restarts, job
        folder = workspace / "drive" / "runs" / run
        assert [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]
        assert (folder / "model.pt").is_file() and (folder / "curves.png").is_file() and checkpoints(folder)[-1] == 6
        # The batch script is kept, readable, and a script bash accepts.
        script = folder / "slurm.sh"
        assert script.read_text().startswith("#!/bin/bash\n") and f"#SBATCH --job-name={run}" in script.read_text()
        assert subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True).returncode == 0
    assert jobs["requeued"]["slurm"]["job_id"] == job_id
    assert same_weights(workspace / "drive" / "runs" / "whole" / "model.pt", run_dir / "model.pt")

    shown = on_cluster("jobs", "list", cwd=workspace)
    assert shown.returncode == 0 and f"requeued: Slurm job {job_id} COMPLETED on {slurm.node}, requeued 2 time(s)" in shown.stderr, describe(shown)
    # The table speaks drivelab's words for every run, with Slurm's beside them.
    row = next(line for line in shown.stderr.splitlines() if line.startswith("requeued "))
    assert "succeeded (Slurm COMPLETED)" in row, describe(shown)


TICKS = """
    import itertools, time
    for i in itertools.count():
        print("tick", i, flush=True)
        time.sleep(0.2)
"""


@pytest.mark.timeout(120)
def test_jobs_stop_cancels_a_slurm_job_and_its_kept_batch_script_runs_again_by_hand(workspace, slurm, on_cluster):
    (workspace / "drive" / "colab" / "ticks.py").write_text(textwrap.dedent(TICKS))
    submitted = on_cluster("run", "--on", "slurm", "--detach", "--run", "ticks", "drive/colab/ticks.py", cwd=workspace)
    assert submitted.returncode == 0, describe(submitted)
    assert "Submitted run ticks to Slurm as job" in submitted.stderr and "drivelab jobs stop ticks" in submitted.stderr
    log = workspace / "drive" / "runs" / "ticks" / "log"
    wait_until("the job to tick", lambda: log.exists() and "tick 3" in log.read_text(), within=60, every=0.1)
    first = listed(on_cluster, workspace)["ticks"]
    assert first["state"] == "RUNNING" and first["slurm"]["nodes"] == slurm.node, first

    logs = on_cluster("jobs", "logs", "ticks", "--tail", "2", cwd=workspace)
    assert logs.returncode == 0 and len(logs.stdout.splitlines()) == 2 and "tick" in logs.stdout, describe(logs)
    follow = subprocess.Popen(
        drivelab_argv("jobs", "logs", "ticks", "-f"),
        cwd=workspace,
        env=child_env(SLURM_CONF=str(slurm.conf)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        stopped = on_cluster("jobs", "stop", "ticks", "--json", cwd=workspace)
        assert stopped.returncode == 0, describe(stopped)
        assert json.loads(stopped.stdout)["state"] == "CANCELLED"
        followed, _ = follow.communicate(timeout=30)  # -f ends with the job
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0 and "tick" in followed, followed
    assert slurm.state(first["slurm"]["job_id"]) == "CANCELLED"
    assert listed(on_cluster, workspace)["ticks"]["state"] == "CANCELLED"
    # Kept in the run's record once read: it stays known after Slurm forgets the job.
    record = json.loads((workspace / "drive" / "runs" / "ticks" / "slurm.json").read_text())
    assert record["ended"][first["slurm"]["job_id"]]["state"] == "CANCELLED", record
    again = on_cluster("jobs", "stop", "ticks", cwd=workspace)
    assert again.returncode == 1 and "is not running" in again.stderr, describe(again)

    # The kept batch script, submitted by hand: the same run goes on, and drivelab jobs follow the new job.
    by_hand = slurm.run("sbatch", "--parsable", str(workspace / "drive" / "runs" / "ticks" / "slurm.sh"), cwd=workspace).stdout.strip().split(";")[0]
    wait_until("the new job to tick", lambda: log.read_text().count("tick 3") == 2, within=60, every=0.1)
    second = listed(on_cluster, workspace)["ticks"]
    assert second["slurm"]["job_id"] == by_hand and second["state"] == "RUNNING", second
    assert on_cluster("jobs", "stop", "ticks", cwd=workspace).returncode == 0
    assert slurm.state(by_hand) == "CANCELLED"


FAILS = """
    import os
    print("mirror", os.environ.get("DRIVELAB_MNIST_MIRROR"), flush=True)
    raise SystemExit("the data folder is not there")
"""


@pytest.mark.timeout(90)
def test_a_job_that_fails_on_its_node_names_the_node_and_its_last_lines(workspace, slurm, on_cluster):
    (workspace / "drive" / "colab" / "fails.py").write_text(textwrap.dedent(FAILS))
    env = child_env(SLURM_CONF=str(slurm.conf), DRIVELAB_MNIST_MIRROR="http://127.0.0.1:9/mnist/")
    proc = on_cluster("run", "--on", "slurm", "--restarts", "0", "--run", "fails", "drive/colab/fails.py", cwd=workspace, env=env)
    assert proc.returncode == 1, describe(proc)
    error = proc.stderr[proc.stderr.index("error: ") :]
    assert re.search(rf"error: job 'fails': Slurm job \d+ ended FAILED on node {slurm.node} \(exit code 1\)", error), describe(proc)
    # The script's last lines, as the node's drivelab run reported them; the environment was the submitter's.
    assert "mirror http://127.0.0.1:9/mnist/\nthe data folder is not there" in error, describe(proc)
    assert "hint: fix what it reports, then submit it again" in error and "slurm.sh" in error, describe(proc)
    assert listed(on_cluster, workspace)["fails"]["state"] == "FAILED"


@pytest.mark.timeout(60)
def test_a_job_that_cannot_start_on_its_node_shows_the_end_of_slurms_output(workspace, slurm, on_cluster, monkeypatch):
    from drivelab.jobs import JobSpec, SlurmOptions, follow_slurm_run, job_status, slurm_failure, submit_to_slurm
    from drivelab.workspace import Workspace

    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    ws = Workspace(workspace)
    # drivelab's Python is not at this path on the node: srun cannot start drivelab run there.
    spec = JobSpec(workspace / "drive" / "colab" / "main.py", run="nowhere", python="/nonexistent/python3")
    status = submit_to_slurm(ws, spec, SlurmOptions())
    assert status.slurm and status.slurm["job_id"]
    for _ in follow_slurm_run(ws, "nowhere"):
        pass
    error = slurm_failure(job_status(ws, "nowhere"))
    assert error is not None and f"ended FAILED on node {slurm.node}" in error.message, error
    assert "/nonexistent/python3" in error.message and "the end of its output" in error.message, error.message


@pytest.mark.timeout(60)
def test_a_refused_submission_says_why_and_leaves_nothing_behind(workspace, slurm, on_cluster):
    proc = on_cluster("run", "--on", "slurm", "--partition", "no-such-partition", "--run", "refused", "drive/colab/main.py", cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    assert "error: sbatch refused the job: invalid partition specified: no-such-partition" in proc.stderr, describe(proc)
    assert "hint: `sinfo --summarize` lists the partitions" in proc.stderr
    assert not (workspace / "drive" / "runs" / "refused").exists()
    assert not (workspace / ".drivelab" / "slurm" / "refused").exists()
    # A run that exists already keeps what it had: no batch script of the refused submission.
    run_dir = workspace / "drive" / "runs" / "earlier"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("{}\n")
    proc = on_cluster("run", "--on", "slurm", "--partition", "no-such-partition", "--run", "earlier", "drive/colab/main.py", cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.jsonl"]
    assert listed(on_cluster, workspace) == {}


def test_without_a_slurm_client_the_error_says_how_to_get_one(workspace, tmp_path):
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    proc = subprocess.run(
        drivelab_argv("run", "--on", "slurm", "--run", "x", "drive/colab/main.py"),
        check=False,
        cwd=workspace,
        env=child_env(PATH=str(empty)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, describe(proc)
    assert "error: no Slurm client on this machine: `sbatch` is not on PATH" in proc.stderr, describe(proc)
    assert "login node" in proc.stderr and "slurm-client" in proc.stderr
    assert not (workspace / "drive" / "runs" / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partition", "debug"], "--partition ask Slurm for resources: add --on slurm"),
        (["--on", "slurm", "--nnodes", "2"], "on Slurm, drivelab sets the machines"),
        (["--on", "slurm", "--time", "1:2:3:4"], "not a Slurm time limit"),
        (["--warn-before", "60"], "--warn-before ask Slurm for resources: add --on slurm"),
        (["--on", "slurm", "--warn-before", "0"], "--warn-before must be 1 to 65535 seconds, not 0"),
        (["--on", "slurm", "--time", "1", "--warn-before", "60"], "--warn-before 60 is not before the time limit: --time 1 is 60 s"),
    ],
)
def test_slurm_options_are_usage_errors_where_they_do_not_fit(workspace, args, message):
    proc = subprocess.run(
        drivelab_argv("run", *args, "drive/colab/main.py"), check=False, cwd=workspace, env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, describe(proc)
    assert message in " ".join(proc.stderr.replace("│", " ").split()), describe(proc)


def test_the_batch_script_of_several_nodes_runs_drivelab_run_under_torchrun_on_each(workspace):
    from drivelab.jobs import JobSpec, SlurmOptions, batch_script
    from drivelab.workspace import Workspace

    spec = JobSpec(workspace / "drive" / "colab" / "main.py", ["--epochs", "4"], run="big")
    text = batch_script(Workspace(workspace), spec, SlurmOptions(nodes=2, gpus_per_node=4, time="2:00:00", partition="gpu", account="proj"))
    for directive in (
        "--nodes=2",
        "--ntasks-per-node=1",
        "--gpus-per-node=4",
        "--time=2:00:00",
        "--partition=gpu",
        "--account=proj",
        "--signal=B:USR2@120",
        "--requeue",
    ):
        assert f"#SBATCH {directive}\n" in text, text
    assert 'first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)' in text
    command = " ".join(text[text.index("srun ") : text.index(" &\n")].replace("\\\n", " ").split())
    assert command.startswith('srun --nodes="$SLURM_NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 --label '), command
    assert f"-m drivelab run --workspace {workspace} --run big --restarts 3 --backoff 0.1 --nproc-per-node 4" in command, command
    assert command.endswith('--nnodes "$SLURM_NNODES" --rdzv-endpoint "$first_node:$port" --rdzv-id "$SLURM_JOB_ID" drive/colab/main.py --epochs 4'), command
    assert subprocess.run(["bash", "-n"], check=False, input=text, text=True, capture_output=True).returncode == 0
    # A short limit gets its USR2 a third of the way before it, not 120 s (at its start).
    short = batch_script(Workspace(workspace), spec, SlurmOptions(time="2"))
    assert "#SBATCH --signal=B:USR2@40\n" in short and "--label" not in short and "--nproc-per-node" not in short
    assert "#SBATCH --signal=B:USR2@100\n" in batch_script(Workspace(workspace), spec, SlurmOptions(time="5"))
    # --warn-before, as given, whatever the limit it is within.
    for limit, lead in ((None, 600), ("30", 300), ("2", 100)):
        assert f"#SBATCH --signal=B:USR2@{lead}\n" in batch_script(Workspace(workspace), spec, SlurmOptions(time=limit, warn_before=lead))

"""The local single-host Slurm (scripts/slurm-local.sh) does what drivelab's Slurm jobs need.

Real daemons, real commands: batch jobs run to completion and write their output,
a requeued job runs again, a signal reaches the batch script's handler (sent by
hand, and before the time limit as ``--signal=B:USR1@N`` asks), a cancelled job
ends CANCELLED, an unknown partition is refused by name, and submitit runs a
Python function on the cluster and returns its result.

And the cluster of several hosts on this machine (``up --nodes 2``, each host a set of
Linux namespaces): a job step runs on two different hostnames; each host has its own
process table (seen from the host and from a job step there), its own /tmp, and its own
address, at which the other host reaches it; the rest of the file system is shared; and
``down`` leaves no bridge, veth, namespace holder nor daemon behind.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import skip_or_fail
from _waiting import wait_until

if TYPE_CHECKING:
    from _slurm import LocalSlurm, LocalSlurmHosts

pytest_plugins = ["_slurm"]  # the `slurm` and `slurm_hosts` fixtures

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm-local.sh"

FINISHED = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE"}

# A batch script that waits for USR1 (in its handler, which exits 0) and says when its trap is set.
AWAIT_USR1 = """\
trap 'echo "USR1 restart=${SLURM_RESTART_COUNT:-0}" >> signals.txt; exit 0' USR1
echo ready > ready.txt
# bash runs a trap between commands: wait on a short sleep, not in one long one.
for _ in $(seq 600); do sleep 1 & wait $!; done
exit 1
"""


@pytest.fixture(autouse=True)
def _cancel_leftover_jobs(request, tmp_path):
    """A test of the single-host cluster that fails leaves no job of its own running (they would hold the node's CPUs)."""
    if "slurm" not in request.fixturenames:
        yield
        return
    slurm = request.getfixturevalue("slurm")
    yield
    listed = slurm.run("squeue", "--noheader", "--format=%i %Z", check=False).stdout.splitlines()
    mine = [job_id for job_id, _, workdir in (line.partition(" ") for line in listed)
            if Path(workdir).is_relative_to(tmp_path)]
    if mine:
        slurm.run("scancel", *mine, check=False)


def batch_script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return path


def submit(slurm: LocalSlurm, workdir: Path, *options: str) -> str:
    """Submit a batch job (``sbatch --parsable``) running in ``workdir``; its id."""
    out = slurm.run("sbatch", "--parsable", f"--partition={slurm.partition}", f"--chdir={workdir}",
                    "--output=slurm-%j.out", *options).stdout
    return out.strip().split(";")[0]


def wait_finished(slurm: LocalSlurm, job_id: str, within: float) -> str:
    """The job's final state, once it has one."""
    return wait_until(f"job {job_id} to finish", lambda: (s := slurm.state(job_id)) in FINISHED and s,
                      within=within, every=0.2)


def completion_record(slurm: LocalSlurm, job_id: str) -> str:
    """The job's last state in the job completion log: what ``sacct --completion`` reads (plain
    ``sacct`` needs an accounting database, which the local cluster has not)."""
    out = slurm.run("sacct", "--completion", "--parsable2", "--noheader", "--format=JobID,State",
                    f"--jobs={job_id}").stdout
    states = [line.split("|")[1] for line in out.splitlines() if line.split("|")[0] == job_id]
    return states[-1] if states else ""


@pytest.mark.timeout(60)
def test_sbatch_wait_completes_and_writes_its_output(tmp_path, slurm):
    script = batch_script(tmp_path / "hello.sh", 'echo "hello from job $SLURM_JOB_ID on $SLURMD_NODENAME"\n')

    proc = slurm.run("sbatch", "--wait", "--parsable", f"--partition={slurm.partition}", f"--chdir={tmp_path}",
                     "--output=out-%j.txt", str(script), timeout=50)
    job_id = proc.stdout.strip().split(";")[0]

    # sbatch returns once the job has finished; the job may still be COMPLETING for a moment.
    assert wait_finished(slurm, job_id, within=10) == "COMPLETED"
    assert (tmp_path / f"out-{job_id}.txt").read_text() == f"hello from job {job_id} on {slurm.node}\n"
    assert wait_until("the completion record", lambda: completion_record(slurm, job_id), within=10) == "COMPLETED"


@pytest.mark.timeout(90)
def test_a_requeued_job_runs_again_and_completes(tmp_path, slurm):
    # The first run waits to be requeued; the second (SLURM_RESTART_COUNT=1) finishes at once.
    script = batch_script(tmp_path / "requeue.sh", """\
echo "run ${SLURM_RESTART_COUNT:-0}" >> runs.txt
if [ "${SLURM_RESTART_COUNT:-0}" -eq 0 ]; then sleep 120; fi
""")
    job_id = submit(slurm, tmp_path, str(script))
    runs = tmp_path / "runs.txt"
    wait_until("the first run to start", runs.exists, within=30)

    slurm.run("scontrol", "requeue", job_id)

    # A requeued job may start again once its launch credential expires (cred_expire, 10 s here).
    assert wait_finished(slurm, job_id, within=60) == "COMPLETED"
    assert runs.read_text().splitlines() == ["run 0", "run 1"]
    assert slurm.job(job_id)["Restarts"] == "1"


@pytest.mark.timeout(60)
def test_scancel_signal_reaches_the_batch_scripts_handler(tmp_path, slurm):
    job_id = submit(slurm, tmp_path, str(batch_script(tmp_path / "handler.sh", AWAIT_USR1)))
    wait_until("the batch script's trap to be set", (tmp_path / "ready.txt").exists, within=30)

    # What --signal=B:USR1@N sends before the time limit, sent now: to the batch shell only.
    slurm.run("scancel", "--signal=USR1", "--batch", job_id)

    assert wait_finished(slurm, job_id, within=30) == "COMPLETED"
    assert (tmp_path / "signals.txt").read_text() == "USR1 restart=0\n"


@pytest.mark.timeout(90)
def test_signal_before_the_time_limit_reaches_the_batch_script(tmp_path, slurm):
    # slurmctld checks time limits every 30 s: with a 1-minute limit and USR1 asked for 25 s before
    # it, the signal comes 5 to 35 s after the start (never before the trap is set).
    script = batch_script(tmp_path / "warned.sh", AWAIT_USR1)
    job_id = submit(slurm, tmp_path, "--time=1", "--signal=B:USR1@25", str(script))

    assert wait_finished(slurm, job_id, within=75) == "COMPLETED"
    assert (tmp_path / "signals.txt").read_text() == "USR1 restart=0\n"


@pytest.mark.timeout(60)
def test_scancel_ends_a_running_job_cancelled(tmp_path, slurm):
    job_id = submit(slurm, tmp_path, str(batch_script(tmp_path / "long.sh", "echo ready > ready.txt\nsleep 300\n")))
    wait_until("the job to start", (tmp_path / "ready.txt").exists, within=30)

    slurm.run("scancel", job_id)

    assert wait_finished(slurm, job_id, within=30) == "CANCELLED"
    assert wait_until("the completion record", lambda: completion_record(slurm, job_id), within=10) == "CANCELLED"


@pytest.mark.timeout(30)
def test_sbatch_refuses_an_unknown_partition_naming_it(tmp_path, slurm):
    proc = slurm.run("sbatch", "--partition=no-such-partition", f"--chdir={tmp_path}", "--wrap=true", check=False)

    assert proc.returncode != 0
    assert "invalid partition specified: no-such-partition" in proc.stderr
    assert not proc.stdout.strip()  # no job id


@pytest.mark.timeout(30)
def test_the_script_reports_status_and_refuses_unknown_commands(slurm):
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    status = subprocess.run(["bash", str(SCRIPT), "status"], check=False, env=env, capture_output=True, text=True,
                            timeout=20)
    assert status.returncode == 0, status.stderr
    assert slurm.partition in status.stdout and slurm.node in status.stdout

    wrong = subprocess.run(["bash", str(SCRIPT), "start"], check=False, env=env, capture_output=True, text=True,
                           timeout=20)
    assert wrong.returncode == 2
    assert "usage:" in wrong.stderr and "up|down|status" in wrong.stderr


@pytest.mark.timeout(90)
def test_submitit_runs_a_function_and_returns_its_result(tmp_path, slurm, monkeypatch):
    try:
        import submitit
    except ImportError:
        skip_or_fail("submitit is not installed (pip install 'submitit>=1.5,<2')")
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))  # submitit runs sbatch with this process's environment

    def add(a: int, b: int) -> tuple[int, str | None]:  # nested: pickled by value, not imported in the job
        import os
        return a + b, os.environ.get("SLURM_JOB_PARTITION")

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit" / "%j")
    assert executor.cluster == "slurm"
    executor.update_parameters(slurm_partition=slurm.partition, timeout_min=5, cpus_per_task=1, mem_gb=1)
    job = executor.submit(add, 2, 3)

    # No accounting, so submitit cannot learn a job's state from sacct (it warns, and says UNKNOWN);
    # it sees the job done when its result file appears.
    wait_until(f"submitit job {job.job_id} to finish", lambda: job.done() or slurm.state(job.job_id) in FINISHED,
               within=60, every=0.5)
    assert job.result() == (5, slurm.partition)
    # The result file is written before the job's processes have exited.
    assert wait_finished(slurm, job.job_id, within=30) == "COMPLETED"


# A cluster of several hosts on this machine: `scripts/slurm-local.sh up --nodes 2`.


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder all the hosts see: under /var/tmp (pytest's tmp_path is under /tmp, which every host has its own of)."""
    path = Path(tempfile.mkdtemp(prefix="drivelab-slurm-shared-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(") ")[2][:1] != "Z"


def _processes_in_pid_namespace_of(pid: int) -> set[int]:
    """The processes (their pids here) in the PID namespace of process ``pid``."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == namespace:
                    found.add(int(entry.name))
            except OSError:
                pass  # ended meanwhile
    return found


@pytest.mark.timeout(120)
def test_srun_on_two_hosts_runs_a_task_on_each_hostname(slurm_hosts: LocalSlurmHosts, shared_dir):
    proc = slurm_hosts.run("srun", "--nodes=2", "--ntasks-per-node=1", "--label", f"--chdir={shared_dir}", "hostname",
                           timeout=60)

    names = {line.partition(": ")[2] for line in proc.stdout.splitlines()}
    assert names == set(slurm_hosts.nodes) and len(names) == 2, proc.stdout
    assert socket.gethostname() not in names


@pytest.mark.timeout(90)
def test_each_host_has_its_own_process_table(slurm_hosts: LocalSlurmHosts, shared_dir):
    first, second = slurm_hosts.nodes
    marker = f"sleep {random.randint(100_000, 999_999)}"
    starter, pid_on_first = slurm_hosts.start_on(first, marker)
    try:
        def table(host: str) -> str:
            return slurm_hosts.on(host, "ps", "-eo", "pid=,args=").stdout

        def step_table(host: str) -> str:
            return slurm_hosts.run("srun", f"--nodelist={host}", "--nodes=1", f"--chdir={shared_dir}",
                                   "ps", "-eo", "args=", timeout=60).stdout

        assert f"{pid_on_first} {marker}" in " ".join(table(first).split()), table(first)
        assert marker not in table(second)
        # PID 1 of a host is the process that holds its namespaces.
        assert f"drivelab-slurm-host {second} " in slurm_hosts.on(second, "ps", "-o", "args=", "-p", "1").stdout
        # A job step sees the process table of the host it runs on.
        assert marker in step_table(first)
        assert marker not in step_table(second)
    finally:
        slurm_hosts.on(first, "kill", pid_on_first, check=False)
        starter.wait(timeout=20)


@pytest.mark.timeout(90)
def test_hosts_reach_each_other_and_share_all_but_tmp(slurm_hosts: LocalSlurmHosts, shared_dir):
    first, second = slurm_hosts.nodes
    (shared_dir / "greeting.txt").write_text("hello from the shared disk\n")
    address = slurm_hosts.address(first)
    server, pid = slurm_hosts.start_on(
        first, f"exec {sys.executable} -m http.server --bind {address} 8000 --directory {shared_dir}")
    try:
        # No proxy: a host reaches the cluster's addresses only.
        fetch = ("import urllib.request as r; o = r.build_opener(r.ProxyHandler({})); "
                 f"print(o.open('http://{address}:8000/greeting.txt', timeout=5).read().decode(), end='')")
        got = wait_until(f"{second} to fetch a file from {first}'s web server",
                         lambda: (p := slurm_hosts.on(second, sys.executable, "-c", fetch, check=False)).returncode == 0
                         and p.stdout, within=30, every=0.2)
        assert got == "hello from the shared disk\n"
    finally:
        slurm_hosts.on(first, "kill", pid, check=False)
        server.wait(timeout=20)

    # A host's one route is the cluster's subnet: there is no way out of it.
    routes = slurm_hosts.on(second, "ip", "-4", "route", "show").stdout.splitlines()
    assert [route.split()[0] for route in routes] == [slurm_hosts.subnet]

    # Each host has its own /tmp ...
    name = f"drivelab-{uuid.uuid4().hex}"
    slurm_hosts.on(first, "sh", "-c", f"echo first > /tmp/{name}")
    assert slurm_hosts.on(first, "cat", f"/tmp/{name}").stdout == "first\n"
    assert slurm_hosts.on(second, "test", "-e", f"/tmp/{name}", check=False).returncode == 1
    assert not (Path("/tmp") / name).exists()
    # ... and shares the rest of the file system with the others and with this machine.
    slurm_hosts.on(second, "sh", "-c", f"echo second > {shared_dir}/from-second")
    assert slurm_hosts.on(first, "cat", f"{shared_dir}/from-second").stdout == "second\n"
    assert (shared_dir / "from-second").read_text() == "second\n"


@pytest.mark.timeout(30)
def test_the_script_refuses_bad_settings_for_hosts_before_making_anything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SLURM_LOCAL_DIR"] = str(tmp_path / "never-made")

    def up(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), "up", *args], check=False, env={**env, **settings},
                              capture_output=True, text=True, timeout=20)

    for count in ("0", "two", "201"):
        proc = up("--nodes", count, SLURM_LOCAL_DIR="/var/tmp/drivelab-never-made")
        assert proc.returncode == 2 and f"--nodes takes a number of hosts from 1 to 200, not '{count}'" in proc.stderr
    assert "usage:" in up("--nodes").stderr
    proc = up("--nodes", "2", SLURM_LOCAL_DIR="/var/tmp/drivelab-never-made", SLURM_LOCAL_SUBNET="8.8.8.0/24")
    assert proc.returncode == 1 and "SLURM_LOCAL_SUBNET=8.8.8.0/24 is not a private subnet" in proc.stderr
    proc = up("--nodes", "2", SLURM_LOCAL_DIR="/var/tmp/drivelab-never-made", SLURM_LOCAL_SUBNET="10.9.0.5/24")
    assert proc.returncode == 1 and "did you mean 10.9.0.0/24?" in proc.stderr
    proc = up("--nodes", "2")  # SLURM_LOCAL_DIR under /tmp
    assert proc.returncode == 1 and "under /tmp or /run, of which every host has its own" in proc.stderr
    assert not (tmp_path / "never-made").exists() and not Path("/var/tmp/drivelab-never-made").exists()


@pytest.mark.timeout(90)
def test_down_leaves_no_bridge_veth_namespace_holder_nor_daemon(slurm_hosts: LocalSlurmHosts):
    # Everything the cluster runs: every process of each host (its holder, munged, slurmd,
    # slurmctld on the first), each holder's parent (the unshare that made the namespaces),
    # and this machine's munged for the cluster.
    processes = set()
    for host in slurm_hosts.nodes:
        holder = slurm_hosts.holder(host)
        processes |= _processes_in_pid_namespace_of(holder)
        processes.add(int(Path(f"/proc/{holder}/stat").read_text().rpartition(") ")[2].split()[1]))
    processes.add(int((slurm_hosts.state_dir / "munge" / "controller" / "munged.pid").read_text()))
    assert len(processes) >= 4 * len(slurm_hosts.nodes) + 1
    assert Path("/sys/class/net", slurm_hosts.bridge).exists()

    slurm_hosts.script("down")

    assert not [name for name in os.listdir("/sys/class/net") if name.startswith(slurm_hosts.bridge)]
    assert not [pid for pid in processes if _alive(pid)]
    conf = f"SLURM_CONF={slurm_hosts.conf}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.name != str(os.getpid()):
                assert conf not in (entry / "environ").read_bytes().split(b"\0"), (entry / "cmdline").read_bytes()
        except OSError:
            pass  # ended meanwhile
    assert str(slurm_hosts.state_dir) not in Path("/proc/self/mountinfo").read_text()
    assert not (slurm_hosts.state_dir / "run" / "hosts").exists()
    assert Path("/etc/hosts").read_text() == slurm_hosts.etc_hosts
    status = slurm_hosts.script("status", check=False)
    assert status.returncode == 3 and status.stdout.strip() == "not running"

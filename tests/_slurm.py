"""A real single-host Slurm for tests: ``scripts/slurm-local.sh``, brought up once per session.
And a cluster of two hosts on this machine (``up --nodes 2``), brought up once per module.

``slurm`` (a session fixture) runs ``scripts/slurm-local.sh up``, which starts the
cluster, or returns at once when it is already running, and yields a
:class:`LocalSlurm`: its ``SLURM_CONF``, its partition, and :meth:`LocalSlurm.run`
for Slurm commands. Use it with ``pytest_plugins = ["_slurm"]`` in the test module.

Where it cannot come up (not Linux, no root nor passwordless sudo, packages missing)
the tests skip with the reason; under CI they fail with it instead (see ``_guards``).
Outside CI the fixture never installs packages: ``scripts/slurm-local.sh up`` (run
once, by hand) does. Under CI it may, though the CI set-up is expected to have
brought the cluster up before the tests.

The cluster is left running when the session ends, whoever started it: a second
run then starts in a fraction of a second, and a test session never cancels the
jobs of another that shares the cluster. ``scripts/slurm-local.sh down`` stops it.

``slurm_hosts`` (a module fixture) brings up a cluster of two hosts, each a set of
Linux namespaces, with a folder, ports, subnet and bridge of its own (``HOSTS_SETTINGS``),
so that it and the single-host cluster never meet; it yields a :class:`LocalSlurmHosts`
and removes the cluster (``down``) when the module is done, whatever happened. One test
session at a time has it (a lock file); it needs root. Its hosts share the file system
but for /tmp and /run: ``shared_folder`` makes a folder they all see (under /var/tmp).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import in_ci, skip_or_fail

__all__ = ["HOSTS_SETTINGS", "SCRIPT", "SHARED_ROOT", "LocalSlurm", "LocalSlurmHosts", "shared_folder", "slurm", "slurm_hosts"]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "slurm-local.sh"
UP_TIMEOUT = 300
"""Seconds ``up`` may take: a few when installed, a minute or two when it installs the packages."""


@dataclass(frozen=True)
class LocalSlurm:
    """The running local cluster: where its configuration is, and its (default) partition."""

    conf: Path
    partition: str
    node: str

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with ``SLURM_CONF`` pointing at the local cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, timeout: float = 30, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command (``sbatch``, ``scontrol``, ...) against the local cluster.

        With ``check`` a non-zero exit fails the test, showing the command's output.
        """
        proc = subprocess.run(args, check=False, env=self.env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}", pytrace=False)
        return proc

    def job(self, job_id: str) -> dict[str, str]:
        """A job's fields (``JobState``, ``Restarts``, ...) from ``scontrol show job``.

        Finished jobs stay there for the cluster's MinJobAge (10 minutes); there is no
        accounting database, so ``sacct`` would not find them.
        """
        out = self.run("scontrol", "show", "job", "--oneliner", job_id).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def state(self, job_id: str) -> str:
        """A job's state: ``PENDING``, ``RUNNING``, ``COMPLETED``, ``CANCELLED``, ..."""
        return self.job(job_id).get("JobState", "")


def _read_env_file(path: Path) -> dict[str, str]:
    """The ``export NAME=VALUE`` lines that ``up`` writes for shells to source."""
    values = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"export (\w+)=(.*)", line.strip())
        if match:
            values[match[1]] = match[2]
    return values


@pytest.fixture(scope="session")
def slurm() -> Iterator[LocalSlurm]:
    """The local single-host Slurm, up (started now, or already running); left running afterwards."""
    if not sys.platform.startswith("linux"):
        skip_or_fail("the local Slurm runs on Linux only")
    if not SCRIPT.is_file():
        pytest.fail(f"{SCRIPT} is missing")
    env = {**os.environ, "SLURM_LOCAL_INSTALL": "1" if in_ci() else "0"}
    try:
        proc = subprocess.run(["bash", str(SCRIPT), "up"], check=False, env=env, capture_output=True,
                              text=True, timeout=UP_TIMEOUT)
    except subprocess.TimeoutExpired:
        skip_or_fail(f"`{SCRIPT.name} up` did not finish within {UP_TIMEOUT} s")
    if proc.returncode != 0:
        why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        skip_or_fail(f"the local Slurm is not up (`scripts/slurm-local.sh up` exited {proc.returncode}: "
                     f"{' / '.join(why)})")
    state_dir = Path(os.environ.get("SLURM_LOCAL_DIR", "/var/lib/drivelab-slurm"))
    values = _read_env_file(state_dir / "env")
    cluster = LocalSlurm(conf=Path(values["SLURM_CONF"]), partition=values["SLURM_LOCAL_PARTITION"],
                         node=values["SLURM_LOCAL_NODE"])
    nodes = cluster.run("sinfo", "--noheader", "--partition", cluster.partition, "--format", "%a %T").stdout.split()
    if nodes[:1] != ["up"] or nodes[1:2] not in (["idle"], ["mixed"], ["allocated"], ["completing"]):
        skip_or_fail(f"the local Slurm's partition {cluster.partition} is not usable (sinfo: {' '.join(nodes)})")
    yield cluster


HOSTS_DIR = Path("/var/tmp/drivelab-slurm-hosts-test")
"""Where the test cluster of hosts lives: not under /tmp, of which every host has its own."""
HOSTS_SETTINGS = {
    "SLURM_LOCAL_DIR": str(HOSTS_DIR),
    "SLURM_LOCAL_PORTS": "6927 6928",
    "SLURM_LOCAL_SUBNET": "10.213.207.0/24",
    "SLURM_LOCAL_BRIDGE": "dlslurmtst",
    # This checkout (and its virtual environment) when it lies under /tmp, of which each host has its own.
    "SLURM_LOCAL_KEEP": str(Path(__file__).resolve().parents[1]) if Path(__file__).resolve().is_relative_to("/tmp") else "",
}
"""The test cluster of hosts' settings: none of them is the single-host cluster's, nor the defaults."""
HOSTS_LOCK = Path("/run/lock" if Path("/run/lock").is_dir() else "/var/tmp", "drivelab-slurm-hosts-test.lock")
HOSTS_LOCK_WAIT = 240
"""Seconds a test session waits for another one to be done with the cluster of hosts."""


@dataclass(frozen=True)
class LocalSlurmHosts(LocalSlurm):
    """A running cluster of several hosts on this machine (``scripts/slurm-local.sh up --nodes N``)."""

    nodes: tuple[str, ...]
    addresses: tuple[str, ...]
    """Each host's address on the cluster's bridge, in the order of ``nodes``."""
    settings: tuple[tuple[str, str], ...]
    etc_hosts: str
    """This machine's /etc/hosts as it was before ``up``."""

    @property
    def state_dir(self) -> Path:
        return Path(dict(self.settings)["SLURM_LOCAL_DIR"])

    @property
    def bridge(self) -> str:
        return dict(self.settings)["SLURM_LOCAL_BRIDGE"]

    @property
    def subnet(self) -> str:
        return dict(self.settings)["SLURM_LOCAL_SUBNET"]

    def address(self, host: str) -> str:
        return self.addresses[self.nodes.index(host)]

    def script(self, *args: str, timeout: float = 60, check: bool = True,
               env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``scripts/slurm-local.sh ARGS`` with this cluster's settings, in ``env`` (default: this process's
        environment) and ``cwd`` (``exec`` runs its command there too: give a folder the hosts share)."""
        env = {**(os.environ if env is None else env), **dict(self.settings)}
        proc = subprocess.run(["bash", str(SCRIPT), *args], check=False, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, cwd=cwd)
        if check and proc.returncode != 0:
            pytest.fail(f"slurm-local.sh {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}",
                        pytrace=False)
        return proc

    def on(self, host: str, *command: str, timeout: float = 30, check: bool = True,
           env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on ``host`` (``slurm-local.sh exec HOST -- COMMAND``), in ``env`` and ``cwd`` (see :meth:`script`)."""
        return self.script("exec", host, "--", *command, timeout=timeout, check=check, env=env, cwd=cwd)

    def popen_on(self, host: str, *command: str, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> subprocess.Popen[str]:
        """Start ``command`` on ``host`` and return at once: its output (stdout and stderr) comes on ``stdout``."""
        env = {**(os.environ if env is None else env), **dict(self.settings)}
        return subprocess.Popen(["bash", str(SCRIPT), "exec", host, "--", *command], env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def start_on(self, host: str, command: str) -> tuple[subprocess.Popen[str], str]:
        """Start the shell ``command`` in the background on ``host``: the process, and the
        command's pid as the host sees it (for ``on(host, "kill", pid)``)."""
        env = {**os.environ, **dict(self.settings)}
        proc = subprocess.Popen(["bash", str(SCRIPT), "exec", host, "--", "sh", "-c", f"{command} & echo $!; wait"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        return proc, proc.stdout.readline().strip()

    def holder(self, host: str) -> int:
        """The pid of the process that holds ``host``'s namespaces (PID 1 there)."""
        return int((self.state_dir / "run" / f"{host}.pid").read_text())


SHARED_ROOT = Path("/var/tmp")
"""Where tests make folders that every host of a cluster of hosts sees: not /tmp, of which each host has its own."""


@contextlib.contextmanager
def shared_folder(prefix: str) -> Iterator[Path]:
    """A new folder under :data:`SHARED_ROOT`, removed afterwards whatever happened."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SHARED_ROOT))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _take_lock(path: Path, within: float) -> TextIO | None:
    """An open file holding an exclusive lock on ``path``, or None after ``within`` s."""
    handle = path.open("a")
    deadline = time.monotonic() + within
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                return None
            time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm_hosts() -> Iterator[LocalSlurmHosts]:
    """A cluster of two hosts on this machine, up for the module; removed afterwards, whatever happened."""
    if not sys.platform.startswith("linux"):
        skip_or_fail("the local Slurm runs on Linux only")
    if os.geteuid() != 0:
        skip_or_fail("a cluster of hosts on this machine needs root (namespaces, a bridge)")
    for tool, package in (("unshare", "util-linux"), ("nsenter", "util-linux"), ("ip", "iproute2"), ("ps", "procps")):
        if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") is None:
            skip_or_fail(f"{tool} is missing (apt-get install {package})")
    lock = _take_lock(HOSTS_LOCK, HOSTS_LOCK_WAIT)
    if lock is None:
        skip_or_fail(f"another test session has held the cluster of hosts ({HOSTS_LOCK}) for {HOSTS_LOCK_WAIT} s")
    env = {**os.environ, **HOSTS_SETTINGS, "SLURM_LOCAL_INSTALL": "1" if in_ci() else "0"}

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], check=False, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=UP_TIMEOUT)

    try:
        etc_hosts = Path("/etc/hosts").read_text()
        script("down")  # what a test session that was killed may have left
        proc = script("up", "--nodes", "2")
        if proc.returncode != 0:
            why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            why = [line for line in why if "error:" in line] or why[-3:]
            skip_or_fail(f"the local cluster of hosts is not up (`scripts/slurm-local.sh up --nodes 2` exited "
                         f"{proc.returncode}: {' / '.join(why)})")
        values = _read_env_file(HOSTS_DIR / "env")
        nodes = tuple(values["SLURM_LOCAL_NODES"].split(","))
        conf = Path(values["SLURM_CONF"])
        addresses = []
        for node in nodes:
            shown = subprocess.run(["scontrol", "show", "node", node, "--oneliner"], check=True, capture_output=True,
                                   text=True, timeout=30, env={**os.environ, "SLURM_CONF": str(conf)}).stdout
            addresses.append(re.search(r"NodeAddr=(\S+)", shown)[1])
        yield LocalSlurmHosts(conf=conf, partition=values["SLURM_LOCAL_PARTITION"], node=nodes[0], nodes=nodes,
                              addresses=tuple(addresses), settings=tuple(HOSTS_SETTINGS.items()), etc_hosts=etc_hosts)
    finally:
        try:
            down = script("down")
            if down.returncode == 0:
                shutil.rmtree(HOSTS_DIR, ignore_errors=True)
        finally:
            lock.close()
    if down.returncode != 0:
        pytest.fail(f"`scripts/slurm-local.sh down` of the cluster of hosts exited {down.returncode}:\n{down.stderr}",
                    pytrace=False)

"""A real single-host Slurm for tests: ``scripts/slurm-local.sh``, brought up once per session.

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
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import in_ci, skip_or_fail

__all__ = ["SCRIPT", "LocalSlurm", "slurm"]

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

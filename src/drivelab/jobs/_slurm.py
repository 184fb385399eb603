"""Slurm, as drivelab talks to it: ``sbatch``, ``scontrol``, ``sacct`` and ``scancel``.

drivelab calls Slurm's own client commands and reads their parsable output,
the interface Slurm keeps stable across versions and sites. It does not go
through submitit: submitit submits a pickled Python function whose batch
script only works for the job id it was submitted under, while a run's batch
script must stay a plain script that a person can read and submit again with
``sbatch`` (see :mod:`drivelab.jobs._slurm_run`); and its job states come from
``sacct`` alone, which needs an accounting database that many clusters (and
the one-machine test cluster) do not have.

A job's state is asked of ``scontrol show job`` while the controller knows the
job (pending, running, and finished for ``MinJobAge``, 5 minutes by default),
then of ``sacct`` (the accounting database), then of ``sacct --completion``
(the job completion log). It is always polled, never waited for: a job that
died leaves nothing behind to wait on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from drivelab.errors import SlurmError

__all__ = [
    "FINISHED_STATES",
    "WARN_BEFORE",
    "SlurmJobState",
    "SlurmOptions",
    "Submitted",
    "cancel_job",
    "failed_nodes",
    "job_state",
    "parse_time_limit",
    "require_client",
    "submission_environment",
    "submit_batch",
]

WARN_BEFORE = 120
"""Seconds before the time limit that Slurm sends USR2 to the batch script, unless ``--warn-before`` says otherwise.

What has to fit in them, on every node: ``drivelab run`` stopping the script (SIGTERM, SIGKILL after 10 s), the
drive's flush of what is pending (the newest checkpoint, the log: for a checkpoint of a few hundred megabytes,
most of a minute on a slow link), then ``scontrol requeue``. Slurm may send the signal up to a minute early,
never late; a job still running at its limit gets SIGTERM, then SIGKILL after the cluster's KillWait, and ends
TIMEOUT, not requeued. A larger checkpoint or a slower drive needs more: ``--warn-before``."""
WARN_BEFORE_MAX = 65535
"""The most ``--signal=...@SECONDS`` takes (Slurm keeps it in 16 bits)."""
FINISHED_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED"})
"""States of a job that has ended for good (a requeued job goes back to PENDING instead)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*(,[A-Za-z0-9][A-Za-z0-9_.+-]*)*")
_TIMEOUT = 60.0
"""Seconds a Slurm command may take: a controller that does not answer makes it retry for minutes."""
_SRUN_FAILURE = re.compile(r"^srun: error: (\S+): tasks? [0-9,-]+: (.+)$", re.MULTILINE)
# Variables that describe the job or torchrun world the submitting process runs in: a job
# submitted from inside another would inherit them and take its allocation or rendezvous for its own.
_INHERITED_JOB = ("SLURM_", "SLURMD_", "SRUN_", "DRIVELAB_RUN_", "DRIVELAB_RESTART_")
_TORCH_WORLD = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "TORCHELASTIC_RUN_ID")
_KEPT = ("SLURM_CONF",)
"""Slurm variables that say which cluster to talk to, not which job this is."""


# --- what is asked for --------------------------------------------------------------------


def parse_time_limit(text: str) -> int | None:
    """Seconds in a Slurm time limit (``--time``); ``None`` for ``UNLIMITED``/``INFINITE``.

    Slurm's formats: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.
    Raises :class:`SlurmError` for anything else, before ``sbatch`` is asked.
    """
    value = text.strip()
    if value.upper() in ("UNLIMITED", "INFINITE"):
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+(?::\d+){0,2})", value)
    if not match:
        raise SlurmError(
            f"not a Slurm time limit: {text!r}",
            hint="--time takes minutes (90), MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (1-12:00:00 is a day and a half)",
        )
    days, rest = match.group(1), [int(p) for p in match.group(2).split(":")]
    if days is not None:
        hours, minutes, seconds = (rest + [0, 0])[:3]
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(rest) == 1:
        return rest[0] * 60
    if len(rest) == 2:
        return rest[0] * 60 + rest[1]
    return (rest[0] * 60 + rest[1]) * 60 + rest[2]


@dataclass
class SlurmOptions:
    """What a run asks Slurm for: ``drivelab run --on slurm``'s options. ``None``: the cluster's default."""

    nodes: int = 1
    gpus_per_node: int | None = None
    """GPUs on each node; each node's ``drivelab run`` then starts one process per GPU (torchrun)."""
    cpus_per_task: int | None = None
    """CPUs for each node's ``drivelab run`` and everything it starts."""
    time: str | None = None
    """Time limit, in Slurm's formats (:func:`parse_time_limit`)."""
    partition: str | None = None
    account: str | None = None
    warn_before: int | None = None
    """Seconds before the time limit that the batch script gets USR2; ``None``: :data:`WARN_BEFORE`, or a third of
    a shorter limit (see :meth:`usr2_lead`)."""

    def validate(self) -> None:
        """Raise :class:`SlurmError` for options that cannot make a batch script, before anything is written."""
        if self.nodes < 1:
            raise SlurmError(f"--nodes must be 1 or more, not {self.nodes}")
        if self.gpus_per_node is not None and self.gpus_per_node < 0:
            raise SlurmError(f"--gpus-per-node must be 0 or more, not {self.gpus_per_node}")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise SlurmError(f"--cpus-per-task must be 1 or more, not {self.cpus_per_task}")
        if self.time is not None:
            parse_time_limit(self.time)
        for flag, value in (("--partition", self.partition), ("--account", self.account)):
            if value is not None and not _NAME.fullmatch(value):
                raise SlurmError(f"{flag} {value!r} is not a Slurm name", hint="names are letters, digits and . _ + - (several partitions: a,b)")
        if self.warn_before is not None:
            if not 1 <= self.warn_before <= WARN_BEFORE_MAX:
                raise SlurmError(f"--warn-before must be 1 to {WARN_BEFORE_MAX} seconds, not {self.warn_before}")
            limit = parse_time_limit(self.time) if self.time else None
            if limit is not None and self.warn_before >= limit:
                raise SlurmError(
                    f"--warn-before {self.warn_before} is not before the time limit: --time {self.time.strip()} is {limit} s",  # type: ignore[union-attr]
                    hint="warn fewer seconds before the limit, or ask for a longer --time",
                )

    def usr2_lead(self) -> int:
        """Seconds before the limit for USR2: :attr:`warn_before` as given; else :data:`WARN_BEFORE`, or a third of a
        limit shorter than three times that (a 5-minute limit is warned 100 s before it, not at two fifths of it)."""
        if self.warn_before is not None:
            return self.warn_before
        limit = parse_time_limit(self.time) if self.time else None
        return WARN_BEFORE if limit is None else max(1, min(WARN_BEFORE, limit // 3))

    @property
    def gpus(self) -> int | None:
        return self.gpus_per_node or None

    def directives(self) -> list[str]:
        """The ``#SBATCH`` options for these choices (the run's own ones are added by the batch script)."""
        lines = [f"--nodes={self.nodes}", "--ntasks-per-node=1"]
        if self.cpus_per_task:
            lines.append(f"--cpus-per-task={self.cpus_per_task}")
        if self.gpus:
            lines.append(f"--gpus-per-node={self.gpus}")
        if self.time:
            lines.append(f"--time={self.time.strip()}")
        if self.partition:
            lines.append(f"--partition={self.partition}")
        if self.account:
            lines.append(f"--account={self.account}")
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "cpus_per_task": self.cpus_per_task,
            "time": self.time,
            "partition": self.partition,
            "account": self.account,
            "warn_before": self.usr2_lead(),
        }


# --- the client commands -------------------------------------------------------------------


def require_client() -> Path:
    """The ``sbatch`` this machine submits with; :class:`SlurmError` saying how to get one when there is none."""
    found = shutil.which("sbatch")
    if found is None:
        raise SlurmError(
            "no Slurm client on this machine: `sbatch` is not on PATH",
            hint="run drivelab on the cluster's login node (where sbatch, squeue and scontrol work); on another machine, install "
            "Slurm's client commands (Debian/Ubuntu: apt-get install slurm-client) with the cluster's slurm.conf (in /etc/slurm, "
            "or named by $SLURM_CONF) and MUNGE key",
        )
    return Path(found)


def _run(argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = _TIMEOUT) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        require_client()  # names what is missing, and how to get it
        raise SlurmError(f"`{argv[0]}` is not on PATH, though sbatch is", hint="install the rest of Slurm's client commands")
    try:
        return subprocess.run(
            argv, env=None if env is None else dict(env), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"Slurm did not answer `{' '.join(argv)}` within {timeout:.0f} s",
            hint="is the controller up? `scontrol ping` says; `sinfo` lists the partitions it serves",
        ) from None
    except OSError as exc:
        raise SlurmError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc


def _messages(stderr: str, command: str) -> str:
    """Slurm's error lines without the ``sbatch: error:`` prefixes, one per line."""
    lines = [re.sub(rf"^{command}: (error|fatal): ", "", line).strip() for line in stderr.splitlines()]
    return "\n".join(line for line in lines if line) or "(no message)"


def submission_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``sbatch`` runs in, and so the job (``--export=ALL``): this one, less what describes a job or
    torchrun world it runs inside, which a job submitted from there would otherwise take for its own."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if name in _KEPT or not (name.startswith(_INHERITED_JOB) or name in _TORCH_WORLD)}


@dataclass(frozen=True)
class Submitted:
    """What ``sbatch`` answered: the job's id, its cluster (federations, ``--clusters``), its warnings."""

    job_id: str
    cluster: str | None
    warnings: list[str]


def _refusal_hint(message: str) -> str:
    text = message.lower()
    if "partition" in text:
        return "`sinfo --summarize` lists the partitions you may use: pass one with --partition, or none for the cluster's default"
    if "account" in text or "association" in text:
        return "`sacctmgr show associations user=$USER format=account,partition` lists the accounts you may charge: pass one with --account"
    if "time" in text:
        return "--time takes minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, within the partition's limit (`sinfo --format '%P %l'`)"
    if "gres" in text or "gpu" in text:
        return "`sinfo --format '%P %G'` lists each partition's GPUs: pick a partition that has them, or fewer --gpus-per-node"
    if "node" in text or "cpu" in text or "memory" in text:
        return "ask for what a partition has: `sinfo --Node --long` lists its nodes, CPUs and memory"
    return "see `man sbatch` for what the message means"


def submit_batch(script: Path, *, env: Mapping[str, str]) -> Submitted:
    """``sbatch --parsable SCRIPT``: the new job's id; :class:`SlurmError` with Slurm's reason and a hint when refused."""
    require_client()
    proc = _run(["sbatch", "--parsable", str(script)], env=env)
    if proc.returncode != 0:
        message = _messages(proc.stderr, "sbatch")
        raise SlurmError(f"sbatch refused the job: {message}", hint=_refusal_hint(message))
    answer = proc.stdout.strip().splitlines()[-1:] or [""]
    job_id, _, cluster = answer[0].partition(";")
    if not job_id.strip().isdigit():
        raise SlurmError(f"sbatch answered no job id: {proc.stdout.strip()!r}", hint=_messages(proc.stderr, "sbatch"))
    warnings = [line for line in _messages(proc.stderr, "sbatch").splitlines() if line != "(no message)"]
    return Submitted(job_id=job_id.strip(), cluster=cluster.strip() or None, warnings=warnings)


def cancel_job(job_id: str) -> None:
    """``scancel JOB``: Slurm sends SIGTERM to all of the job's processes, then SIGKILL after its KillWait."""
    proc = _run(["scancel", job_id])
    if proc.returncode != 0:
        raise SlurmError(f"scancel refused to cancel Slurm job {job_id}: {_messages(proc.stderr, 'scancel')}", hint="`squeue --me` lists your jobs")


# --- what a job is doing ------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmJobState:
    """A Slurm job as Slurm reports it."""

    job_id: str
    state: str
    """Slurm's word: PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL, ..."""
    nodes: str = ""
    """Its node list, as Slurm writes it (``node[1-4]``); empty until it runs."""
    reason: str = ""
    """Why it is pending (Priority, Resources, PartitionConfig, BeginTime after a requeue, ...); empty when none."""
    exit_code: int | None = None
    """The batch script's exit code, once it has ended."""
    signal: int | None = None
    """The signal that ended the batch script, if one did."""
    restarts: int = 0
    """How many times it was requeued."""
    source: str = "scontrol"
    """Where the state came from: scontrol, sacct or sacct --completion."""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def describe(self) -> str:
        """One line for people: "Slurm job 12 RUNNING on node1, requeued 1 time(s)", "Slurm job 13 PENDING (Priority)"."""
        text = f"Slurm job {self.job_id} {self.state}"
        if self.nodes and self.state != "PENDING":
            text += f" on {self.nodes}"
        if self.reason:
            text += f" ({self.reason})"
        if self.finished and self.exit_code:
            text += f", exit code {self.exit_code}"
        if self.signal:
            text += f", signal {self.signal}"
        if self.restarts:
            text += f", requeued {self.restarts} time(s)"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "state": self.state,
            "nodes": self.nodes,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "restarts": self.restarts,
            "source": self.source,
        }


def _exit_status(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    return (int(code) if code.isdigit() else None, int(signal) if signal.isdigit() and int(signal) else None)


def _nodes(text: str) -> str:
    return "" if text in ("", "(null)", "None assigned") else text


def job_state(job_id: str) -> SlurmJobState | None:
    """The job's state from the first of scontrol, sacct and ``sacct --completion`` that knows it; ``None`` when none does.

    Raises :class:`SlurmError` when there is no Slurm client, or the controller does not answer.
    """
    require_client()
    proc = _run(["scontrol", "show", "job", "--oneliner", job_id])
    if proc.returncode == 0 and "JobState=" in proc.stdout:
        fields = dict(re.findall(r"(?:^|\s)([A-Za-z/:]+)=(\S*)", proc.stdout.splitlines()[0]))
        code, signal = _exit_status(fields.get("ExitCode", ""))
        state = fields.get("JobState", "UNKNOWN")
        return SlurmJobState(
            job_id=job_id,
            state=state,
            nodes=_nodes(fields.get("NodeList", "")),
            reason="" if fields.get("Reason", "None") == "None" else fields["Reason"],
            exit_code=code if state in FINISHED_STATES else None,
            signal=signal if state in FINISHED_STATES else None,
            restarts=int(fields.get("Restarts", "0") or 0),
        )
    if proc.returncode != 0 and "invalid job id" not in proc.stderr.lower():
        raise SlurmError(
            f"scontrol could not show Slurm job {job_id}: {_messages(proc.stderr, 'scontrol')}", hint="`scontrol ping` says whether the controller is up"
        )
    # Gone from the controller: the accounting database, then the job completion log.
    for source, argv in (
        ("sacct", ["sacct", "--allocations", "--parsable2", "--noheader", f"--jobs={job_id}", "--format=JobID,State,NodeList,ExitCode"]),
        ("sacct --completion", ["sacct", "--completion", "--parsable2", "--noheader", f"--jobs={job_id}", "--format=JobID,State,NodeList,ExitCode"]),
    ):
        if shutil.which("sacct") is None:
            break
        proc = _run(argv)
        rows = [line.split("|") for line in proc.stdout.splitlines() if line.split("|")[0] == job_id] if proc.returncode == 0 else []
        if rows:
            _, state, nodes, exit_status = (rows[-1] + ["", "", ""])[:4]
            code, signal = _exit_status(exit_status)
            return SlurmJobState(
                job_id=job_id, state=state.split()[0] if state else "UNKNOWN", nodes=_nodes(nodes), exit_code=code, signal=signal, source=source
            )
    return None


def failed_nodes(output: str) -> list[tuple[str, str]]:
    """``(node, what)`` for each ``srun: error: NODE: task N: ...`` line in a job's output: which nodes' steps failed."""
    return [(m.group(1), m.group(2)) for m in _SRUN_FAILURE.finditer(output)]

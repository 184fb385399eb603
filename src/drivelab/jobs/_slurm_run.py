"""A run handed to Slurm: its batch script, its submission, and what ``drivelab jobs`` shows of it.

``drivelab run --on slurm`` writes the run's batch script and submits it with ``sbatch``::

    drive/runs/<run>/slurm.sh     the batch script, kept: `sbatch` it again and the run goes on
    drive/runs/<run>/slurm.json   what was submitted: the job ids, the options, what each node runs
    .drivelab/slurm/<run>/        Slurm's output (slurm-<job id>.out) and the batch script's requeue note

Slurm's output stays outside the drive: Slurm opens it on the node before the job has
attached the drive there (a remote drive is mounted by each node's ``drivelab run``).
The workspace folder itself must be at the same path on every node, as ``sbatch
--chdir`` needs (a shared home or project file system); so must drivelab's Python.

The batch script runs ``drivelab run`` on every node (``srun``, one task a node), so each
node attaches the drive and supervises the script as a job on this machine does: the
log and ``status.json`` in the run folder, a restart after a crash. With several nodes
each one runs it under torchrun, the rendezvous on the first node, and keeps its own
``log.<node>`` and ``status.<node>.json``; the run's status names every node's part, and
its log is every node's, each line led by its node's name (see :class:`_RunLog`), read the
same from the login node and from any node.

What a requeued run resumes from is the training script's own last checkpoint: the epoch
checkpoint ``ckpt-epochNNNN.pt``, complete once its ``.sha256`` exists (what
``drivelab run`` counts as progress too). Nothing is saved at the moment of a signal; the
work since the last epoch checkpoint is done again. Before the time limit Slurm sends USR2
to the batch script, which requeues the job when the run has a checkpoint newer than the
one it was last requeued from, and otherwise lets it run on to the limit, so that a run
that cannot reach its next checkpoint within the limit is not requeued forever.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab.errors import JobError, JobNotFoundError, JobRunningError, SlurmError
from drivelab.jobs._slurm import (
    FINISHED_STATES,
    SlurmJobState,
    SlurmOptions,
    cancel_job,
    failed_nodes,
    job_state,
    require_client,
    submission_environment,
    submit_batch,
)
from drivelab.jobs._spec import JobSpec, check_run_name, node_name
from drivelab.jobs._status import JobStatus, is_alive, log_path, log_start, now_iso, read_status
from drivelab.workspace import Workspace

__all__ = [
    "RECORD_NAME",
    "SCRIPT_NAME",
    "SlurmRecord",
    "batch_script",
    "follow_slurm_run",
    "is_slurm_run",
    "read_slurm_log",
    "slurm_failure",
    "slurm_run_status",
    "stop_slurm_run",
    "submit_to_slurm",
]

RECORD_NAME = "slurm.json"
SCRIPT_NAME = "slurm.sh"
RENDEZVOUS_PORT = 29500
"""torchrun's usual port; a job uses this plus its id modulo 1000, so that jobs sharing a first node do not collide."""
_FINAL_RECORDED = ("succeeded", "failed", "stopped")
_TAIL_LINES = 15
_POLL = 1.0
"""Seconds between two questions to Slurm while following a job."""


def slurm_dir(ws: Workspace, run: str) -> Path:
    """Where Slurm writes the run's output, outside the drive."""
    return ws.state / "slurm" / run


def is_slurm_run(run_dir: Path) -> bool:
    """The run was handed to Slurm (its folder holds ``slurm.json``)."""
    return (run_dir / RECORD_NAME).is_file()


@dataclass
class SlurmRecord:
    """``drive/runs/<run>/slurm.json``: what ``drivelab run --on slurm`` submitted for the run."""

    run: str
    job_ids: list[str]
    """Every job submitted for the run by drivelab, oldest first (one submitted by hand is found by its output file)."""
    submitted: str
    """When the newest was submitted."""
    batch_script: str
    output: str
    """Slurm's output, ``%j`` standing for the job id."""
    command: str
    """What each node runs: a shell line, as in the batch script."""
    options: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)
    cluster: str | None = None
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Slurm's final state of each job that has ended, by job id, as first read back: Slurm forgets jobs, this does not."""
    version: int = 1

    def output_of(self, job_id: str) -> Path:
        return Path(self.output.replace("%j", job_id))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlurmRecord:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def _read_record(run_dir: Path) -> SlurmRecord:
    path = run_dir / RECORD_NAME
    try:
        return SlurmRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise JobNotFoundError(f"no job named {run_dir.name!r} in {run_dir.parent}", hint="`drivelab jobs list` shows the jobs of this workspace") from None
    except (OSError, ValueError, TypeError) as exc:
        raise JobNotFoundError(f"{path} is unreadable: {exc}", hint="submit the run again (`sbatch` its slurm.sh), or start it under another name") from exc


def _current_job_id(ws: Workspace, record: SlurmRecord) -> str:
    """The run's newest Slurm job: the newest drivelab submitted, or a newer one submitted by hand that has started."""
    ids = {int(i) for i in record.job_ids}
    for path in slurm_dir(ws, record.run).glob("slurm-*.out"):
        match = re.fullmatch(r"slurm-(\d+)\.out", path.name)
        if match:
            ids.add(int(match.group(1)))
    return str(max(ids))


# --- the batch script ----------------------------------------------------------------------

_BODY = r"""
RUN_DIR=@RUN_DIR@
NOTES=@NOTES@

# To Slurm's output, and to the run's log once the run folder is there (a remote drive shows it
# only while this node's drivelab run has it attached).
say() {
  local line="[slurm] $(date '+%F %T') job $SLURM_JOB_ID: $*"
  echo "$line"
  if [ -d "$RUN_DIR" ]; then echo "$line" >> "$RUN_DIR/log"; fi
}

# The run's newest complete checkpoint (its .sha256 is written last): what the run resumes from.
newest_checkpoint() {
  ls "$RUN_DIR" 2>/dev/null | grep -E '^ckpt-epoch[0-9]+\.pt\.sha256$' | sort -V | tail -n 1 | sed 's/\.sha256$//'
}

# USR2: the time limit is @LEAD@ s away, or the job is being preempted (where Slurm warns with it).
# Requeue only with a checkpoint newer than the one the job was last requeued from: the next
# run would otherwise end at the same point again. Without one, run on until the limit.
requeue=
on_usr2() {
  local newest
  [ -z "$requeue" ] || return 0  # asked already
  newest=$(newest_checkpoint)
  if [ -z "$newest" ] || [ "$newest" = "$(cat "$NOTES/requeued-from" 2>/dev/null)" ]; then
    say "USR2: not requeueing: no new checkpoint since the job started or was last requeued (newest: ${newest:-none})"
    return
  fi
  echo "$newest" > "$NOTES/requeued-from"
  say "USR2: stopping drivelab run, then requeueing the job to resume from $newest"
  requeue=1
  scancel --signal=TERM "$SLURM_JOB_ID"  # the job's steps (drivelab run on each node), not this script
}
trap on_usr2 USR2
# SIGTERM (scancel, drivelab jobs stop, scontrol requeue, preemption): Slurm sends it to drivelab run
# on every node too, which stops its script and records the stop. Wait for that.
trap '[ -n "$requeue" ] || say "SIGTERM: the job is ending (cancelled, requeued or preempted)"' TERM
@RENDEZVOUS@
say "running on $SLURM_JOB_NODELIST${SLURM_RESTART_COUNT:+ (requeued $SLURM_RESTART_COUNT time(s))}"
@SRUN@ &
step=$!
# A trapped signal interrupts `wait`: wait again until the step has ended.
while wait "$step"; code=$?; kill -0 "$step" 2>/dev/null; do :; done
if [ -n "$requeue" ]; then
  say "requeueing"
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  say "scontrol requeue failed: submit this script again to resume: sbatch @SCRIPT@"
  exit 1
fi
say "drivelab run ended with exit code $code"
exit "$code"
"""

_RENDEZVOUS = """
# torchrun's rendezvous (c10d) on the job's first node; a port of its own for each job.
first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
port=$((@PORT@ + SLURM_JOB_ID % 1000))
"""


def _script_word(ws: Workspace, script: Path) -> str:
    """The script's path from the workspace (where the job runs) when it is inside it, else absolute."""
    try:
        return str(script.resolve().relative_to(ws.root.resolve()))
    except ValueError:
        return str(script.resolve())


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def node_command(ws: Workspace, spec: JobSpec, options: SlurmOptions) -> list[str]:
    """What each node runs, as shell words (``$VARIABLES`` are the batch script's): ``drivelab run`` with the spec's options."""
    words = [shlex.join([spec.python, "-m", "drivelab", "run", "--workspace", str(ws.root), "--run", spec.run])]
    words.append(shlex.join(["--restarts", str(spec.restarts), "--backoff", _number(spec.backoff)]))
    for name, value in spec.parameters:
        words.append(shlex.join(["-p", name, value]))
    # One process per GPU (torchrun); a notebook is one process, whatever the GPUs.
    processes = spec.nproc_per_node or (options.gpus if spec.kind == "python" else None)
    if options.nodes > 1:
        # Several nodes: one torchrun agent each, meeting at the first node; no node ranks, c10d hands them out.
        words.append(f"--nproc-per-node {processes or 1}")
        words.append('--nnodes "$SLURM_NNODES" --rdzv-endpoint "$first_node:$port" --rdzv-id "$SLURM_JOB_ID"')
    elif processes:
        words.append(f"--nproc-per-node {processes}")
    for flag, value in (("--rdzv-timeout", spec.rdzv_timeout), ("--max-restarts", spec.max_restarts)):
        if value is not None:
            words.append(f"{flag} {value}")
    words.append(shlex.join([_script_word(ws, spec.script), *spec.args]))
    return words


def batch_script(ws: Workspace, spec: JobSpec, options: SlurmOptions) -> str:
    """The run's batch script: readable, and a plain one (``sbatch`` it by hand and the run resumes)."""
    run_dir, notes = ws.run_dir(spec.run), slurm_dir(ws, spec.run)
    path = run_dir / SCRIPT_NAME
    q = shlex.quote
    lead = options.usr2_lead()
    directives = [
        f"--job-name={spec.run}",
        *options.directives(),
        f"--chdir={q(str(ws.root))}",
        f"--output={q(str(notes / 'slurm-%j.out'))}",
        "--open-mode=append",
        f"--signal=B:USR2@{lead}",
        "--requeue",
    ]
    # In a comment: quoted, and on one line whatever the arguments hold.
    what = shlex.join([_script_word(ws, spec.script), *spec.args]).replace("\n", "\\n").replace("\r", "\\r")
    several = options.nodes > 1
    header = [
        "#!/bin/bash",
        f"# drivelab run {spec.run!r} on Slurm: {what}",
        "#",
        "# Written by `drivelab run --on slurm`, and a plain batch script: submit it again with",
        f"#     sbatch {q(str(path))}",
        "# and the run goes on from its last checkpoint; `drivelab jobs list|logs|stop` follow it.",
        "# Each node runs `drivelab run`: it attaches the drive, restarts the script after a crash and keeps",
        (
            f"# its log.<node> and status.<node>.json in drive/runs/{spec.run}/; under torchrun, the rendezvous on the first node."
            if several
            else f"# the log and status.json in drive/runs/{spec.run}/."
        ),
        f"# Slurm's own output: {notes}/slurm-<job id>.out",
        *(f"#SBATCH {d}" for d in directives),
    ]
    srun = ["srun", '--nodes="$SLURM_NNODES"', "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    if options.cpus_per_task:
        srun.append(f"--cpus-per-task={options.cpus_per_task}")  # steps do not inherit it from the batch script everywhere
    if several:
        srun.append("--label")  # each line of output says which node (task) wrote it
    command = " \\\n    ".join([" ".join(srun), *node_command(ws, spec, options)])
    body = (
        _BODY.replace("@RUN_DIR@", q(str(run_dir)))
        .replace("@NOTES@", q(str(notes)))
        .replace("@LEAD@", str(lead))
        .replace("@RENDEZVOUS@", _RENDEZVOUS.replace("@PORT@", str(RENDEZVOUS_PORT)) if several else "")
        .replace("@SRUN@", command)
        .replace("@SCRIPT@", q(str(path)))
    )
    return "\n".join(header) + "\n" + body


# --- submitting ----------------------------------------------------------------------------


def submit_to_slurm(ws: Workspace, spec: JobSpec, options: SlurmOptions) -> JobStatus:
    """Write the run's batch script and submit it; the run's status (PENDING, usually) once Slurm has it.

    Raises :class:`SlurmError` when there is no Slurm client here or ``sbatch`` refuses
    the job, leaving nothing behind (a run folder made for it is removed, an existing
    one is left as it was); :class:`JobRunningError` while the run is queued, running
    on Slurm or running here.
    """
    options.validate()
    if spec.kind == "notebook" and options.nodes > 1:
        raise SlurmError(f"a notebook runs as one process, on one node: not on {options.nodes}", hint="drop --nodes, or run a .py script")
    if spec.kind == "python" and not spec.nproc_per_node and (options.gpus or options.nodes > 1):
        spec.nproc_per_node = options.gpus or 1  # as on the nodes: under torchrun (checked as such)
    spec.prepare()
    require_client()
    run_dir, notes = ws.run_dir(spec.run), slurm_dir(ws, spec.run)
    if is_slurm_run(run_dir):
        current = slurm_run_status(ws, spec.run)
        known = (current.slurm or {}).get("state")
        if known and known not in FINISHED_STATES:
            raise JobRunningError(
                f"run {spec.run!r} is already {known} as Slurm job {current.slurm['job_id']}",  # type: ignore[index]
                hint=f"follow it with `drivelab jobs logs {spec.run} -f`, stop it with `drivelab jobs stop {spec.run}`, or pick another --run name",
            )
    if is_alive(ws, spec.run):
        raise JobRunningError(
            f"run {spec.run!r} is already running",
            hint=f"watch it with `drivelab jobs logs {spec.run} -f`, stop it with `drivelab jobs stop {spec.run}`, or pick another --run name",
        )
    from drivelab import drive

    # The run folder belongs on the drive: attach it first, so that a remote drive is not written beneath.
    drive.attach(ws)
    made = [d for d in (run_dir, notes) if not d.exists()]
    for folder in (run_dir, notes):
        folder.mkdir(parents=True, exist_ok=True)
    script = run_dir / SCRIPT_NAME
    previous = script.read_bytes() if script.is_file() else None
    write_text_atomic(script, batch_script(ws, spec, options))
    script.chmod(0o755)
    try:
        submitted = submit_batch(script, env=submission_environment())
    except SlurmError:
        # Refused: nothing of this submission stays.
        if previous is None:
            script.unlink(missing_ok=True)
        else:
            script.write_bytes(previous)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty: never anything else's
        raise
    try:
        earlier = _read_record(run_dir) if is_slurm_run(run_dir) else None
    except JobNotFoundError:
        earlier = None
    record = SlurmRecord(
        run=spec.run,
        job_ids=[*(earlier.job_ids if earlier else []), submitted.job_id],
        submitted=now_iso(),
        batch_script=str(script),
        output=str(notes / "slurm-%j.out"),
        command=" ".join(node_command(ws, spec, options)),
        options=options.to_dict(),
        spec=spec.to_dict(),
        cluster=submitted.cluster,
        ended=earlier.ended if earlier else {},
    )
    write_text_atomic(run_dir / RECORD_NAME, json.dumps(record.to_dict(), indent=2) + "\n")
    status = slurm_run_status(ws, spec.run)
    if submitted.warnings and status.slurm is not None:
        status.slurm["warnings"] = submitted.warnings
    return status


# --- reading it back ------------------------------------------------------------------------


def _not_before(when: str, than: str) -> bool:
    try:
        return datetime.fromisoformat(when) >= datetime.fromisoformat(than)
    except (TypeError, ValueError):
        return False


def _several_nodes(record: SlurmRecord) -> bool:
    return int(record.options.get("nodes") or 1) > 1


def _node_records(run_dir: Path, since: str) -> list[JobStatus]:
    """Each node's ``status.<node>.json`` of a run on several nodes, by node name, as the node wrote it; those older
    than ``since`` (an earlier job's) left out. Read as written: only its own node can tell whether a supervisor runs."""
    found = []
    for path in sorted(run_dir.glob("status.*.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            record = JobStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
            if record.node and _not_before(record.started, since):
                found.append(record)
    return found


def _node_part(record: JobStatus) -> str:
    """A node's part in a run of several, for people: "node1 running (rank 0 of 2)", "node2 succeeded (rank 1 of 2, 1 restart(s))"."""
    group = record.group or {}
    said = [f"rank {group['rank']} of {group.get('size') or group.get('nnodes')}"] if group.get("rank") is not None else []
    if record.restarts:
        said.append(f"{record.restarts} restart(s)")
    return f"{record.node} {record.state}" + (f" ({', '.join(said)})" if said else "")


def _shown_node(nodes: list[JobStatus]) -> JobStatus:
    """The node record a run on several nodes is shown with: this machine's, else a failed one's (its report and
    last lines say what went wrong), else the first's."""
    here = node_name()
    return next((n for n in nodes if n.node == here), None) or next((n for n in nodes if n.state == "failed"), nodes[0])


def slurm_run_status(ws: Workspace, run: str) -> JobStatus:
    """The run's status with Slurm's state: its supervisor's ``status.json`` (when a node has written one) under the
    state, job id, nodes and pending reason Slurm reports for the run's newest job.

    On several nodes the status shown is this machine's node's, else a failed node's, else the first node's;
    ``slurm["nodes_recorded"]`` has every node's part (state, rank, restarts, last checkpoint) and the summary
    names each. When Slurm no longer knows the job (forgotten, and no accounting), the state is what
    the supervisor recorded if it ended, else ``UNKNOWN``; when Slurm cannot be asked
    (no client on this machine), the same, with the reason in ``slurm["error"]``.
    """
    check_run_name(run)
    run_dir = ws.run_dir(run)
    record = _read_record(run_dir)
    job_id = _current_job_id(ws, record)
    recorded: dict[str, Any] | None = None
    nodes = _node_records(run_dir, record.submitted) if _several_nodes(record) else []
    try:
        status = _shown_node(nodes) if nodes else read_status(ws, run)
        if _not_before(status.started, record.submitted):  # not a record left by an earlier job of the run
            recorded = {"state": status.state, "summary": status.summary, "node": status.node}
    except JobNotFoundError:
        status = JobStatus(
            run=run,
            run_dir=str(run_dir),
            kind=JobSpec.from_dict(record.spec).kind if record.spec else "python",
            command=[record.command],
            cwd=str(ws.root),
            state="PENDING",
            started=record.submitted,
            detached=True,
            log=str(log_path(run_dir)),
            spec=record.spec,
        )
    info: dict[str, Any] = {"job_id": job_id, "batch_script": record.batch_script, "output": str(record.output_of(job_id)), "submitted": record.submitted}
    if recorded is not None:
        info["supervisor"] = recorded  # what the node's drivelab run recorded, under Slurm's state
    if _several_nodes(record):
        info["nodes_recorded"] = [
            {
                "node": n.node,
                "state": n.state,
                "rank": (n.group or {}).get("rank"),
                "restarts": n.restarts,
                "last_checkpoint": n.last_checkpoint,
                "summary": n.summary,
                "log": str(log_path(run_dir, n.node)),
            }
            for n in nodes
        ]
    try:
        state = SlurmJobState(**record.ended[job_id]) if job_id in record.ended else job_state(job_id)
    except SlurmError as exc:
        state, info["error"] = None, exc.message
    # A preempted job may be requeued yet: not kept.
    if state is not None and state.finished and state.state != "PREEMPTED" and job_id not in record.ended:
        record.ended[job_id] = state.to_dict()
        with contextlib.suppress(OSError):  # a run folder this machine may only read
            write_text_atomic(run_dir / RECORD_NAME, json.dumps(record.to_dict(), indent=2) + "\n")
    parts = f"; on each node: {', '.join(_node_part(n) for n in nodes)}" if nodes else ""
    if state is None:
        info["state"] = None
        ended = recorded is not None and recorded["state"] in _FINAL_RECORDED
        status.state = recorded["state"] if ended else "UNKNOWN"  # type: ignore[index]
        why = f"Slurm could not be asked ({info['error']})" if "error" in info else "Slurm no longer knows it"
        status.summary = f"Slurm job {job_id}: {why}; " + (f"drivelab run there: {status.summary}" if ended else "no record of its end") + parts
    else:
        info.update(state.to_dict())
        status.state = state.state
        status.summary = state.describe() + parts
    status.slurm = info
    return status


# --- its log -------------------------------------------------------------------------------


class _RunLog:
    """The log of a run handed to Slurm, as one text, read whole or followed.

    On one node that is ``log``: the node's supervisor's lines and the batch script's. On several it is the
    batch script's ``log`` and each node's ``log.<node>``, every line of a node's given its name
    (``node2: [drivelab] starting ...``, as ``srun --label`` gives task numbers), and only whole lines:
    the nodes write at once, and a line is never cut by another's.
    """

    def __init__(self, run_dir: Path, *, several: bool, node: str | None = None) -> None:
        self.run_dir, self.several, self.node = run_dir, several, node
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}

    def sources(self) -> list[tuple[str, Path]]:
        """``(label, path)``: the batch script's log (no label), then each node's by name."""
        if not self.several:
            return [("", log_path(self.run_dir, self.node))]
        nodes = sorted(path for path in self.run_dir.glob("log.*") if path.is_file())
        return [("", log_path(self.run_dir)), *((path.name[len("log.") :], path) for path in nodes)]

    def exists(self) -> bool:
        return any(path.exists() for _, path in self.sources())

    def start(self, tail: int | None) -> str:
        """Everything there is now (the last ``tail`` lines of each source), and what :meth:`read` goes on from."""
        shown = []
        for label, path in self.sources():
            offset, text = log_start(path, tail)
            self.offsets[path] = offset
            if text and self.several and not text.endswith("\n"):
                text += "\n"
            shown.append(self._label(label, text))
        return "".join(shown)

    def read(self, *, final: bool = False) -> str:
        """What was appended since the last read; on several nodes whole lines only, unless ``final``."""
        said = []
        for label, path in self.sources():
            data = b""
            with contextlib.suppress(FileNotFoundError), open(path, "rb") as fh:
                fh.seek(self.offsets.get(path, 0))
                data = fh.read()
            self.offsets[path] = self.offsets.get(path, 0) + len(data)
            if not self.several:
                said.append(data.decode("utf-8", errors="replace"))
                continue
            data = self.partial.pop(path, b"") + data
            cut = len(data) if final else data.rfind(b"\n") + 1
            if data[cut:]:
                self.partial[path] = data[cut:]
            if cut:
                text = data[:cut].decode("utf-8", errors="replace")
                said.append(self._label(label, text if text.endswith("\n") else text + "\n"))
        return "".join(said)

    @staticmethod
    def _label(label: str, text: str) -> str:
        if not label or not text:
            return text
        return "".join(f"{label}: {line}" for line in text.splitlines(keepends=True))


def _run_log(ws: Workspace, run: str, status: JobStatus) -> _RunLog:
    several = bool(status.slurm and "nodes_recorded" in status.slurm)
    return _RunLog(ws.run_dir(run), several=several, node=None if several else status.node)


def read_slurm_log(ws: Workspace, run: str, *, tail: int | None = None) -> str:
    """The run's log (its supervisors' and the batch script's lines; on several nodes, every node's, see
    :class:`_RunLog`: ``tail`` is then the last lines of each); Slurm's output of its newest job while there is none."""
    status = slurm_run_status(ws, run)
    log = _run_log(ws, run, status)
    if log.exists() or not status.slurm:
        return log.start(tail)
    try:
        text = Path(status.slurm["output"]).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    if tail is not None:
        text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
    return text


def follow_slurm_run(ws: Workspace, run: str, *, tail: int | None = None, poll: float = 0.2) -> Iterator[str | SlurmJobState]:
    """The run's log (its last ``tail`` lines), then what is appended to it, and Slurm's state of the
    job whenever it changes (state, nodes, reason, requeues), until the job has ended. On several nodes,
    every node's log, each line labelled with its node (see :class:`_RunLog`)."""
    require_client()  # without one, there is no knowing when the job ends
    status = slurm_run_status(ws, run)
    job_id = status.slurm["job_id"] if status.slurm else ""
    log = _run_log(ws, run, status)
    text = log.start(tail)
    if text:
        yield text
    seen: tuple[str, str, str, int] | None = None
    asked = float("-inf")
    last: SlurmJobState | None = None
    ended = False
    while True:
        if time.monotonic() - asked >= _POLL:
            # Asked before reading, so nothing written before the end is missed.
            asked = time.monotonic()
            with contextlib.suppress(SlurmError):  # the controller did not answer this time: ask again
                state = job_state(job_id)
                if state is None:
                    ended = True
                elif (state.state, state.nodes, state.reason, state.restarts) != seen:
                    seen = (state.state, state.nodes, state.reason, state.restarts)
                    if state.finished:
                        ended, last = True, state  # said after the log's last lines
                    else:
                        yield state
        while True:
            text = log.read(final=ended)
            if not text:
                break
            yield text
        if ended:
            if last is not None:
                yield last
            return
        time.sleep(poll)


def stop_slurm_run(ws: Workspace, run: str, *, timeout: float = 60.0) -> JobStatus:
    """Cancel the run's Slurm job (``scancel``: SIGTERM to every node's ``drivelab run``, which stops its script and
    records it, then SIGKILL after the cluster's KillWait) and return its status once Slurm says it has ended."""
    status = slurm_run_status(ws, run)
    info = status.slurm or {}
    job_id = info.get("job_id", "")
    if info.get("state") is None:
        raise JobError(f"job {run!r} cannot be stopped: {status.summary}", hint=f"`squeue --jobs {job_id}` shows whether Slurm still runs it")
    if info["state"] in FINISHED_STATES:
        raise JobError(f"job {run!r} is not running ({status.summary})", hint=f"`drivelab jobs logs {run}` shows how it ended")
    cancel_job(job_id)
    deadline = time.monotonic() + timeout
    while True:
        state = job_state(job_id)
        if state is None or state.finished:
            return slurm_run_status(ws, run)
        if time.monotonic() > deadline:
            raise JobError(
                f"Slurm job {job_id} (run {run!r}) was cancelled but is still {state.state} after {timeout:.0f} s",
                hint=f"`squeue --jobs {job_id}` follows it; Slurm kills what is left after its KillWait",
            )
        time.sleep(0.2)


def _output_tail(path: Path, lines: int = _TAIL_LINES) -> tuple[str, str]:
    """The whole of a job's Slurm output, and its last non-empty lines."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "", "(no output: Slurm wrote none, or it is not readable from here)"
    kept = [line for line in text.splitlines() if line.strip()]
    return text, "\n".join(kept[-lines:]) or "(no output)"


def slurm_failure(status: JobStatus) -> SlurmError | None:
    """The error a run whose Slurm job ended other than COMPLETED stands for: which node, the end of its output, what to do.

    ``None`` while it is queued or running, or when it completed.
    """
    info = status.slurm or {}
    state = info.get("state")
    if state == "COMPLETED" or state not in FINISHED_STATES:
        return None
    job_id, run = info.get("job_id", ""), status.run
    output = Path(info.get("output", ""))
    text, tail = _output_tail(output)
    nodes = list(dict.fromkeys(node for node, _ in failed_nodes(text))) or ([info["nodes"]] if info.get("nodes") else [])
    where = f" on node {', '.join(nodes)}" if nodes else " before it started on any node"
    code = f" (exit code {info['exit_code']})" if info.get("exit_code") else ""
    head = f"job {run!r}: Slurm job {job_id} ended {state}{where}{code}"
    supervisor = info.get("supervisor") or {}
    if supervisor.get("state") == "failed":
        # The script failed under drivelab run there: its own report, the script's last lines.
        report = replace(status, state="failed", summary=supervisor.get("summary")).failure_report().removeprefix(f"job {run!r} ")
        message = f"{head}; drivelab run there: {report}"
    else:
        message = f"{head}; the end of its output ({output}):\n{tail}"
    again = f"submit it again to resume from its last checkpoint (`sbatch {info.get('batch_script', '')}`, or `drivelab run --on slurm --run {run} ...`)"
    hints = {
        "TIMEOUT": f"it ran out of time before it could be requeued (the log says why): {again} with a longer --time",
        "CANCELLED": f"it was cancelled (scancel, or drivelab jobs stop); {again}",
        "OUT_OF_MEMORY": f"it used more memory than Slurm gave it: ask for more (more --cpus-per-task, or #SBATCH --mem in the batch script), then {again}",
        "NODE_FAIL": f"a node failed, not the job: {again}",
        "BOOT_FAIL": f"a node failed to boot, not the job: {again}",
        "PREEMPTED": f"a job of higher priority took its nodes: {again}",
    }
    hint = hints.get(state, f"fix what it reports, then {again}; full log: drivelab jobs logs {run} (Slurm's output: {output})")
    return SlurmError(message, hint=hint)

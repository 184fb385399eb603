"""A job's record, ``drive/runs/<run>/status.json``, and whether it is alive.

``status.json`` is rewritten atomically at every change of state, so a
reader (``drivelab jobs list``, another machine looking at the drive) always
sees a whole document. Whether a job is alive is not taken from the file: the
supervising process holds an exclusive lock on ``.drivelab/jobs/<run>.lock``
for as long as it lives, and the operating system drops the lock when it dies,
however it dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab.errors import JobFailedError, JobNotFoundError, JobRunningError, JobUsageError
from drivelab.jobs._spec import check_run_name, node_name
from drivelab.workspace import Workspace

__all__ = [
    "Attempt", "OutputTail", "JobStatus", "ACTIVE_STATES", "USAGE_EXIT_CODE",
    "read_status", "write_status", "job_lock", "is_alive", "status_path", "log_path", "find_status_path",
    "local_copy", "local_copies", "write_local_copy", "status_text",
]  # fmt: skip

STATUS_VERSION = 1
ACTIVE_STATES = ("starting", "running", "restarting", "stopping")
SLURM_WORDS = {
    "PENDING": "queued", "CONFIGURING": "queued", "REQUEUED": "queued", "REQUEUE_HOLD": "queued", "REQUEUE_FED": "queued",
    "RESV_DEL_HOLD": "queued", "SUSPENDED": "queued", "PREEMPTED": "queued",
    "RUNNING": "running", "COMPLETING": "running", "STAGE_OUT": "running", "SIGNALING": "running", "RESIZING": "running",
    "COMPLETED": "succeeded", "CANCELLED": "stopped",
    "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed",
    "DEADLINE": "failed", "REVOKED": "failed", "SPECIAL_EXIT": "failed", "UNKNOWN": "unknown",
}  # fmt: skip
"""drivelab's word for each of Slurm's job states, for a run handed to Slurm (its ``state`` is Slurm's)."""
"""States of a job whose supervisor is (or should be) alive."""
# Final states: succeeded, failed, stopped; "lost" is what a reader reports for
# an active state whose supervisor is gone (the machine rebooted, it was killed).
USAGE_EXIT_CODE = 2
"""A command line the command refuses (argparse's and click's convention): never restarted."""
TAIL_SHOWN = 3
"""Tails of differing attempts shown in a failure report, the newest."""


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@dataclass
class Attempt:
    """One start of the job's command."""

    number: int
    """0 for the first start, then one more per restart."""
    started: str
    pid: int | None = None
    ended: str | None = None
    seconds: float | None = None
    exit_code: int | None = None
    """The command's exit code; ``-N`` when killed by signal N."""
    checkpoint: str | None = None
    """The newest complete checkpoint in the run folder when it ended."""
    progressed: bool = False
    """It left a newer complete checkpoint than the one it started from."""


@dataclass
class OutputTail:
    """The last output lines of one or more failed attempts in a row that all ended with exactly these lines."""

    lines: list[str]
    attempts: list[int]
    """The numbers of those attempts."""

    @property
    def times(self) -> int:
        return len(self.attempts)

    def heading(self) -> str:
        first, last = self.attempts[0], self.attempts[-1]
        return f"attempt {first}" if self.times == 1 else f"attempts {first} to {last} ({self.times} times)"


@dataclass
class JobStatus:
    run: str
    run_dir: str
    kind: str
    """``python`` or ``notebook``."""
    command: list[str]
    cwd: str
    state: str
    """starting, running, restarting, stopping; succeeded, failed, stopped; lost (read back only)."""
    started: str
    ended: str | None = None
    exit_code: int | None = None
    restarts: int = 0
    last_checkpoint: str | None = None
    detached: bool = False
    supervisor_pid: int | None = None
    host: str = ""
    node: str | None = None
    """This machine's name in a group of several (its ``status.<node>.json`` and ``log.<node>``); ``None`` on one machine."""
    group: dict[str, Any] | None = None
    """A group of several machines: ``rendezvous`` (c10d or static), ``id``, ``endpoint``, ``nnodes``, and once
    it formed this node's ``rank`` among ``size`` nodes, the ``round`` (one more each time torchrun re-formed it)
    and the ``nodes``' names by rank."""
    attempts: list[Attempt] = field(default_factory=list)
    flush: dict[str, Any] | None = None
    """What the drive flush at the end waited for (files, bytes, seconds), or its error."""
    summary: str | None = None
    """One line on how the job ended, for people."""
    failure_tail: list[OutputTail] = field(default_factory=list)
    """A failed job's last output lines: those of each attempt that failed in the end's row, oldest
    first; attempts in a row that ended with the same lines share one entry (see :meth:`failure_report`)."""
    output: str | None = None
    """The output notebook of a notebook job."""
    log: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    slurm: dict[str, Any] | None = None
    """For a run handed to Slurm, as read back (never written by a supervisor): its job id, Slurm's state,
    node list, pending reason, exit code, requeues, batch script and output (see :mod:`drivelab.jobs._slurm_run`)."""
    version: int = STATUS_VERSION

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def group_text(self) -> str | None:
        """This node's part in its group, for people ("node 1 of 2 (b), group exp1 @ 10.0.0.1:29400"); ``None`` on one machine."""
        group = self.group
        if not group:
            return None
        where = f"group {group.get('id') or '(static)'} @ {group.get('endpoint')}"
        if group.get("rank") is None:
            if self.active:
                return f"node {self.node}, waiting for {group.get('nnodes')} nodes, {where}"
            return f"node {self.node}, {where} never formed ({group.get('nnodes')} nodes)"
        return f"node {group['rank']} of {group.get('size') or group.get('nnodes')} ({self.node}), {where}"

    @property
    def pid(self) -> int | None:
        """The process id of the running attempt's command."""
        return self.attempts[-1].pid if self.attempts and self.attempts[-1].ended is None else None

    @property
    def usage_error(self) -> bool:
        """It failed at once with exit code 2: its command line is wrong, and it was not restarted."""
        return self.state == "failed" and self.exit_code == USAGE_EXIT_CODE

    def failure_report(self) -> str:
        """How the job failed, for people: the summary, then its last lines.

        Output that several attempts in a row ended with is shown once, with
        the count ("(4 times)"); of attempts that ended differently, the
        newest three are shown.
        """
        report = f"job {self.run!r} {self.summary or self.state}"
        tails = self.failure_tail
        if not tails:
            return report
        if len(tails) == 1:
            tail = tails[0]
            again = f", the same in its last {tail.times} attempts ({tail.times} times)" if tail.times > 1 else ""
            return f"{report}; its last lines{again}:\n" + "\n".join(tail.lines or ["(no output)"])
        shown = tails[-TAIL_SHOWN:]
        parts = [f"{report}; the last lines of its attempts:"]
        hidden = sum(t.times for t in tails[: -len(shown)])
        if hidden:
            parts.append(f"({hidden} earlier attempt(s) not shown: see the log)")
        for tail in shown:
            parts.append(f"{tail.heading()}:")
            parts.extend(f"  {line}" for line in tail.lines or ["(no output)"])
        return "\n".join(parts)

    def shown_state(self) -> str:
        """The state in drivelab's words; for a run handed to Slurm, with Slurm's: "succeeded (Slurm COMPLETED)"."""
        if self.slurm is None:
            return self.state
        word = SLURM_WORDS.get(self.state, self.state.lower())
        return f"{word} (Slurm {self.state})"

    def resume_command(self) -> str:
        """The command that resumes this run from its last complete checkpoint, as typed in the workspace."""
        spec = self.spec or {}
        script = str(spec.get("script") or (self.command[-1] if self.command else "SCRIPT"))
        with contextlib.suppress(ValueError):
            script = str(Path(script).relative_to(self.cwd))
        words = ["drivelab", "run", "--run", self.run]
        for name, value in spec.get("parameters") or []:
            words += ["-p", str(name), str(value)]
        words += [script, *(str(a) for a in spec.get("args") or [])]
        return shlex.join(words)

    def failure_error(self) -> JobFailedError | None:
        """The error a failed job stands for (its :meth:`failure_report` and what to do); ``None`` otherwise."""
        if self.state != "failed":
            return None
        if self.usage_error:
            script = self.spec.get("script", "")
            how = "check its -p parameters" if self.kind == "notebook" else f"fix its arguments (`python {script} --help` lists them)"
            return JobUsageError(self.failure_report(), hint=f"{how}, then run it again; full log: {self.log}")
        return JobFailedError(self.failure_report(), hint=f"fix what it reports, then rerun with --run {self.run} to resume; full log: {self.log}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        data = dict(data)
        data["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        data["failure_tail"] = [OutputTail(**t) for t in data.get("failure_tail") or []]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def status_path(run_dir: Path, node: str | None = None) -> Path:
    """``status.json``; in a run several machines share, each writes its own ``status.<node>.json``."""
    return run_dir / (f"status.{node}.json" if node else "status.json")


def log_path(run_dir: Path, node: str | None = None) -> Path:
    return run_dir / (f"log.{node}" if node else "log")


def log_start(path: Path, tail: int | None) -> tuple[int, str]:
    """Where following a log starts: its length now, and what to show first (its last ``tail`` lines; all when None)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    text = data.decode("utf-8", errors="replace")
    if tail is not None:
        text = "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""
    return len(data), text


def find_status_path(run_dir: Path) -> Path | None:
    """The status this machine reads for a run folder: its own node's, else ``status.json``, else another node's.

    Only this machine's own record can be told alive (by its lock): another
    node's, read where this machine took no part, reads as ``lost`` while it
    says it is running, and ``drivelab jobs stop`` here never signals its
    processes' ids (see :func:`drivelab.jobs.stop_job`).
    """
    own = status_path(run_dir, node_name())
    for path in (own, status_path(run_dir)):
        if path.is_file():
            return path
    return next(iter(sorted(run_dir.glob("status.*.json"))), None)


def write_status(status: JobStatus) -> None:
    """Write ``status.json`` in the run folder, and first its local copy (see :func:`local_copy`)."""
    write_local_copy(status)
    write_text_atomic(status_path(Path(status.run_dir), status.node), status_text(status))


def status_text(status: JobStatus) -> str:
    """What ``status.json`` holds."""
    return json.dumps(status.to_dict(), indent=2) + "\n"


def write_local_copy(status: JobStatus) -> Path | None:
    """Write the status's local copy (:func:`local_copy`) alone; its path, or None when the run folder is in no workspace."""
    run_dir = Path(status.run_dir)
    root = _workspace_root(run_dir)
    if root is None:
        return None
    path = local_copy(Workspace(root), run_dir.name, status.node)
    with contextlib.suppress(OSError):  # the copy is for reading while the drive does not answer; never in the way
        write_text_atomic(path, status_text(status))
    return path


def _workspace_root(run_dir: Path) -> Path | None:
    """The workspace of a run folder ``<root>/drive/runs/<run>`` whose ``<root>/.drivelab`` exists; else None."""
    if run_dir.parent.name != "runs" or run_dir.parent.parent.name != "drive":
        return None
    root = run_dir.parent.parent.parent
    return root if Workspace(root).state.is_dir() else None


def local_copy(ws: Workspace, run: str, node: str | None = None) -> Path:
    """Where this machine keeps a copy of the status it writes on the drive: ``.drivelab/jobs/<run>/status[.<node>].json``.

    Written with every ``status.json`` (just before it), on local disk: what
    ``drivelab jobs list`` and ``jobs logs`` show of this machine's jobs while
    a remote drive does not answer or is not attached.
    """
    return status_path(ws.state / "jobs" / run, node)


def local_copies(ws: Workspace) -> list[tuple[JobStatus, float]]:
    """The statuses this machine keeps copies of (:func:`local_copy`), each with the time it was written (``st_mtime``).

    An active state whose supervisor is gone reads as ``lost``, as in :func:`read_status`.
    """
    found = []
    folder = ws.state / "jobs"
    for run_dir in sorted(folder.iterdir()) if folder.is_dir() else []:
        path = find_status_path(run_dir) if run_dir.is_dir() else None
        if path is None:
            continue
        try:
            status = JobStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
            written = path.stat().st_mtime
        except (OSError, ValueError, TypeError):
            continue
        if status.active and not is_alive(ws, status.run, status.node):
            status.state = "lost"
        found.append((status, written))
    return found


def _lock_file(ws: Workspace, run: str, node: str | None = None) -> Path:
    """The lock a run's supervisor holds: ``<run>.lock``; on one of several machines sharing the workspace
    folder (a Slurm job's nodes, a shared home), ``<run>.<node>.lock``, each machine's its own."""
    return ws.state / "jobs" / (f"{run}.{node}.lock" if node else f"{run}.lock")


def read_status(ws: Workspace, run: str) -> JobStatus:
    """The status of run ``run``; an active state whose supervisor is gone reads as ``lost``."""
    check_run_name(run)
    path = find_status_path(ws.run_dir(run)) or status_path(ws.run_dir(run))
    try:
        status = JobStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise JobNotFoundError(
            f"no job named {run!r} in {ws.runs}",
            hint="`drivelab jobs list` shows the jobs of this workspace",
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise JobNotFoundError(f"{path} is unreadable: {exc}", hint="the run folder is damaged; start the job again under another name") from exc
    if status.active and not is_alive(ws, run, status.node):
        status.state = "lost"
    return status


def is_alive(ws: Workspace, run: str, node: str | None = None) -> bool:
    """True while a supervisor holds the run's lock (this ``node``'s, for a run on several machines)."""
    path = _lock_file(ws, run, node)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # closing drops the shared lock, if taken
    return False


@contextlib.contextmanager
def job_lock(ws: Workspace, run: str, *, node: str | None = None, wait: float = 2.0) -> Iterator[None]:
    """Hold the run's lock (``node``'s own, see :func:`_lock_file`) for the life of a supervisor; :class:`JobRunningError` if another holds it."""
    path = _lock_file(ws, run, node)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait  # a reader may hold it shared for an instant
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise JobRunningError(
                        f"run {run!r} is already running",
                        hint=f"watch it with `drivelab jobs logs {run} -f`, stop it with `drivelab jobs stop {run}`, or pick another --run name",
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)

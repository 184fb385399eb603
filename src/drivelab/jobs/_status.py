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
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab.errors import JobNotFoundError, JobRunningError
from drivelab.jobs._spec import check_run_name
from drivelab.workspace import Workspace

__all__ = ["Attempt", "JobStatus", "ACTIVE_STATES", "read_status", "write_status", "job_lock", "is_alive", "status_path", "log_path"]

STATUS_VERSION = 1
ACTIVE_STATES = ("starting", "running", "restarting", "stopping")
"""States of a job whose supervisor is (or should be) alive."""
# Final states: succeeded, failed, stopped; "lost" is what a reader reports for
# an active state whose supervisor is gone (the machine rebooted, it was killed).


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
    attempts: list[Attempt] = field(default_factory=list)
    flush: dict[str, Any] | None = None
    """What the drive flush at the end waited for (files, bytes, seconds), or its error."""
    summary: str | None = None
    """One line on how the job ended, for people."""
    output: str | None = None
    """The output notebook of a notebook job."""
    log: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    version: int = STATUS_VERSION

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def pid(self) -> int | None:
        """The process id of the running attempt's command."""
        return self.attempts[-1].pid if self.attempts and self.attempts[-1].ended is None else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        data = dict(data)
        data["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def status_path(run_dir: Path) -> Path:
    return run_dir / "status.json"


def log_path(run_dir: Path) -> Path:
    return run_dir / "log"


def write_status(status: JobStatus) -> None:
    write_text_atomic(status_path(Path(status.run_dir)), json.dumps(status.to_dict(), indent=2) + "\n")


def _lock_file(ws: Workspace, run: str) -> Path:
    return ws.state / "jobs" / f"{run}.lock"


def read_status(ws: Workspace, run: str) -> JobStatus:
    """The status of run ``run``; an active state whose supervisor is gone reads as ``lost``."""
    check_run_name(run)
    path = status_path(ws.run_dir(run))
    try:
        status = JobStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise JobNotFoundError(
            f"no job named {run!r} in {ws.runs}",
            hint="`drivelab jobs list` shows the jobs of this workspace",
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise JobNotFoundError(f"{path} is unreadable: {exc}", hint="the run folder is damaged; start the job again under another name") from exc
    if status.active and not is_alive(ws, run):
        status.state = "lost"
    return status


def is_alive(ws: Workspace, run: str) -> bool:
    """True while a supervisor holds the run's lock."""
    path = _lock_file(ws, run)
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
def job_lock(ws: Workspace, run: str, *, wait: float = 2.0) -> Iterator[None]:
    """Hold the run's lock for the life of a supervisor; :class:`JobRunningError` if another holds it."""
    path = _lock_file(ws, run)
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

"""Jobs in the background: start detached, list, read logs, stop."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from drivelab import drive
from drivelab._background import ProcessExited, ReadyTimeout, spawn, stop, wait_ready
from drivelab._deadline import DeadlineError, NoAnswer, within
from drivelab.errors import JobError, JobNotFoundError, JobRunningError
from drivelab.jobs._slurm_run import follow_slurm_run, is_slurm_run, read_slurm_log, slurm_run_status, stop_slurm_run
from drivelab.jobs._spec import JobSpec
from drivelab.jobs._status import JobStatus, find_status_path, is_alive, local_copies, log_path, log_start, read_status, write_status
from drivelab.workspace import Workspace

__all__ = [
    "start_detached", "job_status", "list_jobs", "JobListing", "jobs_listing", "read_log", "LogAnswer", "log_answer",
    "LogPart", "read_log_part", "follow_log", "stop_job", "DRIVE_ANSWER_WITHIN",
]  # fmt: skip

T = TypeVar("T")

DRIVE_ANSWER_WITHIN = 2.0
"""Seconds a listing or a log read waits for a remote drive; then it answers from this machine's local state."""

LOG_PART_BYTES = 256 * 1024
"""The most :func:`read_log_part` returns at once."""
LOG_TAIL_BYTES = 64 * 1024
"""What :func:`read_log_part` starts with when not given an offset: the log's end, from a line's start."""


def start_detached(ws: Workspace, spec: JobSpec, *, timeout: float = 30.0) -> JobStatus:
    """Start ``spec`` under a supervisor of its own, in a new session, and return once it runs.

    The supervisor outlives the calling process and its terminal; its own
    output (a crash, say) goes to the run's log. Raises :class:`JobRunningError`
    if a job of that name is running.
    """
    spec.prepare()
    if is_alive(ws, spec.run, spec.node or None):
        raise JobRunningError(
            f"run {spec.run!r} is already running",
            hint=f"watch it with `drivelab jobs logs {spec.run} -f`, stop it with `drivelab jobs stop {spec.run}`, or pick another --run name",
        )
    # The run folder (and the supervisor's log in it) belongs on the drive: attach it first, so that
    # a remote drive not mounted yet is not written beneath (its supervisor then finds it attached).
    drive.attach(ws)
    run_dir = ws.run_dir(spec.run)
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [spec.python, "-m", "drivelab.jobs._supervisor", str(ws.root), json.dumps(spec.to_dict())]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_RUN_", "DRIVELAB_RESTART_"))}
    # No terminal: closing it does not reach the job.
    proc = spawn(argv, log=log_path(run_dir, spec.node), cwd=ws.root, env=env)

    def started() -> JobStatus | None:
        with contextlib.suppress(JobNotFoundError):
            status = read_status(ws, spec.run)
            if status.supervisor_pid == proc.pid:
                return status  # it wrote its status; pid() is the command's, once started
        return None

    try:
        return wait_ready(proc, started, timeout=timeout, poll=0.02)
    except ProcessExited as exc:
        log = log_path(run_dir, spec.node)
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-10:]) if log.exists() else ""
        raise JobError(f"the job's supervisor exited at once ({exc.code}); the log ends:\n{tail}", hint=f"see {log}") from None
    except ReadyTimeout:
        raise JobError(f"the job {spec.run!r} did not start within {timeout:.0f} s", hint=f"see {log_path(run_dir, spec.node)}") from None


def job_status(ws: Workspace, run: str) -> JobStatus:
    """The job's status: :func:`read_status`, or for a run handed to Slurm, with Slurm's state (see ``_slurm_run``)."""
    return slurm_run_status(ws, run) if is_slurm_run(ws.run_dir(run)) else read_status(ws, run)


def _within_drive(read: Callable[[], T]) -> T:
    """``read()`` of the drive, bounded by :data:`DRIVE_ANSWER_WITHIN` (see :func:`drivelab._deadline.within`)."""
    try:
        return within(DRIVE_ANSWER_WITHIN, read)
    except DeadlineError as exc:
        raise JobError(f"reading the drive failed: {exc}", hint="see `drivelab drive status`") from None


def _remote_drive(ws: Workspace) -> tuple[str | None, bool]:
    """The remote drive's ``remote:root`` (None for a local drive) and whether it is attached (both from local state)."""
    spec = drive.remote_spec(ws)
    return spec, spec is None or drive.is_attached(ws)


def _not_answering(spec: str) -> str:
    return f"the drive ({spec}) is not answering (nothing within {DRIVE_ANSWER_WITHIN:g} s)"


def _not_attached(spec: str) -> str:
    return f"the drive ({spec}) is not attached: its runs are not visible; `drivelab drive mount`"


def _clock(unix: float | None) -> str | None:
    return datetime.fromtimestamp(unix).astimezone().isoformat(timespec="seconds") if unix else None


@dataclass
class JobListing:
    """The jobs :func:`jobs_listing` could read, and what it could not."""

    jobs: list[JobStatus]
    unreadable: str | None = None
    """Why the drive's run folders were not read (it does not answer, it is not attached); None when they were."""
    as_of: str | None = None
    """With ``unreadable``: when the local copies shown were last written (ISO time); None when none were."""

    def notice(self) -> str | None:
        """For people: "the drive (box:lab) is not answering (...): showing this machine's jobs as of 12:03:04"."""
        if self.unreadable is None:
            return None
        if not self.jobs:
            return self.unreadable
        return f"{self.unreadable}; showing this machine's jobs as of {self.as_of[11:19] if self.as_of else '?'}"


def jobs_listing(ws: Workspace) -> JobListing:
    """Every job of the workspace, oldest first, without waiting on a remote drive that does not answer.

    A local drive is read as it is. A remote one is read in a child process for at
    most :data:`DRIVE_ANSWER_WITHIN` seconds; when it does not answer, or is
    not attached, the listing is this machine's local copies of the statuses
    its jobs wrote (``.drivelab/jobs/<run>/``), with ``unreadable`` saying why
    (runs of other machines, and runs handed to Slurm, are then not shown).
    """
    spec, attached = _remote_drive(ws)
    if spec is None:
        return JobListing(_drive_jobs(ws))
    if attached:
        try:
            return JobListing(_within_drive(lambda: _drive_jobs(ws)))
        except NoAnswer:
            why = _not_answering(spec)
    else:
        why = _not_attached(spec)
    copies = local_copies(ws)
    return JobListing(
        sorted((status for status, _ in copies), key=lambda s: s.started),
        unreadable=why, as_of=_clock(max((written for _, written in copies), default=None)),
    )


def list_jobs(ws: Workspace) -> list[JobStatus]:
    """Every job of the workspace (run folders holding a ``status.json``, or handed to Slurm), oldest first.

    Never waits on a remote drive that does not answer: see :func:`jobs_listing`, which also says what it could not read.
    """
    return jobs_listing(ws).jobs


def _drive_jobs(ws: Workspace) -> list[JobStatus]:
    found = []
    if ws.runs.is_dir():
        for path in ws.runs.iterdir():
            if find_status_path(path) or is_slurm_run(path):
                with contextlib.suppress(JobNotFoundError, JobError):
                    found.append(job_status(ws, path.name))
    return sorted(found, key=lambda s: s.started)


def read_log(ws: Workspace, run: str, *, tail: int | None = None) -> str:
    """The job's log (its last ``tail`` lines when given); see :func:`log_answer`, which also says what it could not read."""
    return log_answer(ws, run, tail=tail).text


@dataclass
class LogAnswer:
    text: str
    unreadable: str | None = None
    """Why the log was not read from the drive (then ``text`` is this machine's cached copy); None when it was."""
    as_of: str | None = None
    """With ``unreadable``: when the cached copy was last written (ISO time)."""

    def notice(self) -> str | None:
        if self.unreadable is None:
            return None
        return f"{self.unreadable}; showing the log as this machine's cache holds it, as of {self.as_of[11:19] if self.as_of else '?'}"


def log_answer(ws: Workspace, run: str, *, tail: int | None = None) -> LogAnswer:
    """The job's log (its last ``tail`` lines), without waiting on a remote drive that does not answer.

    A remote drive is read in a child process for at most :data:`DRIVE_ANSWER_WITHIN`
    seconds; when it does not answer, or is not attached, the log is read
    from rclone's cache on this machine (see ``drive.DrivePaths``), where a
    job run here wrote it, if the cache holds it whole. Raises
    :class:`JobNotFoundError` naming the drive's state when neither has it.
    """
    spec, attached = _remote_drive(ws)
    if spec is None:
        return LogAnswer(_drive_log(ws, run, tail))
    if attached:
        try:
            return LogAnswer(_within_drive(lambda: _drive_log(ws, run, tail)))
        except NoAnswer:
            why = _not_answering(spec)
    else:
        why = _not_attached(spec)
    status = next((s for s, _ in local_copies(ws) if s.run == run), None)
    if status is None:
        raise JobNotFoundError(f"no job named {run!r} on this machine, and {why}", hint="`drivelab jobs list` shows what can be read now")
    cached = drive.cached_copy(ws, log_path(Path(status.run_dir), status.node))
    if cached is None:
        raise JobError(f"{why}, and this machine's cache does not hold the whole log of {run!r}", hint="try again once the drive answers: `drivelab drive status`")
    data, written = cached
    return LogAnswer(_tail(data.decode("utf-8", errors="replace"), tail), unreadable=why, as_of=_clock(written))


def _drive_log(ws: Workspace, run: str, tail: int | None) -> str:
    if is_slurm_run(ws.run_dir(run)):
        return read_slurm_log(ws, run, tail=tail)
    status = read_status(ws, run)  # a clear error for an unknown job
    try:
        text = log_path(ws.run_dir(run), status.node).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return _tail(text, tail)


def _tail(text: str, tail: int | None) -> str:
    if tail is None:
        return text
    return "".join(text.splitlines(keepends=True)[-tail:]) if tail > 0 else ""


@dataclass
class LogPart:
    """A part of a job's log, for a reader that polls it (the lab's jobs panel): read on from ``offset``."""

    status: JobStatus
    """The job's status, read before the log: when it had ended then, ``text`` holds the log to its end."""
    text: str
    offset: int
    """The byte offset to read from next."""


def read_log_part(ws: Workspace, run: str, offset: int | None = None, *, limit: int = LOG_PART_BYTES, tail: int = LOG_TAIL_BYTES) -> LogPart:
    """The job's log from byte ``offset``: at most ``limit`` bytes, never cut inside a UTF-8 character.

    Without ``offset``: its last ``tail`` bytes, from the first line that
    starts in them. An offset past the log's end (a log that was started
    again) reads from its start. An unfinished character at the end of what
    a running job wrote is left for the next read.
    """
    status = job_status(ws, run)  # before reading: nothing a job wrote before it ended is missed
    path = log_path(Path(status.run_dir), status.node)
    if status.slurm and not path.exists():
        path = Path(status.slurm["output"])  # Slurm's output, while no supervisor has written the log
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = max(0, size - tail) if offset is None else offset if 0 <= offset <= size else 0
            fh.seek(start)
            data = fh.read(limit)
    except FileNotFoundError:
        return LogPart(status, "", 0)
    skip = 0
    if start > 0 and offset is None:
        newline = data.find(b"\n")
        skip = newline + 1 if newline >= 0 else _first_character(data)
    elif start > 0:
        skip = _first_character(data)  # an offset inside a character: from the next one
    end = _last_whole_character(data) if status.active or len(data) == limit else len(data)
    end = max(end, skip)
    return LogPart(status, data[skip:end].decode("utf-8", errors="replace"), start + end)


def _first_character(data: bytes) -> int:
    """Where the first UTF-8 character of ``data`` starts (after at most 3 continuation bytes)."""
    i = 0
    while i < min(len(data), 3) and data[i] & 0xC0 == 0x80:
        i += 1
    return i


def _last_whole_character(data: bytes) -> int:
    """The length of ``data`` without an unfinished UTF-8 character at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # ASCII, or the first byte of a character
            needs = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) - back if back < needs else len(data)
    return len(data)


def follow_log(ws: Workspace, run: str, *, tail: int | None = None, poll: float = 0.2) -> Iterator[str]:
    """The log (its last ``tail`` lines), then what is appended to it, until the job has ended."""
    if is_slurm_run(ws.run_dir(run)):  # until Slurm says it has ended
        yield from (chunk for chunk in follow_slurm_run(ws, run, tail=tail, poll=poll) if isinstance(chunk, str))
        return
    status = read_status(ws, run)
    path = log_path(ws.run_dir(run), status.node)
    offset, text = log_start(path, tail)
    if text:
        yield text
    while True:
        alive = is_alive(ws, run, status.node)  # looked at before reading, so nothing written before the end is missed
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
            if data:
                offset += len(data)
                yield data.decode("utf-8", errors="replace")
                continue
        if not alive:
            return
        time.sleep(poll)


def stop_job(ws: Workspace, run: str, *, timeout: float = 60.0) -> JobStatus:
    """Stop a running job (SIGTERM; its supervisor escalates to SIGKILL after the grace period).

    Returns its final status once the supervisor has recorded it and flushed
    the drive. A job whose supervisor is gone (``lost``) has what is left of
    its processes killed and is recorded as stopped. A run handed to Slurm is
    cancelled (``scancel``), and returned once Slurm says it has ended.
    """
    if is_slurm_run(ws.run_dir(run)):
        return stop_slurm_run(ws, run, timeout=timeout)
    status = read_status(ws, run)
    if status.state == "lost":
        _kill_group(status.pid, Path(status.run_dir))
        status.state, status.summary = "stopped", "stopped; its supervisor was already gone"
        write_status(status)
        return status
    if not status.active:
        raise JobError(f"job {run!r} is not running (it {status.state})", hint=f"`drivelab jobs logs {run}` shows how it ended")
    if status.supervisor_pid and stop(status.supervisor_pid, grace=timeout, alive=lambda: is_alive(ws, run, status.node)).killed:
        latest = read_status(ws, run)
        _kill_group(latest.pid, Path(latest.run_dir))
        raise JobError(f"job {run!r} did not stop within {timeout:.0f} s; it was killed", hint=f"see {log_path(Path(latest.run_dir))}")
    return read_status(ws, run)


def _kill_group(pid: int | None, run_dir: Path) -> None:
    """SIGKILL the process group of ``pid`` if it is still this job's (pids get reused)."""
    if not pid:
        return
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return
    if f"DRIVELAB_RUN_DIR={run_dir}".encode() in environ:
        stop(pid, grace=0, group=True)

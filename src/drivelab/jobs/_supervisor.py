"""The supervisor: runs a job's command, restarts it, records it, flushes the drive.

One supervisor per job, in the ``drivelab run`` process (foreground) or in a
process of its own started in a new session (``--detach``, see
:mod:`drivelab.jobs._control`). It

- attaches the drive and gives the job its run folder and environment: its
  own, with the spec's ``env`` merged in (see :func:`merge_environment`), then
  ``DRIVELAB_RUN_DIR``, ``DRIVELAB_RUN_NAME``, ``DRIVELAB_RESTART_COUNT`` and
  ``DRIVELAB_WORKSPACE``, which the spec cannot change;
- starts the command in a process group of its own, so that stopping reaches
  every process of the job (torchrun's workers, a notebook's kernel);
- copies each output line to ``drive/runs/<run>/log`` (and to ``on_line``);
- restarts a command that fails or is killed, after ``backoff`` seconds
  (0.1 by default), four times longer for each further restart in a row, until ``restarts`` restarts in a row made no
  progress; progress is a newer complete checkpoint in the run folder, so a job
  that resumes from its checkpoints may be killed any number of times;
- never restarts a failure that a restart cannot fix (see :func:`_not_restarted`):
  exit code 2 (a usage error), exit code 74 (:data:`NO_RETRY_EXIT_CODE`: the
  command says so, as drivelab's training code does for a full disk), output
  ending with "No space left on device", and the same failure twice in a row
  without a new checkpoint between (the same exit code and last lines; an
  attempt killed by a signal never counts);
- keeps each attempt's last lines, for the report of a job that failed;
- uses the drive for the job's life (a lab stopped meanwhile leaves it
  attached), flushes it when the job ends, and only then records it as ended.

A job on several machines has one supervisor on each, around that machine's
torchrun; they share the run folder on the drive, each writing its own
``status.<node>.json`` and ``log.<node>`` (``<node>``: :func:`node_name`,
also given to the job as ``DRIVELAB_NODE_NAME``). torchrun restarts the whole
group after a failure inside it; a supervisor restarts its machine's torchrun
when that gives up, as for one machine. It records what the rendezvous did
(this node's rank among how many, each time the group forms) from the lines
:mod:`drivelab.jobs._torchrun` prints, and a group that did not form within
the rendezvous timeout ends the job at once (restarting would not bring the
missing machines). Progress is still a newer checkpoint as this machine's
view of the drive shows it, which may lag behind the machine of rank 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from drivelab import colab, drive
from drivelab._atomic import write_text_atomic
from drivelab._deadline import DeadlineError, NoAnswer, within
from drivelab.errors import NO_RETRY_EXIT_CODE, DrivelabError, FlushError, JobError
from drivelab.jobs._spec import NODE_NAME_VARIABLE, JobSpec, merge_environment
from drivelab.jobs._status import (
    USAGE_EXIT_CODE, Attempt, JobStatus, OutputTail, job_lock, local_copy, log_path, now_iso, status_path, status_text, write_local_copy, write_status,
)
from drivelab.jobs._torchrun import GROUP_NOT_FORMED_EXIT_CODE, parse_group_line, parse_not_formed_line
from drivelab.train import latest_complete_checkpoint
from drivelab.workspace import Workspace

__all__ = ["JobEvent", "run_job", "describe_exit", "MAX_BACKOFF"]

MAX_BACKOFF = 60.0
BACKOFF_GROWTH = 4
"""The wait before a restart grows this many times for each further restart in a row without progress."""
_TAIL_LINES = 12
"""Output lines of each attempt kept for the failure report."""
_SAME_LINES = 3
"""Last non-blank output lines two failed attempts must share to be the same failure."""
DRIVE_WRITE_WITHIN = 10.0
"""Seconds writing ``status.json`` on a remote drive may take before it is left to finish by itself."""
FLUSH_STALL = 120.0
"""Seconds the flush at a job's end waits with no upload landing (``DRIVELAB_JOB_FLUSH_STALL``); then the uploads are
left to land by themselves (they are kept in the drive's cache) and the job's status says how many were pending."""
DETACH_TIMEOUT = 60.0
"""Seconds detaching a drive the job attached may take once it ended (uploads not landed by then stay in the cache)."""
_DISK_FULL = re.compile(r"no space left on device|disk quota exceeded|\[errno (28|122)\]", re.IGNORECASE)


@dataclass(frozen=True)
class JobEvent:
    """Something the supervisor did: ``attached``, ``started``, ``exited``, ``restarting``, ``stopping``, ``flushed``, ``ended``, ``detached``."""

    kind: str
    message: str


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not start"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code > 128 and code - 128 in signal.Signals._value2member_map_:
        # a shell or torchrun reporting a signal the usual way
        return f"exit code {code} ({signal.Signals(code - 128).name})"
    return f"exit code {code}"


def _last_lines(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if line.strip()][-_SAME_LINES:]


def _failure_line(lines: list[str]) -> str:
    """What an attempt's output says went wrong: its last line that is not a hint (an exception's, an error's)."""
    said = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("hint:", "[drivelab]"))]
    return said[-1][:200] if said else "(no output)"


def _not_restarted(code: int, lines: list[str], previous: tuple[int | None, list[str]] | None) -> str | None:
    """Why an attempt that failed with ``code`` and ended with ``lines`` must not be restarted; ``None``: it may be.

    ``previous`` is the exit code and last lines of the failed attempt just before it, when no new
    checkpoint came between the two.
    """
    if code == USAGE_EXIT_CODE:
        return "a usage error: its command line is wrong"
    if code == NO_RETRY_EXIT_CODE:
        return f"the command says a restart cannot fix it: {_failure_line(lines)}"
    if any(_DISK_FULL.search(line) for line in lines[-_TAIL_LINES:]):
        return f"no space left on device: {_failure_line(lines)}"
    if code > 0 and code <= 128 and previous is not None and previous == (code, _last_lines(lines)):
        # a signal (a kill from outside, the OOM killer) says nothing about the job: never the same failure
        return f"the same failure twice in a row without a new checkpoint: {_failure_line(lines)}"
    return None


def _checkpoint_epoch(run_dir: Path) -> tuple[int, str] | None:
    found = latest_complete_checkpoint(run_dir)
    return (found[0], found[1].name) if found else None


class _Supervisor:
    def __init__(
        self,
        ws: Workspace,
        spec: JobSpec,
        *,
        detached: bool,
        on_line: Callable[[str], None] | None,
        on_event: Callable[[JobEvent], None] | None,
    ) -> None:
        self.ws, self.spec, self.detached = ws, spec, detached
        self.on_line, self.on_event = on_line, on_event
        self.run_dir = ws.run_dir(spec.run)
        self.stop_signal: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = None
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)  # the running attempt's last lines
        self.tails: dict[int, list[str]] = {}  # each ended attempt's
        self._killer: threading.Timer | None = None
        self.not_formed: str | None = None  # why the group did not form, as the job's torchrun said
        self.remote = False  # the drive is a remote one: its writes are bounded (see _save)
        self.stuck: list[int] = []
        self.unsaved = False  # a write of status.json failed (a full disk), said once  # writes of status.json left waiting on a remote that did not answer

    # --- output -------------------------------------------------------------------------

    def _write_log(self, text: str) -> None:
        self._log_bytes(text.encode("utf-8", "replace") + b"\n")

    def _log_bytes(self, data: bytes) -> None:
        """Append to the log; a log that cannot be written (a full disk) is given up, not the job."""
        if self.log is None:
            return
        try:
            self.log.write(data)
            self.log.flush()
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.log.close()
            self.log = None
            if self.on_event:
                self.on_event(JobEvent("log", f"the log is not written any more: {exc.strerror or exc}"))

    def event(self, kind: str, message: str) -> None:
        self._write_log(f"[drivelab] {message}")
        if self.on_event:
            self.on_event(JobEvent(kind, message))

    def _save(self, status: JobStatus) -> None:
        """Write the status: its local copy, then ``status.json`` on the drive.

        On a remote drive the write is bounded by :data:`DRIVE_WRITE_WITHIN`: a
        remote that does not answer blocks any lookup beneath the mount. A write
        left waiting so goes on by itself; later ones are not attempted (they
        could land before it), and the last status is written once the uploads
        have landed (see :meth:`_finish`).
        """
        if not self.remote:
            try:
                write_status(status)
            except OSError as exc:  # a full disk: the job goes on; its status is said here, and written when it can be
                self._unsaved(exc)
            return
        write_local_copy(status)
        if self.stuck:
            return
        path, text = status_path(self.run_dir, status.node), status_text(status)
        try:
            within(DRIVE_WRITE_WITHIN, lambda: write_text_atomic(path, text))
        except DeadlineError:
            pass  # the writer died: the local copy holds the status, the next write tries again
        except OSError as exc:
            self._unsaved(exc)
        except NoAnswer as exc:
            self.stuck.append(exc.pid)
            self.event("drive", f"the drive did not take status.json within {DRIVE_WRITE_WITHIN:g} s: the remote is not answering; "
                       "the job's status is kept on this machine and written once the uploads land")

    def _unsaved(self, exc: OSError) -> None:
        """Say once that ``status.json`` could not be written (the job goes on; a later write tries again)."""
        if not self.unsaved:
            self.unsaved = True
            if self.on_event:
                self.on_event(JobEvent("status", f"status.json could not be written: {exc.strerror or exc}; the job goes on"))

    def _checkpoint(self, unknown: tuple[int, str] | None) -> tuple[int, str] | None:
        """The run's last complete checkpoint; ``unknown`` when a remote drive does not answer (see :meth:`_save`)."""
        if not self.remote:
            return _checkpoint_epoch(self.run_dir)
        if self.stuck:
            return unknown
        try:
            return within(DRIVE_WRITE_WITHIN, lambda: _checkpoint_epoch(self.run_dir))
        except DeadlineError:
            return unknown
        except NoAnswer as exc:
            self.stuck.append(exc.pid)
            self.event("drive", f"the drive did not answer within {DRIVE_WRITE_WITHIN:g} s: the remote is not answering; "
                       "the job's status is kept on this machine and written once the uploads land")
            return unknown

    # --- stopping -----------------------------------------------------------------------

    def _signal_job(self, signum: int) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signum)

    def request_stop(self, signum: int) -> None:
        """Stop the job: ``signum`` to its process group now, SIGKILL after the grace period."""
        first = self.stop_signal is None
        self.stop_signal = signum
        # SIGHUP means our terminal is gone: the job gets a TERM it can handle.
        self._signal_job(signal.SIGTERM if signum == signal.SIGHUP else signum)
        if first:
            self._killer = threading.Timer(self.spec.stop_grace, self._signal_job, args=(signal.SIGKILL,))
            self._killer.daemon = True
            self._killer.start()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {s: signal.getsignal(s) for s in handled}
        for s in handled:
            signal.signal(s, lambda signum, frame: self.request_stop(signum))
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # --- one attempt --------------------------------------------------------------------

    def _environment(self, restart: int) -> dict[str, str]:
        env = merge_environment(os.environ, self.spec.env)
        env.update(
            DRIVELAB_RUN_DIR=str(self.run_dir),
            DRIVELAB_RUN_NAME=self.spec.run,
            DRIVELAB_RESTART_COUNT=str(restart),
            DRIVELAB_WORKSPACE=str(self.ws.root),
            PYTHONUNBUFFERED="1",
        )
        if self.spec.node:
            env[NODE_NAME_VARIABLE] = self.spec.node
        return env

    def _run_once(self, command: list[str], restart: int, attempt: Attempt, status: JobStatus) -> int:
        if self.spec.colab:
            command = colab.content_command(self.ws.root, command, python=self.spec.python)
        try:
            self.proc = subprocess.Popen(
                command,
                cwd=self.ws.root,
                env=self._environment(restart),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop reaches all of it
            )
        except OSError as exc:
            raise JobError(f"cannot start {command[0]}: {exc.strerror or exc}", hint="check the Python interpreter and the script") from exc
        attempt.pid = self.proc.pid
        self._save(status)
        if self.stop_signal is not None:  # asked to stop while it was starting
            self._signal_job(self.stop_signal)
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.tail.append(line)
            if self.spec.rendezvous == "c10d":
                self._watch_group(line, status)
            self._log_bytes(raw if raw.endswith(b"\n") else raw + b"\n")
            if self.on_line:
                self.on_line(line)
        code = self.proc.wait()
        self.proc = None
        return code

    def _watch_group(self, line: str, status: JobStatus) -> None:
        """Record what the rendezvous did, from the lines drivelab's torchrun prints (see :mod:`drivelab.jobs._torchrun`)."""
        formed = parse_group_line(line)
        if formed is not None and status.group is not None:
            status.group.update(formed)
            self._save(status)
            return
        missing = parse_not_formed_line(line)
        if missing is not None:
            self.not_formed = missing

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # --- the whole job ------------------------------------------------------------------

    def run(self) -> JobStatus:
        spec, ws = self.spec, self.ws

        # Registered as a user of the drive for the job's life: a lab stopped meanwhile leaves it attached.
        # A remote drive this job attached is detached again once the job has ended, as the lab does;
        # one attached before (by `drivelab drive mount`, the lab) is left as it was found.
        self.remote = drive.remote_spec(ws) is not None
        attached_here = self.remote and not drive.is_attached(ws)
        state = drive.attach(ws, user=f"job {spec.run}")
        if attached_here and self.on_event:
            self.on_event(JobEvent("attached", f"drive attached for the job: {state.spec or state.remote}"))
        try:
            return self._run()
        finally:
            if attached_here:
                self._detach_drive()
            else:
                drive.release(ws)

    def _detach_drive(self) -> None:
        """Detach the drive this job attached (flushed already), unless another command uses it now."""
        try:
            result = drive.detach(self.ws, timeout=DETACH_TIMEOUT)
        except DrivelabError as exc:
            message = f"the drive stays attached: {exc.message}"
        else:
            if not result.detached:
                message = "the drive stays attached: " + ", ".join(str(u.get("what", "?")) for u in result.users) + " still use it"
            elif result.pending:
                message = f"drive detached with {result.pending} upload(s) pending (kept in {result.cache}; they land at the next mount)"
            else:
                message = "drive detached (attached for the job)"
        if self.on_event:
            self.on_event(JobEvent("detached", message))

    def _run(self) -> JobStatus:
        spec, ws = self.spec, self.ws
        self.run_dir.mkdir(parents=True, exist_ok=True)
        command = spec.command(ws, self.run_dir)
        status = JobStatus(
            run=spec.run,
            run_dir=str(self.run_dir),
            kind=spec.kind,
            command=command,
            cwd=str(ws.root),
            state="starting",
            started=now_iso(),
            detached=self.detached,
            supervisor_pid=os.getpid(),
            host=socket.gethostname(),
            node=spec.node or None,
            group=self._group(),
            output=str(spec.output_notebook(self.run_dir)) if spec.kind == "notebook" else None,
            log=str(log_path(self.run_dir, spec.node)),
            spec=spec.to_dict(),
        )
        self.log = open(log_path(self.run_dir, spec.node), "ab")  # noqa: SIM115 -- open until the flush at its end
        try:
            with self._signals():
                self._attempts(status, command)
            self._finish(status)
        finally:
            if self._killer is not None:
                self._killer.cancel()
            self._close_log()
        return status

    def _group(self) -> dict | None:
        """This machine's group as known before its rendezvous (each attempt's torchrun joins it anew)."""
        spec = self.spec
        if spec.rendezvous is None:
            return None
        static = spec.rendezvous == "static"  # the rank is given, not handed out
        return {
            "rendezvous": spec.rendezvous,
            "id": None if static else spec.group_id,
            "endpoint": spec.rdzv_endpoint,
            "nnodes": spec.nnodes,
            "rank": spec.node_rank if static else None,
            "size": int(spec.nnodes) if static else None,
            "round": None,
            "nodes": None,
        }

    def _attempts(self, status: JobStatus, command: list[str]) -> None:
        spec = self.spec
        in_a_row = 0  # restarts since the job last made progress
        restart = 0
        previous: tuple[int | None, list[str]] | None = None  # the last failure's exit code and lines, since the last checkpoint
        while True:
            before = self._checkpoint(None)
            attempt = Attempt(number=restart, started=now_iso())
            status.attempts.append(attempt)
            status.state, status.restarts = "running", restart
            what = "starting" if restart == 0 else f"restart {restart}"
            self.event("started", f"{what}: {' '.join(command)}" + (f" (from {before[1]})" if before else ""))
            started = time.monotonic()
            self.tail.clear()
            self.not_formed = None
            status.group = self._group()
            code = self._run_once(command, restart, attempt, status)
            self.tails[attempt.number] = list(self.tail)
            after = self._checkpoint(before)
            attempt.ended, attempt.seconds, attempt.exit_code = now_iso(), round(time.monotonic() - started, 3), code
            attempt.checkpoint = after[1] if after else None
            attempt.progressed = after is not None and (before is None or after[0] > before[0])
            status.last_checkpoint = attempt.checkpoint
            status.exit_code = code
            self.event("exited", f"{describe_exit(code)} after {attempt.seconds:.1f} s")

            if self.stop_signal is not None:
                status.state = "stopped"
                status.summary = f"stopped ({signal.Signals(self.stop_signal).name}) after {len(status.attempts)} attempt(s); {describe_exit(code)}"
                return
            if code == 0:
                status.state = "succeeded"
                status.summary = "succeeded" + (f" after {restart} restart(s)" if restart else "")
                return
            if code == GROUP_NOT_FORMED_EXIT_CODE and spec.rendezvous == "c10d" and self.not_formed:
                status.state = "failed"
                status.summary = f"failed: {self.not_formed}; not restarted"
                status.failure_tail = self._failure_tail(status.attempts[-1:])
                return
            if attempt.progressed:
                in_a_row, previous = 0, None
            why = _not_restarted(code, self.tails[attempt.number], previous)
            if why is not None:
                twice = previous is not None and why.startswith("the same failure")
                status.state = "failed"
                status.summary = f"failed with {describe_exit(code)} ({why}) after {attempt.seconds:.1f} s; not restarted" + (" again" if twice else "")
                status.failure_tail = self._failure_tail(status.attempts[-2:] if twice else status.attempts[-1:])
                return
            previous = (code, _last_lines(self.tails[attempt.number]))
            if in_a_row >= spec.restarts:
                status.state = "failed"
                status.summary = self._give_up_summary(status, in_a_row)
                status.failure_tail = self._failure_tail(status.attempts[-(in_a_row + 1) :])
                return
            in_a_row += 1
            restart += 1
            delay = min(MAX_BACKOFF, spec.backoff * BACKOFF_GROWTH ** (in_a_row - 1))
            status.state, status.restarts = "restarting", restart
            self._save(status)
            resume = f", resuming from {after[1]}" if after else ""
            self.event("restarting", f"restarting in {delay:.1f} s (restart {in_a_row} of {spec.restarts} in a row without progress{resume})")
            self._sleep(delay)
            if self.stop_signal is not None:
                status.state = "stopped"
                status.summary = f"stopped ({signal.Signals(self.stop_signal).name}) while waiting to restart"
                return

    def _give_up_summary(self, status: JobStatus, in_a_row: int) -> str:
        failed = status.attempts[-(in_a_row + 1) :]
        codes = sorted({describe_exit(a.exit_code) for a in failed})
        longest = max(a.seconds or 0.0 for a in failed)
        how = codes[0] + " each time" if len(codes) == 1 else ", ".join(codes)
        if self.spec.restarts == 0:
            return f"failed ({codes[0]}) after {longest:.1f} s; not restarted (--restarts 0)"
        return (
            f"gave up after {len(status.attempts)} attempt(s): the last {len(failed)} failed without a new checkpoint "
            f"({how}, each within {longest:.1f} s)"
        )

    def _failure_tail(self, failed: list[Attempt]) -> list[OutputTail]:
        """The failed attempts' last lines, oldest first; attempts in a row that ended alike share one entry
        (alike as the restart rule judges it: the same last lines, whatever came before them, such as a
        kernel's message at shutdown that one attempt printed and the next did not)."""
        tails: list[OutputTail] = []
        for attempt in failed:
            lines = self.tails.get(attempt.number, [])
            if tails and _last_lines(tails[-1].lines) == _last_lines(lines):
                tails[-1].attempts.append(attempt.number)
            else:
                tails.append(OutputTail(lines=lines, attempts=[attempt.number]))
        return tails

    def _finish(self, status: JobStatus) -> None:
        status.ended = now_iso()
        self._save(status)
        self.event("ended", f"job {status.run}: {status.summary}")
        # A remote drive uploads a file once it is closed: the log is closed for each flush, else it stays behind.
        self._close_log()
        landed = True
        try:
            flushed = drive.flush(self.ws, stall=float(os.environ.get("DRIVELAB_JOB_FLUSH_STALL") or FLUSH_STALL))
        except FlushError as exc:
            landed = exc.pending == 0
            status.flush = {"error": exc.message, "pending": exc.pending, "cache": str(drive.DrivePaths(self.ws).cache)}
            message = f"the drive's uploads did not all land: {exc.message}"
        except DrivelabError as exc:
            status.flush = {"error": exc.message}
            message = f"flushing the drive failed: {exc.message}"
        else:
            status.flush = {"files": flushed.files, "bytes": flushed.bytes, "seconds": round(flushed.seconds, 3)}
            message = f"drive flushed: {flushed.files} file(s), {flushed.bytes} bytes in {flushed.seconds:.1f} s" if flushed.files else None
        if message and landed and not self.stuck:
            self.log = open(log_path(self.run_dir, self.spec.node), "ab")  # noqa: SIM115 -- closed again below
            self.event("flushed", message)
            self._close_log()
        elif message and self.on_event:  # reopening the log would wait on the remote
            self.on_event(JobEvent("flushed", message))
        self._save(status)
        if landed and not self.stuck:
            with contextlib.suppress(DrivelabError):
                drive.flush(self.ws, stall=float(os.environ.get("DRIVELAB_JOB_FLUSH_STALL") or FLUSH_STALL))  # status.json and the log's last line
            return
        # Once the uploads land (the remote answers, or at the next mount), status.json on the drive says so.
        landed_status = JobStatus.from_dict({**status.to_dict(), "flush": {**(status.flush or {}), "landed": "after the job ended"}})
        with contextlib.suppress(OSError, DrivelabError):
            text = status_text(landed_status)
            files = {status_path(self.run_dir, status.node): text, local_copy(self.ws, status.run, status.node): text}
            drive.write_when_landed(self.ws, files, after=self.stuck)

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


def apply_colab(ws: Workspace, spec: JobSpec) -> None:
    """Merge the Colab environment into ``spec.env`` (when ``spec.colab``); what the spec set itself wins."""
    if spec.colab:
        spec.env = {**colab.job_environment(ws, notebook=spec.kind == "notebook"), **spec.env}


def run_job(
    ws: Workspace,
    spec: JobSpec,
    *,
    detached: bool = False,
    on_line: Callable[[str], None] | None = None,
    on_event: Callable[[JobEvent], None] | None = None,
) -> JobStatus:
    """Run ``spec`` to its end in this process and return its final status.

    ``on_line`` gets each output line, ``on_event`` each :class:`JobEvent`.
    SIGINT, SIGTERM and SIGHUP stop the job (when called from the main
    thread). Returns the status whatever the outcome (``status.state`` is
    ``succeeded``, ``failed`` or ``stopped``); raises :class:`JobError` only
    for a job that cannot start, :class:`JobRunningError` when a job of that
    name is running already.
    """
    apply_colab(ws, spec)
    spec.prepare()
    with job_lock(ws, spec.run, node=spec.node or None):
        return _Supervisor(ws, spec, detached=detached, on_line=on_line, on_event=on_event).run()


def _main(argv: list[str]) -> int:
    """``python -m drivelab.jobs._supervisor ROOT SPEC_JSON``: a detached job's supervisor."""
    ws = Workspace(Path(argv[0]))
    spec = JobSpec.from_dict(json.loads(argv[1]))
    try:
        status = run_job(ws, spec, detached=True)
    except DrivelabError as exc:
        print(f"[drivelab] error: {exc.message}" + (f"\n[drivelab] hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    return 0 if status.state == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

"""Background processes: start one in a session of its own, wait until it is ready, stop it.

The drive's watchdog, a detached job's supervisor and the lab's server all
run this way::

    proc = spawn(argv, log=path)                      # no terminal; output appended to the log
    state = wait_ready(proc, read_state, timeout=60)  # ProcessExited / ReadyTimeout otherwise
    stop(proc, grace=10)                              # SIGCONT + SIGTERM, SIGKILL after the grace; .code, .killed

Callers turn :class:`ProcessExited` and :class:`ReadyTimeout` into their own
errors, with what their logs say.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["spawn", "wait_ready", "stop", "stop_all", "Stopped", "pid_alive", "wait_gone", "ProcessExited", "ReadyTimeout"]

T = TypeVar("T")


class ProcessExited(Exception):
    """The process ended before it was ready; ``code`` is its exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exited with code {code}")
        self.code = code


class ReadyTimeout(Exception):
    """The process was not ready within the time given (it is left running)."""


def spawn(argv: Sequence[str], *, log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None, header: str | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own, output (stdout and stderr) appended to ``log``.

    With no terminal, closing the caller's terminal or Ctrl+C in it does not
    reach the process; stdin is ``/dev/null``. ``header`` is written to the
    log first (a line saying what starts).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        if header:
            out.write(header.encode() + b"\n")
            out.flush()
        return subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )  # fmt: skip


def wait_ready(proc: subprocess.Popen[bytes], ready: Callable[[], T | None], *, timeout: float | None, poll: float = 0.05) -> T:
    """Poll ``ready()`` until it returns something other than None, and return that.

    Raises :class:`ProcessExited` when ``proc`` ends first, :class:`ReadyTimeout`
    after ``timeout`` seconds (None: no limit while the process lives).
    ``ready`` may raise to give up at once; that passes through.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = ready()
        if value is not None:
            return value
        code = proc.poll()
        if code is not None:
            value = ready()  # what it recorded on its way out
            if value is not None:
                return value
            raise ProcessExited(code)
        if deadline is not None and time.monotonic() > deadline:
            raise ReadyTimeout
        time.sleep(poll)


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a zombie child of this process is reaped)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(alive: Callable[[], bool], seconds: float) -> bool:
    """Wait until ``alive()`` is false; False if it still is after ``seconds``."""
    deadline = time.monotonic() + seconds
    while alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class Stopped:
    """How :func:`stop` ended a process."""

    killed: bool
    """True when it outlived the grace and was sent SIGKILL."""
    code: int | None = None
    """Its exit status (negative: the signal that ended it) when it was given as a :class:`subprocess.Popen`
    and has ended; otherwise None."""


def stop(
    process: int | subprocess.Popen[bytes],
    *,
    grace: float,
    group: bool = False,
    kill_group: bool = False,
    alive: Callable[[], bool] | None = None,
) -> Stopped:
    """SIGTERM ``process`` (its process group with ``group``), then SIGKILL if it lives ``grace`` seconds on.

    ``process`` is a PID, or a child of this process as a :class:`subprocess.Popen`,
    whose exit status the result then carries. With ``kill_group``, SIGTERM goes
    to the process alone (it ends its own children on it) and SIGKILL to its
    whole group. A stopped process (SIGSTOP) is continued first, so that it can
    act on SIGTERM; ``grace=0`` kills it at once, with no SIGTERM to act on.
    ``alive`` says whether it still runs (default: whether the PID does), e.g.
    a lock it holds. A process that has ended is not signalled (its group, with ``group``, still is).
    """
    pid = process if isinstance(process, int) else process.pid
    if alive is None:
        alive = (lambda: pid_alive(pid)) if isinstance(process, int) else (lambda: process.poll() is None)

    def result(killed: bool) -> Stopped:
        return Stopped(killed, None if isinstance(process, int) else process.poll())

    if not group and not alive():
        return result(False)
    return result(_escalate(lambda sig: _send(pid, sig, group=group or (kill_group and sig == signal.SIGKILL)), alive, grace))


def stop_all(pids: Collection[int], *, grace: float) -> list[int]:
    """:func:`stop` several processes together: SIGTERM to all, SIGKILL to those alive ``grace`` seconds on.

    Returns those of ``pids`` that were alive."""
    living = [pid for pid in pids if pid_alive(pid)]
    if living:

        def send(sig: int) -> None:
            for pid in living:
                _send(pid, sig, group=False)

        _escalate(send, lambda: any(pid_alive(pid) for pid in living), grace)
    return living


def _escalate(send: Callable[[int], None], alive: Callable[[], bool], grace: float) -> bool:
    """SIGCONT and SIGTERM, then SIGKILL once ``alive()`` stays true ``grace`` seconds; whether it came to SIGKILL."""
    if grace > 0:
        send(signal.SIGCONT)
        send(signal.SIGTERM)
        if wait_gone(alive, grace):
            return False
    send(signal.SIGKILL)
    wait_gone(alive, 5.0)
    return True


def _send(pid: int, sig: int, *, group: bool) -> None:
    """``sig`` to ``pid`` (to its process group with ``group``, or to ``pid`` when it leads none); gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            try:
                os.killpg(pid, sig)
                return
            except (ProcessLookupError, PermissionError):
                pass
        os.kill(pid, sig)

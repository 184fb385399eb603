"""Background processes: start one in a session of its own, wait until it is ready, stop it.

The drive's watchdog, a detached job's supervisor and the lab's server all
run this way::

    proc = spawn(argv, log=path)                      # no terminal; output appended to the log
    state = wait_ready(proc, read_state, timeout=60)  # ProcessExited / ReadyTimeout otherwise
    stop(pid, grace=10)                               # SIGCONT + SIGTERM, SIGKILL after the grace

Callers turn :class:`ProcessExited` and :class:`ReadyTimeout` into their own
errors, with what their logs say.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["spawn", "wait_ready", "stop", "pid_alive", "wait_gone", "ProcessExited", "ReadyTimeout"]

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


def stop(pid: int, *, grace: float, group: bool = False) -> bool:
    """SIGTERM ``pid`` (its process group with ``group``), then SIGKILL if it lives ``grace`` seconds on.

    A stopped process (SIGSTOP) is continued first, so that it can act on
    SIGTERM; ``grace=0`` kills it at once, with no SIGTERM to act on. Returns
    True when it ended within the grace, False when it had to be killed.
    """

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    if grace > 0:
        send(signal.SIGCONT)
        send(signal.SIGTERM)
        if wait_gone(lambda: pid_alive(pid), grace):
            return True
    send(signal.SIGKILL)
    wait_gone(lambda: pid_alive(pid), 5.0)
    return False

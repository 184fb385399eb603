"""Reading or writing a FUSE drive with a deadline that holds.

A read stuck on a FUSE mount whose remote hangs sleeps uninterruptibly once
rclone took the request. A thread doing so cannot be abandoned: it keeps its
whole process from exiting (a zombie for minutes). So the work is done in a
forked child, whose answer comes back through a pipe::

    jobs = within(2.0, lambda: list_run_folders(ws))   # NoAnswer after 2 s

A child still stuck at the deadline is left behind with its output on
/dev/null; it ends when the drive answers, and is reaped by a later call.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["within", "NoAnswer", "DeadlineError"]

T = TypeVar("T")

_LEFT: list[int] = []
"""Children left stuck on the drive, reaped once they end."""


class NoAnswer(Exception):
    """The work did not finish within its deadline; it goes on in the child ``pid``, left behind."""

    def __init__(self, message: str, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


class DeadlineError(Exception):
    """The child ended without an answer (it was killed, or its answer could not be pickled)."""


def within(seconds: float, work: Callable[[], T]) -> T:
    """``work()`` in a forked child; its result, or what it raised. :class:`NoAnswer` after ``seconds``."""
    _reap()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave without the parent's cleanup
        try:
            # Nothing of the parent's stays open in a child that may outlive it: not its output (a pipe
            # whose reader would wait for it), not its sockets.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, wfd)
            os.closerange(wfd + 1, 65536)
            try:
                answer = pickle.dumps((True, work()))
            except BaseException as exc:  # handed to the caller
                try:
                    answer = pickle.dumps((False, exc))
                except Exception:
                    answer = pickle.dumps((False, DeadlineError(f"{exc.__class__.__name__}: {exc}")))
            with os.fdopen(wfd, "wb") as out:
                out.write(answer)
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    deadline = time.monotonic() + seconds
    with os.fdopen(rfd, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                _LEFT.append(pid)
                raise NoAnswer(f"no answer within {seconds:g} s", pid)
            chunk = os.read(pipe.fileno(), 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    try:
        ok, value = pickle.loads(b"".join(chunks))
    except Exception as exc:  # the child died without answering
        raise DeadlineError(f"the child ended without an answer ({exc.__class__.__name__})") from None
    if ok:
        return value
    raise value


def _reap() -> None:
    for pid in list(_LEFT):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        _LEFT.remove(pid)

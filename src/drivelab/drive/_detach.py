"""Detaching: flush, then stop the watchdog and unmount, within a deadline; forced when the drive does not answer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from drivelab._background import pid_alive, stop, wait_gone
from drivelab.drive import _guard
from drivelab.drive._config import DrivePaths, WatchdogState, load_settings, read_watchdog_state, write_private_json
from drivelab.drive._flush import flush, flush_mount, pending_in_cache
from drivelab.drive._host import mount_broken, mount_table_has, rclone_alive, unmount
from drivelab.drive._results import DetachResult, FlushResult
from drivelab.drive._status import append_event, watchdog_state
from drivelab.drive._sync import sync_now
from drivelab.drive._users import describe_users, release, users
from drivelab.errors import DriveError, DriveInUseError
from drivelab.workspace import Workspace

__all__ = ["detach", "flush_fields"]


def _stop_now(ws: Workspace, raw: WatchdogState | None) -> None:
    """Stop the watchdog and rclone without waiting for uploads, and unmount; the cache stays as it is.

    Every step is bounded: the watchdog and rclone are killed, not asked; ``drive/`` is
    unmounted lazily once rclone is gone, so nothing blocks on a mount that no longer answers.
    """
    paths = DrivePaths(ws)
    if raw is not None and raw.watchdog_pid and pid_alive(raw.watchdog_pid):
        stop(raw.watchdog_pid, grace=0)  # killed first: it would start rclone again
    if raw is not None and raw.rclone_pid and rclone_alive(ws, raw.rclone_pid):
        stop(raw.rclone_pid, grace=1.0)
    if mount_table_has(ws.drive):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            unmount(ws.drive, lazy=True)
    if raw is not None:
        with contextlib.suppress(OSError):
            write_private_json(paths.state, replace(raw, phase="detached", rclone_pid=None, rc=None).to_dict())


def detach(
    ws: Workspace, *, timeout: float | None = None, force: bool = False, when_used: str = "keep", on_behalf_of: Collection[int] = (),
) -> DetachResult:
    """Flush, then unmount (or stop syncing) and stop the watchdog.

    First this process stops using the drive (see ``attach(..., user=...)``).
    While other commands still use it, ``when_used="keep"`` flushes and
    leaves it attached for them (``detached`` False, ``users`` names them);
    ``"refuse"`` raises :class:`DriveInUseError` naming them; ``force``
    detaches it under them. ``on_behalf_of``: the process ids of commands this
    call acts for (the lab's server detaching for the ``drivelab lab`` that
    started it): their uses do not count as another's, and stay registered.

    ``timeout`` bounds the whole call. When uploads have not all landed by
    then, when the drive does not answer (rclone hung, the watchdog gone, the
    remote unreachable), or at once with ``force``, the drive is unmounted
    anyway: ``forced`` is True and ``pending`` counts what did not land. It
    is kept in this machine's VFS cache (``cache``, on its own disk) and uploads at the next mount.

    Only this host's drive is detached: another machine sharing the workspace keeps its own mount.
    Without a timeout the flush waits while uploads make progress.

    The workspace keeps the remote as its drive: the next :func:`attach`
    brings it back.
    """
    if when_used not in ("keep", "refuse"):
        raise DriveError(f"unknown choice for a drive in use {when_used!r}", hint="use keep or refuse")
    release(ws)
    settings = load_settings(ws)
    if settings.remote is None:
        return DetachResult(mode="local", was_attached=False)
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    paths = DrivePaths(ws)
    cache = str(paths.cache)
    raw = read_watchdog_state(paths)
    state = watchdog_state(ws)
    mode = (state or raw).mode if (state or raw) is not None else settings.mode
    rclone_left = state is None and raw is not None and rclone_alive(ws, raw.rclone_pid)
    if state is None and not rclone_left:
        # Nothing keeps the drive: only a mount left behind to clean up.
        if mount_table_has(ws.drive) or mount_broken(ws.drive):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                unmount(ws.drive, lazy=True)
        elif ws.drive.is_dir():
            _guard.release(ws.drive)  # the plain folder takes writes again
        pending = pending_in_cache(paths) if mode == "mount" else 0
        return DetachResult(mode=mode, pending=pending, cache=cache if pending else None, seconds=time.monotonic() - start, was_attached=False)

    others = [u for u in users(ws) if u.get("pid") not in on_behalf_of]
    if others and not force:
        if when_used == "refuse":
            raise DriveInUseError(
                f"the drive is in use by {describe_users(others)}",
                users=others,
                hint="stop them first (Ctrl+C the lab, `drivelab jobs stop RUN`), or pass --force to unmount it under them: their writes to drive/ then fail",
            )
        if state is not None and state.mode == "mount":
            # What was written until now; the others keep writing, and flush their own files when they end.
            flushed = flush_mount(ws, state, timeout, None, queued_now=True)
        else:
            flushed = flush(ws, timeout=timeout)
        return DetachResult(**flush_fields(flushed), detached=False, users=others)

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    flushed = FlushResult(mode=mode)
    reason: str | None = "--force" if force else None
    if not force:
        # Keep a few seconds of the budget for stopping everything if the flush does not finish.
        budget = left()
        if budget is not None:
            budget = max(0.5, budget - min(5.0, budget * 0.25))
        try:
            if state is not None and state.mode == "sync":
                flushed = sync_now(ws, timeout=budget)
            else:
                flushed = flush_mount(ws, state or raw or WatchdogState(), budget, None)
        except DriveError as exc:
            reason = exc.message
    if reason is None and state is not None:
        # Everything landed: the watchdog stops in order (it flushes once more, unmounts, stops rclone).
        pid = int(state.watchdog_pid or 0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait = left()
        if not wait_gone(lambda: pid_alive(pid), 120.0 if wait is None else wait):
            reason = "the watchdog did not stop in time"  # _stop_now below kills it
    if reason is not None or rclone_left:
        _stop_now(ws, read_watchdog_state(paths) or raw)
    elif mount_table_has(ws.drive):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if not unmount(ws.drive):
                unmount(ws.drive, lazy=True)
    pending = pending_in_cache(paths) if mode == "mount" else 0
    result = DetachResult(
        **flush_fields(flushed), forced=reason is not None, pending=pending, cache=cache if pending else None, reason=reason,
    )
    result.seconds = time.monotonic() - start
    if reason is not None:
        append_event(paths, "unmounted", forced=True, pending=pending, reason=reason)
        return result
    final = read_watchdog_state(paths)
    if final is not None and final.error and final.phase == "failed":
        raise DriveError(f"the drive stopped with an error: {final.error}", hint=final.hint)
    return result


def flush_fields(result: FlushResult) -> dict[str, Any]:
    return {
        "files": result.files, "bytes": result.bytes, "seconds": result.seconds, "mode": result.mode,
        "names": list(result.names), "conflicts": list(result.conflicts),
    }

"""Attaching the workspace's drive.

The local default drive is the plain folder ``drive/``: attaching it only makes
sure its folders exist. A remote drive is kept by a watchdog process
(:mod:`drivelab.drive._watchdog`) that runs ``rclone mount`` (or, without FUSE,
keeps ``drive/`` in sync with ``rclone bisync``), remounts it when it dies and
records what it did. This module decides what happens to the local drive's
files, starts that process and returns once the drive is live. Flushing is in
:mod:`~drivelab.drive._flush`, detaching in :mod:`~drivelab.drive._detach`,
the recorded state in :mod:`~drivelab.drive._status`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from drivelab._background import ProcessExited, ReadyTimeout, spawn, stop, wait_ready
from drivelab.drive import _guard
from drivelab.drive._config import (
    CACHE_MODES, MODES, DrivePaths, WatchdogState, claim_legacy_cache, load_settings, prepare_cache, read_watchdog_state, save_settings,
)  # fmt: skip
from drivelab.drive._host import clear_dead_mount, fuse_available, mount_table_has, rclone_alive
from drivelab.drive._local import LOCAL_FILE_CHOICES, ensure_folders, handle_local_files
from drivelab.drive._remotes import get_remote
from drivelab.drive._status import DriveState, status, watchdog_state
from drivelab.drive._users import hold
from drivelab.errors import DriveOptionError, MountError
from drivelab.workspace import Workspace

ORPHAN_GRACE = 5.0
"""Seconds an rclone left without its watchdog gets to stop on SIGTERM before it is killed."""

__all__ = ["attach"]


def attach(
    ws: Workspace,
    remote: str | None = None,
    *,
    mode: str | None = None,
    local_files: str | None = None,
    read_only: bool | None = None,
    read_only_once: bool = False,
    cache_mode: str | None = None,
    cache_max_size: str | None = None,
    dir_cache_time: str | None = None,
    cache_dir: str | None = None,
    timeout: float = 60.0,
    on_notice: Callable[[str], None] | None = None,
    user: str | None = None,
) -> DriveState:
    """Attach the workspace's drive at ``drive/`` and return once it is live.

    With ``remote``, that remote becomes the workspace's drive (it must have
    been connected first). Without one, the configured drive is attached: the
    local default needs nothing. Calling it again while attached returns the
    current state.

    ``mode`` is ``mount`` (FUSE, the default) or ``sync``; ``mount`` falls back
    to ``sync`` with a notice when FUSE is not available. When ``drive/``
    already holds files (the local drive, before its first remote), they are
    never hidden or deleted silently: ``local_files`` says what to do with them
    -- ``copy`` them to the remote and keep the local copies in
    ``.drivelab/local-drive/``, ``set-aside`` there without copying, or
    ``mount-over`` them (hidden until unmount); without a choice,
    :class:`MountError` explains the options.

    ``read_only`` is saved with the workspace's drive (every later attach
    is read-only too); ``read_only_once`` makes this mount read-only and
    leaves the workspace's setting as it is. A drive attached already is
    returned as it is (its state's ``read_only`` says which it is).

    ``cache_dir`` (saved with the workspace's drive) is the folder on each
    machine's own disk that holds its VFS caches, instead of
    ``/var/tmp/drivelab-<uid>``; ``$DRIVELAB_DRIVE_CACHE_DIR`` overrides both.
    A drive is attached per machine: another host attaching the same
    workspace has its own watchdog, rclone, cache and state.

    ``user`` (e.g. ``"lab"``, ``"job exp1"``) registers this process as a
    command using a remote drive, until :func:`release` or :func:`detach`, or
    until it exits however it ends: while another command uses it,
    :func:`detach` leaves the drive attached.
    """
    notices: list[str] = []

    def notice(text: str) -> None:
        notices.append(text)
        if on_notice:
            on_notice(text)

    if mode is not None and mode not in MODES:
        raise DriveOptionError(f"unknown drive mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    if cache_mode is not None and cache_mode not in CACHE_MODES:
        raise DriveOptionError(f"unknown cache mode {cache_mode!r}", hint=f"use one of: {', '.join(CACHE_MODES)}")
    if local_files is not None and local_files not in LOCAL_FILE_CHOICES:
        raise DriveOptionError(f"unknown choice for local files {local_files!r}", hint=f"use one of: {', '.join(LOCAL_FILE_CHOICES)}")
    paths = DrivePaths(ws)
    # One attach at a time: two at once would each find no watchdog, and the second would take down the
    # first one's live mount to start its own.
    with attach_lock(paths, wait=timeout + 30.0):
        settings = load_settings(ws)
        if remote is not None:
            get_remote(ws, remote)  # a clear error for an unknown name
        current = watchdog_state(ws)
        if current is not None and current.phase in ("live", "down", "starting"):
            if remote is None or remote == settings.remote:
                if user:
                    hold(ws, user)
                state = status(ws)
                state.notices = [*state.notices, f"the drive {settings.remote} is already attached ({state.mode})"]
                return state
            raise MountError(
                f"the drive is attached to {settings.remote!r}, not {remote!r}",
                hint="run `drivelab drive unmount` first",
            )
        if remote is not None:
            settings.remote = remote
        if settings.remote is None:
            if read_only or read_only_once:
                raise MountError("the local drive cannot be attached read-only", hint="connect a remote with `drivelab drive connect` first")
            ensure_folders(ws.drive)
            return DriveState(mode="local", live=True, path=ws.drive, phase="local")
        entry = get_remote(ws, settings.remote)
        if mode is not None:
            settings.mode = mode
        if cache_mode is not None:
            settings.cache_mode = cache_mode
        if cache_max_size is not None:
            settings.cache_max_size = cache_max_size
        if dir_cache_time is not None:
            settings.dir_cache_time = dir_cache_time
        if cache_dir is not None:
            settings.cache_dir = cache_dir or None  # "" gives back the default
        if read_only is not None:
            settings.read_only = read_only
        use_mode = settings.mode
        if use_mode == "mount":
            ok, why = fuse_available()
            if not ok:
                notice(f"FUSE is not available ({why}): keeping drive/ in sync with {entry.spec} instead of mounting it")
                use_mode = "sync"

        # A mount left behind by a killed watchdog answers "Transport endpoint is not connected"; a folder
        # left immutable by a watchdog that died with the machine must take the local files' moves again.
        raw = read_watchdog_state(paths)
        if raw is not None and rclone_alive(ws, raw.rclone_pid):
            # Its watchdog died and left it serving (perhaps stopped, or hung): replaced, never looked into.
            # What it had not uploaded stays in the cache, and the new rclone uploads it.
            stop(raw.rclone_pid, grace=ORPHAN_GRACE)
            notice(f"replaced rclone (pid {raw.rclone_pid}), left serving drive/ by a watchdog that is gone")
        clear_dead_mount(ws.drive)
        if ws.drive.is_dir() and not mount_table_has(ws.drive):
            _guard.release(ws.drive)
        ws.drive.mkdir(parents=True, exist_ok=True)
        allow_non_empty = handle_local_files(ws, entry.spec, use_mode, local_files, notice)
        if use_mode == "mount":
            prepare_cache(paths)
            moved, left = claim_legacy_cache(paths)
            if moved:
                notice(f"moved {moved} pending upload{'' if moved == 1 else 's'} from the old cache {paths.legacy_cache} to {paths.cache}")
            if left is not None:
                notice(f"some pending uploads of the old cache could not be moved: they are kept in {left}")
        save_settings(ws, settings)
        _start_watchdog(ws, paths, use_mode, allow_non_empty, notices, timeout, read_only_once=read_only_once)
        if not (settings.read_only or read_only_once):
            with contextlib.suppress(OSError):
                ensure_folders(ws.drive)
        if user:
            hold(ws, user)
        state = status(ws)
        state.notices = notices
        return state


@contextlib.contextmanager
def attach_lock(paths: DrivePaths, *, wait: float) -> Iterator[None]:
    """Hold this host's attach lock (``.drivelab/drive/hosts/<host>/attach.lock``); :class:`MountError` after ``wait`` seconds.

    Per host: a machine attaching the drive never waits for another (each has its own mount, watchdog and cache).
    """
    paths.host_folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.attach_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MountError(
                        f"another command has been attaching this drive for {wait:.0f} s",
                        hint="see `drivelab drive status`; try again once it is done",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _start_watchdog(
    ws: Workspace, paths: DrivePaths, mode: str, allow_non_empty: bool, notices: list[str], timeout: float, *, read_only_once: bool = False
) -> None:
    paths.host_folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        paths.state.unlink()  # this host's own: another host's state is in its own folder
    if not os.path.ismount(ws.drive):
        _guard.release(ws.drive)  # left by a watchdog that was killed; a mount's watchdog sets it again
    request = {"mode": mode, "allow_non_empty": allow_non_empty, "notices": notices, "read_only": read_only_once}
    # Its own session: it survives the terminal, and Ctrl+C in it.
    proc = spawn([sys.executable, "-m", "drivelab.drive._watchdog", str(ws.root), json.dumps(request)], log=paths.watchdog_log)

    def live() -> bool | None:
        state = read_watchdog_state(paths)
        if state is None or state.watchdog_pid != proc.pid:
            return None
        if state.phase == "failed":
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            raise MountError(state.error or "the drive could not be attached", hint=state.hint or f"see {paths.rclone_log}")
        return True if state.phase == "live" else None

    try:
        # The first sync copies the whole remote: it takes as long as it takes while the watchdog lives.
        wait_ready(proc, live, timeout=timeout if mode == "mount" else None)
    except ProcessExited as exc:
        state = read_watchdog_state(paths) or WatchdogState()
        raise MountError(state.error or f"the drive's watchdog exited with code {exc.code}", hint=state.hint or f"see {paths.watchdog_log}") from None
    except ReadyTimeout:
        stop(proc.pid, grace=30)
        raise MountError(f"the drive did not become live within {timeout:.0f} s", hint=f"see {paths.rclone_log}; pass a longer --timeout for slow remotes") from None

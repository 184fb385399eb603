"""Attach, flush, detach and inspect the workspace's drive.

The local default drive is the plain folder ``drive/``: attaching it only makes
sure its folders exist, and flushing it has nothing to wait for. A remote drive
is kept by a watchdog process (:mod:`drivelab.drive._watchdog`) that runs
``rclone mount`` (or, without FUSE, keeps ``drive/`` in sync with
``rclone bisync``), remounts it when it dies and records what it did. This
module starts and stops that process and asks rclone, through its rc API,
what is still waiting to be uploaded.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivelab._units import format_bytes
from drivelab.drive._config import CACHE_MODES, MODES, DrivePaths, load_settings, read_json, save_settings, write_private_json
from drivelab.drive._rc import RcClient, RcUnavailable
from drivelab.drive._remotes import get_remote
from drivelab.errors import DriveError, FlushError, MountError, RcloneError
from drivelab.workspace import Workspace

__all__ = [
    "DriveState",
    "FlushResult",
    "DetachResult",
    "attach",
    "detach",
    "flush",
    "release",
    "users",
    "status",
    "is_attached",
    "fuse_available",
    "NO_FUSE_ENV",
    "restore_local_drive",
]

NO_FUSE_ENV = "DRIVELAB_NO_FUSE"
DRIVE_FOLDERS = ("colab", "dataset", "runs")
LOCAL_FILE_CHOICES = ("copy", "set-aside", "mount-over")


@dataclass
class FlushResult:
    """What a flush waited for: files and bytes that were pending when it began or queued while it ran."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    mode: str = "local"
    names: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Sync mode: files kept side by side because both sides changed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mode": self.mode,
            "names": self.names,
            "conflicts": self.conflicts,
        }


@dataclass
class DetachResult(FlushResult):
    """What :func:`detach` did: the flush it waited for, and whether the drive is now detached."""

    detached: bool = True
    """False when other commands still use the drive: it was flushed and left attached for them."""
    forced: bool = False
    """Unmounted without every upload landing (``force``, the timeout, or a drive that did not answer)."""
    pending: int = 0
    """Uploads not yet on the remote when it returned; they are kept in ``cache`` and upload at the next mount."""
    cache: str | None = None
    users: list[dict[str, Any]] = field(default_factory=list)
    """The commands still using the drive (``pid``, ``what``, ``since``)."""
    reason: str | None = None
    """Why the unmount was forced."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "detached": self.detached,
            "forced": self.forced,
            "pending": self.pending,
            "cache": self.cache,
            "users": self.users,
            "reason": self.reason,
        }


@dataclass
class DriveState:
    """The drive as it is now."""

    mode: str
    """``local``, ``mount`` or ``sync``."""
    live: bool
    path: Path
    remote: str | None = None
    spec: str | None = None
    """``remote:root``, what rclone attaches."""
    phase: str = "local"
    """``local``, ``starting``, ``live``, ``down`` (the watchdog is bringing it back), ``failed`` or ``detached``."""
    pending_uploads: int = 0
    uploading: int = 0
    cache_bytes: int = 0
    cache_files: int = 0
    errored_files: int = 0
    watchdog_pid: int | None = None
    rclone_pid: int | None = None
    remounts: int = 0
    last_event: dict[str, Any] | None = None
    last_sync: str | None = None
    conflicts: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    users: list[dict[str, Any]] = field(default_factory=list)
    """Commands using the drive now (``drivelab lab``, jobs): ``pid``, ``what``, ``since``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "live": self.live,
            "path": str(self.path),
            "remote": self.remote,
            "spec": self.spec,
            "phase": self.phase,
            "pending_uploads": self.pending_uploads,
            "uploading": self.uploading,
            "cache_bytes": self.cache_bytes,
            "cache_files": self.cache_files,
            "errored_files": self.errored_files,
            "watchdog_pid": self.watchdog_pid,
            "rclone_pid": self.rclone_pid,
            "remounts": self.remounts,
            "last_event": self.last_event,
            "last_sync": self.last_sync,
            "conflicts": self.conflicts,
            "notices": self.notices,
            "error": self.error,
            "users": self.users,
        }


# --- facts about this machine and the watchdog -------------------------------------------


def fuse_available() -> tuple[bool, str]:
    """``(True, "")`` when FUSE mounts can work here, else ``(False, why)``."""
    if os.environ.get(NO_FUSE_ENV, "").strip() not in ("", "0"):
        return False, f"${NO_FUSE_ENV} is set"
    if sys.platform == "darwin":
        if Path("/Library/Filesystems/macfuse.fs").exists() or Path("/Library/Filesystems/fuse-t.fs").exists():
            return True, ""
        return False, "macFUSE is not installed"
    if not sys.platform.startswith("linux"):
        return False, f"FUSE mounts are not supported by drivelab on {sys.platform}"
    if not Path("/dev/fuse").exists():
        return False, "/dev/fuse does not exist (a container without FUSE?)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "/dev/fuse is not readable and writable by this user"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return False, "fusermount3 is not installed (Debian/Ubuntu: apt-get install fuse3)"
    return True, ""


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this very process is not alive.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _watchdog_state(ws: Workspace) -> dict[str, Any] | None:
    state = read_json(DrivePaths(ws).state)
    if state and _pid_alive(state.get("watchdog_pid")):
        return state
    return None


def is_attached(ws: Workspace) -> bool:
    """True while a watchdog keeps a remote drive attached (live, or being brought back)."""
    state = _watchdog_state(ws)
    return bool(state) and state.get("phase") in ("live", "down", "starting")


def _last_event(paths: DrivePaths) -> dict[str, Any] | None:
    try:
        with open(paths.events, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            return json.loads(line)
    return None


def _mount_broken(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno in (errno.ENOTCONN, errno.EIO)
    return False


def _fusermount_unmount(path: Path, *, lazy: bool = False, keep_guard: bool = False) -> bool:
    """Unmount ``path``; once it is the plain folder again it takes writes, unless ``keep_guard`` (a remount follows)."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool:
        argv = [tool, "-u", *(["-z"] if lazy else []), str(path)]
    elif sys.platform == "darwin":
        argv = ["umount", *(["-f"] if lazy else []), str(path)]
    else:
        return False
    done = subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    from drivelab.drive import _guard

    if done and not keep_guard and not os.path.ismount(path):
        _guard.release(path)
    return done


# --- status -----------------------------------------------------------------------------------


def status(ws: Workspace) -> DriveState:
    """The drive's mode, whether it is live, pending uploads, cache size and the last watchdog event."""
    settings = load_settings(ws)
    paths = DrivePaths(ws)
    if settings.remote is None:
        return DriveState(mode="local", live=ws.drive.is_dir(), path=ws.drive, phase="local")
    entry = settings.remotes.get(settings.remote)
    spec = entry.spec if entry else None
    state = _watchdog_state(ws)
    last = _last_event(paths)
    if state is None:
        # Nothing keeps the drive (a killed watchdog, a reboot): a dead mount left behind, or the protected
        # folder beneath it, would refuse every write to drive/ from now on.
        from drivelab.drive import _guard

        if _mount_broken(ws.drive):
            _fusermount_unmount(ws.drive, lazy=True)
        elif not os.path.ismount(ws.drive):
            _guard.release(ws.drive)
        return DriveState(
            mode=settings.mode, live=False, path=ws.drive, remote=settings.remote, spec=spec,
            phase="detached", last_event=last, error=_stale_error(paths),
        )
    result = DriveState(
        mode=state.get("mode", settings.mode),
        live=state.get("phase") == "live",
        path=ws.drive,
        remote=settings.remote,
        spec=spec,
        phase=state.get("phase", "starting"),
        watchdog_pid=state.get("watchdog_pid"),
        rclone_pid=state.get("rclone_pid"),
        remounts=int(state.get("remounts", 0)),
        last_event=last,
        last_sync=state.get("last_sync"),
        conflicts=list(state.get("conflicts", [])),
        notices=list(state.get("notices", [])),
        error=state.get("error"),
        users=users(ws),
    )
    client = RcClient.from_state(state)
    if result.mode == "mount" and client is not None and result.live:
        with contextlib.suppress(RcloneError):
            stats = client.call("vfs/stats", timeout=5.0).get("diskCache", {})
            result.pending_uploads = int(stats.get("uploadsQueued", 0)) + int(stats.get("uploadsInProgress", 0))
            result.uploading = int(stats.get("uploadsInProgress", 0))
            result.cache_bytes = int(stats.get("bytesUsed", 0))
            result.cache_files = int(stats.get("files", 0))
            result.errored_files = int(stats.get("erroredFiles", 0))
    elif result.mode == "sync":
        result.cache_bytes = _tree_size(ws.drive)[1]
    return result


def _stale_error(paths: DrivePaths) -> str | None:
    state = read_json(paths.state)
    if state and state.get("phase") == "failed":
        return state.get("error")
    return None


def _tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
    return files, size


# --- attach -----------------------------------------------------------------------------------


def _ensure_folders(drive: Path) -> None:
    for name in DRIVE_FOLDERS:
        (drive / name).mkdir(parents=True, exist_ok=True)


def attach(
    ws: Workspace,
    remote: str | None = None,
    *,
    mode: str | None = None,
    local_files: str | None = None,
    read_only: bool | None = None,
    cache_mode: str | None = None,
    cache_max_size: str | None = None,
    dir_cache_time: str | None = None,
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
        raise MountError(f"unknown drive mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    if cache_mode is not None and cache_mode not in CACHE_MODES:
        raise MountError(f"unknown cache mode {cache_mode!r}", hint=f"use one of: {', '.join(CACHE_MODES)}")
    if local_files is not None and local_files not in LOCAL_FILE_CHOICES:
        raise MountError(f"unknown choice for local files {local_files!r}", hint=f"use one of: {', '.join(LOCAL_FILE_CHOICES)}")
    settings = load_settings(ws)
    paths = DrivePaths(ws)
    if remote is not None:
        get_remote(ws, remote)  # a clear error for an unknown name
    current = _watchdog_state(ws)
    if current is not None and current.get("phase") in ("live", "down", "starting"):
        if remote is None or remote == settings.remote:
            if user:
                _hold(ws, user)
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
        if read_only:
            raise MountError("the local drive cannot be attached read-only", hint="connect a remote with `drivelab drive connect` first")
        _ensure_folders(ws.drive)
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
    if read_only is not None:
        settings.read_only = read_only
    use_mode = settings.mode
    if use_mode == "mount":
        ok, why = fuse_available()
        if not ok:
            notice(f"FUSE is not available ({why}): keeping drive/ in sync with {entry.spec} instead of mounting it")
            use_mode = "sync"

    # A mount left behind by a killed watchdog answers "Transport endpoint is not connected".
    if _mount_broken(ws.drive) or os.path.ismount(ws.drive):
        _fusermount_unmount(ws.drive, lazy=True)
    elif ws.drive.is_dir():
        from drivelab.drive import _guard

        _guard.release(ws.drive)  # left immutable by a watchdog that died with the machine
    ws.drive.mkdir(parents=True, exist_ok=True)
    allow_non_empty = _handle_local_files(ws, entry.spec, use_mode, local_files, notice)
    save_settings(ws, settings)
    _start_watchdog(ws, paths, use_mode, allow_non_empty, notices, timeout)
    if not settings.read_only:
        with contextlib.suppress(OSError):
            _ensure_folders(ws.drive)
    if user:
        _hold(ws, user)
    state = status(ws)
    state.notices = notices
    return state


def _local_files(drive: Path) -> tuple[int, int, list[str]]:
    """Files in ``drive/`` (folders that are empty do not count)."""
    files, size = _tree_size(drive)
    entries = sorted(p.name for p in drive.iterdir()) if drive.is_dir() else []
    return files, size, entries


def _handle_local_files(ws: Workspace, spec: str, mode: str, choice: str | None, notice: Callable[[str], None]) -> bool:
    files, size, entries = _local_files(ws.drive)
    if not entries:
        return False
    if files == 0:
        # Only empty folders (a fresh workspace's colab/ dataset/ runs/): nothing to lose.
        for name in entries:
            with contextlib.suppress(OSError):
                _remove_empty_tree(ws.drive / name)
        if not any(ws.drive.iterdir()):
            return False
    if choice is None:
        raise MountError(
            f"drive/ is not empty: it holds {files} files ({format_bytes(size)}) of the local drive",
            hint=f"pass --copy-local to copy them to {spec} first (the local copies are kept in .drivelab/local-drive/), "
            "--set-aside to keep them there without copying, or --allow-non-empty to mount over them (hidden until unmount)",
        )
    if choice == "mount-over":
        if mode != "mount":
            raise MountError("files cannot be mounted over in sync mode", hint="use --copy-local or --set-aside")
        notice(f"{files} local files in drive/ are hidden under the mount until it is unmounted")
        return True
    if choice == "copy":
        copied, differ = _copy_to_remote(ws, spec)
        notice(f"copied {copied} local files to {spec}")
        if differ:
            shown = ", ".join(differ[:10]) + (" ..." if len(differ) > 10 else "")
            notice(f"{len(differ)} files already on {spec} differ from the local ones and were left as they are on the remote: {shown}")
    aside = _set_aside(ws)
    notice(f"the local drive's {files} files are kept in {aside}")
    return False


def _remove_empty_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            _remove_empty_tree(child)
        path.rmdir()


def _copy_to_remote(ws: Workspace, spec: str) -> tuple[int, list[str]]:
    from drivelab.drive._rclone import find_rclone

    rclone = find_rclone()
    conf = DrivePaths(ws).rclone_conf
    # --ignore-existing: a file already on the remote is never overwritten.
    done = rclone.run(
        ["copy", str(ws.drive), spec, "--ignore-existing", "--use-json-log", "-v", "--stats-log-level", "NOTICE"],
        config=conf,
        timeout=24 * 3600,
    )
    if done.returncode != 0:
        from drivelab.drive._rclone import classify_failure

        raise classify_failure(done.stderr, what=f"copying the local drive to {spec}")
    copied = _stat_from_json_log(done.stderr).get("transfers", 0)
    check = rclone.run(["check", str(ws.drive), spec, "--one-way", "--differ", "-", "--quiet"], config=conf, timeout=24 * 3600)
    differ = [line.strip() for line in check.stdout.splitlines() if line.strip()]
    return int(copied), differ


def _stat_from_json_log(text: str) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for line in text.splitlines():
        if '"stats"' in line:
            with contextlib.suppress(ValueError):
                stats = json.loads(line).get("stats", stats)
    return stats


def _set_aside(ws: Workspace) -> Path:
    base = DrivePaths(ws).local_drive
    target = base / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while target.exists():
        n += 1
        target = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    target.mkdir(parents=True)
    for child in list(ws.drive.iterdir()):
        os.replace(child, target / child.name)
    return target


def restore_local_drive(ws: Workspace) -> Path | None:
    """Put the most recently set-aside local drive back into an empty ``drive/``."""
    from drivelab.drive import _guard

    if not os.path.ismount(ws.drive):
        _guard.release(ws.drive)  # the local drive takes writes, whatever a remote left behind
    base = DrivePaths(ws).local_drive
    if not base.is_dir() or (ws.drive.is_dir() and any(ws.drive.iterdir())):
        return None
    kept = sorted(p for p in base.iterdir() if p.is_dir())
    if not kept:
        return None
    latest = kept[-1]
    ws.drive.mkdir(parents=True, exist_ok=True)
    for child in list(latest.iterdir()):
        os.replace(child, ws.drive / child.name)
    latest.rmdir()
    with contextlib.suppress(OSError):
        base.rmdir()
    return ws.drive


def _start_watchdog(ws: Workspace, paths: DrivePaths, mode: str, allow_non_empty: bool, notices: list[str], timeout: float) -> None:
    paths.folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        paths.state.unlink()
    from drivelab.drive import _guard

    if not os.path.ismount(ws.drive):
        _guard.release(ws.drive)  # left by a watchdog that was killed; a mount's watchdog sets it again
    request = {"mode": mode, "allow_non_empty": allow_non_empty, "notices": notices}
    log = open(paths.watchdog_log, "ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "drivelab.drive._watchdog", str(ws.root), json.dumps(request)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # survives the terminal, and Ctrl+C in it
            close_fds=True,
        )
    finally:
        log.close()
    # The first sync copies the whole remote: it takes as long as it takes while the watchdog lives.
    deadline = time.monotonic() + (timeout if mode == "mount" else float("inf"))
    while True:
        state = read_json(paths.state)
        if state and state.get("watchdog_pid") == proc.pid:
            if state.get("phase") == "live":
                return
            if state.get("phase") == "failed":
                proc.wait(timeout=30)
                raise MountError(state.get("error") or "the drive could not be attached", hint=state.get("hint") or "see .drivelab/drive/rclone.log")
        code = proc.poll()
        if code is not None:
            state = read_json(paths.state) or {}
            raise MountError(
                state.get("error") or f"the drive's watchdog exited with code {code}",
                hint=state.get("hint") or f"see {paths.watchdog_log}",
            )
        if time.monotonic() > deadline:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            raise MountError(f"the drive did not become live within {timeout:.0f} s", hint=f"see {paths.rclone_log}; pass a longer --timeout for slow remotes")
        time.sleep(0.05)


# --- flush and detach ----------------------------------------------------------------------


def flush(ws: Workspace, *, timeout: float | None = None, on_progress: Callable[[int, int], None] | None = None) -> FlushResult:
    """Return once every pending upload has landed on the remote.

    In mount mode rclone's VFS is asked to upload queued files now, then
    polled until nothing is in progress and nothing is queued. In sync mode
    the changes are pushed (and pulled) with bisync. ``on_progress(pending,
    landed)`` is called while waiting. Raises :class:`FlushError` if uploads
    are still pending after ``timeout`` seconds (None: wait as long as it takes
    while they make progress); nothing is discarded.
    """
    settings = load_settings(ws)
    if settings.remote is None:
        return FlushResult(mode="local")
    state = _watchdog_state(ws)
    if state is None:
        return FlushResult(mode=settings.mode)
    if state.get("mode") == "sync":
        from drivelab.drive._sync import sync_now

        return sync_now(ws, timeout=timeout)
    return _flush_mount(ws, state, timeout, on_progress)


def _flush_mount(
    ws: Workspace, state: dict[str, Any], timeout: float | None, on_progress: Callable[[int, int], None] | None, *, queued_now: bool = False,
) -> FlushResult:
    """Wait until nothing is queued or uploading; with ``queued_now``, only until what is queued now has landed
    (another command may keep writing: its own flush waits for its files)."""
    start = time.monotonic()
    targets: set[str] | None = None
    client = RcClient.from_state(state)
    if client is None:
        raise FlushError("the drive's watchdog has no rc address yet", hint="wait for `drivelab drive status` to say live, then flush again")
    paths = DrivePaths(ws)

    def call_timeout(longest: float) -> float:
        # No single rc call may outlast the flush's own deadline (a hung rclone accepts and never answers).
        if timeout is None:
            return longest
        return max(0.5, min(longest, timeout - (time.monotonic() - start)))

    seen: dict[str, int] = {}
    stalled_since = time.monotonic()
    last_pending = -1
    while True:
        try:
            queue = client.call("vfs/queue", timeout=call_timeout(10.0)).get("queue") or []
            stats = client.call("vfs/stats", timeout=call_timeout(10.0)).get("diskCache", {})
        except RcloneError as exc:
            fresh = _watchdog_state(ws)
            if fresh is None and not _rclone_alive(ws, state.get("rclone_pid")):
                raise FlushError("the drive was detached while flushing", hint=f"files not yet uploaded stay in {_CACHE_SHOWN} and upload at the next mount") from exc
            client = RcClient.from_state(fresh or state) or client
            if timeout is None and time.monotonic() - stalled_since > 600:
                raise FlushError("the drive has been down for 10 minutes while flushing", hint="see `drivelab drive status` and .drivelab/drive/rclone.log; nothing pending was discarded") from exc
            if timeout is not None and time.monotonic() - start > timeout:
                pending = _pending_in_cache(paths)
                raise FlushError(
                    f"the drive did not answer for {timeout:.0f} s while flushing ({exc.message}); {_uploads(pending)} pending",
                    hint=f"nothing was discarded: they are kept in {_CACHE_SHOWN}; see `drivelab drive status`",
                ) from exc
            time.sleep(0.2)
            continue
        waiting = []
        for item in queue:
            name = str(item.get("name", ""))
            seen[name] = max(int(item.get("size", 0) or 0), seen.get(name, 0))
            if not item.get("uploading") and float(item.get("expiry", 0) or 0) > 0:
                waiting.append(item.get("id"))
        if waiting:
            _upload_now(client, waiting, call_timeout(30.0))
        pending = int(stats.get("uploadsQueued", 0)) + int(stats.get("uploadsInProgress", 0))
        if queued_now:
            names_now = {str(item.get("name", "")) for item in queue}
            if targets is None:
                targets = names_now
            pending = len(targets & names_now)
        if on_progress:
            on_progress(pending, max(0, len(seen) - pending))
        if pending == 0 and (queued_now or not queue):
            break
        if pending != last_pending:
            last_pending = pending
            stalled_since = time.monotonic()
        now = time.monotonic()
        if timeout is not None and now - start > timeout:
            names = ", ".join(str(i.get("name")) for i in queue[:10]) + (" ..." if len(queue) > 10 else "")
            raise FlushError(
                f"{_uploads(pending)} still pending after {timeout:.0f} s: {names}",
                hint=f"nothing was discarded: they stay in {_CACHE_SHOWN} and keep uploading; run `drivelab drive flush` again, or see .drivelab/drive/rclone.log",
            )
        if timeout is None and now - stalled_since > 600:
            raise FlushError(
                f"{_uploads(pending)} made no progress for 10 minutes",
                hint=f"check the remote (see .drivelab/drive/rclone.log); nothing was discarded: they stay in {_CACHE_SHOWN} and retry",
            )
        time.sleep(min(0.25, 0.02 + 0.01 * len(queue)))
    return FlushResult(
        files=len(seen), bytes=sum(seen.values()), seconds=time.monotonic() - start, mode="mount", names=sorted(seen),
    )


def _upload_now(client: RcClient, ids: list[Any], timeout: float = 30.0) -> None:
    """Make queued files eligible for upload now instead of after the write-back delay."""
    # A large negative expiry means "as soon as possible"; one batch call for all of them.
    batch = [{"_path": "vfs/queue-set-expiry", "id": i, "expiry": -1e9} for i in ids]
    try:
        client.call("job/batch", {"inputs": batch}, timeout=timeout)
        return
    except RcUnavailable:
        return  # no answer: the flush's loop notices and retries
    except RcloneError:
        pass  # an rclone without job/batch: one call each
    for i in ids:
        with contextlib.suppress(RcloneError):  # an item that began uploading has left the queue
            client.call("vfs/queue-set-expiry", {"id": i, "expiry": -1e9}, timeout=min(timeout, 10.0))


def _uploads(n: int) -> str:
    return f"{n} upload{'' if n == 1 else 's'}"


# --- who uses the drive ------------------------------------------------------------------------
#
# A command that attaches the drive for its own work (the lab, a job, the demo) holds an exclusive
# flock on a file of its own in .drivelab/drive/users/ for as long as it runs. The kernel drops the
# lock when the process ends, however it ends (SIGKILL included), so a file nobody holds is a user
# that is gone, never one that is counted.

_CACHE_SHOWN = ".drivelab/drive/cache"
_held: dict[tuple[str, int], tuple[int, Path]] = {}
"""(workspace root, pid) -> (locked fd, lease file) of the leases this process holds."""


def _users_folder(ws: Workspace) -> Path:
    return DrivePaths(ws).folder / "users"


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _hold(ws: Workspace, what: str) -> None:
    key = (str(ws.root), os.getpid())
    if key in _held:
        return
    folder = _users_folder(ws)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{secrets.token_hex(4)}"
    # Locked under a name readers skip, then renamed into place: a reader never finds it unlocked.
    tmp = folder / f".{name}.new"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "what": what, "since": _now_iso()}).encode())
        lease = folder / f"{name}.lock"
        os.replace(tmp, lease)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _held[key] = (fd, lease)


def release(ws: Workspace) -> None:
    """This process no longer uses the drive (what ``attach(..., user=...)`` registered); the drive stays as it is."""
    held = _held.pop((str(ws.root), os.getpid()), None)
    if held is None:
        return
    fd, lease = held
    with contextlib.suppress(OSError):
        lease.unlink()
    os.close(fd)


def users(ws: Workspace) -> list[dict[str, Any]]:
    """The commands using the drive now, oldest first: ``pid``, ``what`` and ``since`` of each."""
    folder = _users_folder(ws)
    found: list[dict[str, Any]] = []
    try:
        leases = sorted(folder.glob("*.lock"))
    except OSError:
        return found
    for lease in leases:
        try:
            fd = os.open(lease, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                with contextlib.suppress(ValueError, OSError):
                    entry = json.loads(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
                    if isinstance(entry, dict):
                        found.append(entry)
                continue
            with contextlib.suppress(OSError):
                lease.unlink()  # its user is gone
        finally:
            os.close(fd)
    return sorted(found, key=lambda e: str(e.get("since", "")))


def _describe_users(found: list[dict[str, Any]]) -> str:
    return ", ".join(f"{u.get('what', '?')} (pid {u.get('pid', '?')})" for u in found)


# --- what a drive that is down still holds --------------------------------------------------


def _pending_in_cache(paths: DrivePaths) -> int:
    """Files in rclone's VFS cache not yet uploaded (marked dirty in its metadata), read from disk."""
    count = 0
    for dirpath, _dirs, names in os.walk(paths.cache / "vfsMeta"):
        for name in names:
            try:
                with open(os.path.join(dirpath, name), "rb") as fh:
                    meta = json.loads(fh.read())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("Dirty"):
                count += 1
    return count


def _mount_table_has(path: Path) -> bool:
    """Whether ``path`` is a mount point, from the kernel's table: never a stat into a mount that may hang."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return os.path.ismount(path)
    target = str(path)
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
            if point == target:
                return True
    return False


def _rclone_alive(ws: Workspace, pid: Any) -> bool:
    """Whether ``pid`` is still the rclone that mounts this workspace's drive (pids get reused)."""
    if not isinstance(pid, int) or not _pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return sys.platform != "linux"
    return b"mount" in argv and str(ws.drive).encode() in argv


def _wait_gone(alive: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _append_event(paths: DrivePaths, kind: str, **detail: Any) -> None:
    with contextlib.suppress(OSError), open(paths.events, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": _now_iso(), "event": kind, **detail}) + "\n")


def _stop_now(ws: Workspace, raw: dict[str, Any]) -> None:
    """Stop the watchdog and rclone without waiting for uploads, and unmount; the cache stays as it is.

    Every step is bounded: the watchdog and rclone are killed, not asked; ``drive/`` is
    unmounted lazily once rclone is gone, so nothing blocks on a mount that no longer answers.
    """
    paths = DrivePaths(ws)
    watchdog = raw.get("watchdog_pid")
    if isinstance(watchdog, int) and _pid_alive(watchdog):
        with contextlib.suppress(ProcessLookupError):
            os.kill(watchdog, signal.SIGKILL)  # first: it would start rclone again
        _wait_gone(lambda: _pid_alive(watchdog), 3.0)
    rclone = raw.get("rclone_pid")
    if _rclone_alive(ws, rclone):
        with contextlib.suppress(ProcessLookupError):
            os.kill(rclone, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            os.kill(rclone, signal.SIGTERM)
        if not _wait_gone(lambda: _pid_alive(rclone), 1.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(rclone, signal.SIGKILL)
            _wait_gone(lambda: _pid_alive(rclone), 3.0)
    if _mount_table_has(ws.drive):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _fusermount_unmount(ws.drive, lazy=True)
    if raw:
        with contextlib.suppress(OSError):
            write_private_json(paths.state, {**raw, "phase": "detached", "rclone_pid": None, "rc": None})


# --- detach ----------------------------------------------------------------------------------


def detach(ws: Workspace, *, timeout: float | None = None, force: bool = False, when_used: str = "keep") -> DetachResult:
    """Flush, then unmount (or stop syncing) and stop the watchdog.

    First this process stops using the drive (see ``attach(..., user=...)``).
    While other commands still use it, ``when_used="keep"`` flushes and
    leaves it attached for them (``detached`` False, ``users`` names them);
    ``"refuse"`` raises :class:`DriveError` naming them; ``force`` detaches
    it under them.

    ``timeout`` bounds the whole call. When uploads have not all landed by
    then, when the drive does not answer (rclone hung, the watchdog gone, the
    remote unreachable), or at once with ``force``, the drive is unmounted
    anyway: ``forced`` is True and ``pending`` counts what did not land. It
    is kept in ``.drivelab/drive/cache`` and uploads at the next mount.
    Without a timeout the flush waits while uploads make progress.

    The workspace keeps the remote as its drive: the next :func:`attach`
    brings it back.
    """
    if when_used not in ("keep", "refuse"):
        raise DriveError(f"unknown choice for a drive in use {when_used!r}", hint="use keep or refuse")
    release(ws)
    settings = load_settings(ws)
    if settings.remote is None:
        return DetachResult(mode="local")
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    paths = DrivePaths(ws)
    cache = str(paths.cache)
    raw = read_json(paths.state) or {}
    state = _watchdog_state(ws)
    mode = str((state or raw).get("mode") or settings.mode)
    rclone_left = state is None and _rclone_alive(ws, raw.get("rclone_pid"))
    if state is None and not rclone_left:
        # Nothing keeps the drive: only a mount left behind to clean up.
        if _mount_table_has(ws.drive) or _mount_broken(ws.drive):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _fusermount_unmount(ws.drive, lazy=True)
        elif ws.drive.is_dir():
            from drivelab.drive import _guard

            _guard.release(ws.drive)  # the plain folder takes writes again
        pending = _pending_in_cache(paths) if mode == "mount" else 0
        return DetachResult(mode=mode, pending=pending, cache=cache if pending else None, seconds=time.monotonic() - start)

    others = users(ws)
    if others and not force:
        if when_used == "refuse":
            raise DriveError(
                f"the drive is in use by {_describe_users(others)}",
                hint="stop them first (Ctrl+C the lab, `drivelab jobs stop RUN`), or pass --force to unmount it under them: their writes to drive/ then fail",
            )
        if state is not None and state.get("mode") == "mount":
            # What was written until now; the others keep writing, and flush their own files when they end.
            flushed = _flush_mount(ws, state, timeout, None, queued_now=True)
        else:
            flushed = flush(ws, timeout=timeout)
        return DetachResult(**_flush_fields(flushed), detached=False, users=others)

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
            if state is not None and state.get("mode") == "sync":
                from drivelab.drive._sync import sync_now

                flushed = sync_now(ws, timeout=budget)
            else:
                flushed = _flush_mount(ws, state or raw, budget, None)
        except DriveError as exc:
            reason = exc.message
    if reason is None and state is not None:
        # Everything landed: the watchdog stops in order (it flushes once more, unmounts, stops rclone).
        pid = int(state["watchdog_pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        wait = left()
        if not _wait_gone(lambda: _pid_alive(pid), 120.0 if wait is None else wait):
            reason = "the watchdog did not stop in time"
    if reason is not None or rclone_left:
        _stop_now(ws, read_json(paths.state) or raw)
    elif _mount_table_has(ws.drive):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if not _fusermount_unmount(ws.drive):
                _fusermount_unmount(ws.drive, lazy=True)
    pending = _pending_in_cache(paths) if mode == "mount" else 0
    result = DetachResult(
        **_flush_fields(flushed), forced=reason is not None, pending=pending, cache=cache if pending else None, reason=reason,
    )
    result.seconds = time.monotonic() - start
    if reason is not None:
        _append_event(paths, "unmounted", forced=True, pending=pending, reason=reason)
        return result
    final = read_json(paths.state) or {}
    if final.get("error") and final.get("phase") == "failed":
        raise DriveError(f"the drive stopped with an error: {final['error']}", hint=final.get("hint"))
    return result


def _flush_fields(result: FlushResult) -> dict[str, Any]:
    return {
        "files": result.files, "bytes": result.bytes, "seconds": result.seconds, "mode": result.mode,
        "names": list(result.names), "conflicts": list(result.conflicts),
    }

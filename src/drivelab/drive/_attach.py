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
import errno
import json
import os
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
from drivelab.drive._config import CACHE_MODES, MODES, DrivePaths, load_settings, read_json, save_settings
from drivelab.drive._rc import RcClient
from drivelab.drive._remotes import get_remote
from drivelab.errors import DriveError, FlushError, MountError, RcloneError
from drivelab.workspace import Workspace

__all__ = [
    "DriveState",
    "FlushResult",
    "attach",
    "detach",
    "flush",
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


def _fusermount_unmount(path: Path, *, lazy: bool = False) -> bool:
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool:
        argv = [tool, "-u", *(["-z"] if lazy else []), str(path)]
    elif sys.platform == "darwin":
        argv = ["umount", *(["-f"] if lazy else []), str(path)]
    else:
        return False
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


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
    ws.drive.mkdir(parents=True, exist_ok=True)
    allow_non_empty = _handle_local_files(ws, entry.spec, use_mode, local_files, notice)
    save_settings(ws, settings)
    _start_watchdog(ws, paths, use_mode, allow_non_empty, notices, timeout)
    if not settings.read_only:
        with contextlib.suppress(OSError):
            _ensure_folders(ws.drive)
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


def _flush_mount(ws: Workspace, state: dict[str, Any], timeout: float | None, on_progress: Callable[[int, int], None] | None) -> FlushResult:
    start = time.monotonic()
    client = RcClient.from_state(state)
    if client is None:
        raise FlushError("the drive's watchdog has no rc address yet", hint="wait for `drivelab drive status` to say live, then flush again")
    seen: dict[str, int] = {}
    stalled_since = time.monotonic()
    last_pending = -1
    while True:
        try:
            queue = client.call("vfs/queue", timeout=10.0).get("queue") or []
            stats = client.call("vfs/stats", timeout=10.0).get("diskCache", {})
        except RcloneError as exc:
            fresh = _watchdog_state(ws)
            if fresh is None:
                raise FlushError("the drive was detached while flushing", hint="files not yet uploaded stay in .drivelab/drive/cache and upload at the next mount") from exc
            client = RcClient.from_state(fresh) or client
            if timeout is None and time.monotonic() - stalled_since > 600:
                raise FlushError("the drive has been down for 10 minutes while flushing", hint="see `drivelab drive status` and .drivelab/drive/rclone.log; nothing pending was discarded") from exc
            if timeout is not None and time.monotonic() - start > timeout:
                raise FlushError(f"the drive did not answer for {timeout:.0f} s while flushing ({exc.message})", hint="see `drivelab drive status`; nothing pending was discarded") from exc
            time.sleep(0.2)
            continue
        waiting = []
        for item in queue:
            name = str(item.get("name", ""))
            seen[name] = max(int(item.get("size", 0) or 0), seen.get(name, 0))
            if not item.get("uploading") and float(item.get("expiry", 0) or 0) > 0:
                waiting.append(item.get("id"))
        if waiting:
            _upload_now(client, waiting)
        pending = int(stats.get("uploadsQueued", 0)) + int(stats.get("uploadsInProgress", 0))
        if on_progress:
            on_progress(pending, max(0, len(seen) - pending))
        if pending == 0 and not queue:
            break
        if pending != last_pending:
            last_pending = pending
            stalled_since = time.monotonic()
        now = time.monotonic()
        if timeout is not None and now - start > timeout:
            names = ", ".join(str(i.get("name")) for i in queue[:10])
            raise FlushError(
                f"{pending} uploads still pending after {timeout:.0f} s: {names}",
                hint="they stay in .drivelab/drive/cache and keep uploading; run `drivelab drive flush` again, or see .drivelab/drive/rclone.log",
            )
        if timeout is None and now - stalled_since > 600:
            raise FlushError(
                f"{pending} uploads made no progress for 10 minutes",
                hint="check the remote (see .drivelab/drive/rclone.log); nothing was discarded: they stay in the cache and retry",
            )
        time.sleep(min(0.25, 0.02 + 0.01 * len(queue)))
    return FlushResult(
        files=len(seen), bytes=sum(seen.values()), seconds=time.monotonic() - start, mode="mount", names=sorted(seen),
    )


def _upload_now(client: RcClient, ids: list[Any]) -> None:
    """Make queued files eligible for upload now instead of after the write-back delay."""
    # A large negative expiry means "as soon as possible"; one batch call for all of them.
    batch = [{"_path": "vfs/queue-set-expiry", "id": i, "expiry": -1e9} for i in ids]
    try:
        client.call("job/batch", {"inputs": batch}, timeout=30.0)
        return
    except RcloneError:
        pass  # an rclone without job/batch: one call each
    for i in ids:
        with contextlib.suppress(RcloneError):  # an item that began uploading has left the queue
            client.call("vfs/queue-set-expiry", {"id": i, "expiry": -1e9}, timeout=10.0)


def detach(ws: Workspace, *, timeout: float | None = None) -> FlushResult:
    """Flush, then unmount (or stop syncing) and stop the watchdog.

    Returns what the flush waited for. The workspace keeps the remote as its
    drive: the next :func:`attach` brings it back.
    """
    settings = load_settings(ws)
    if settings.remote is None:
        return FlushResult(mode="local")
    state = _watchdog_state(ws)
    if state is None:
        if _mount_broken(ws.drive) or os.path.ismount(ws.drive):
            _fusermount_unmount(ws.drive, lazy=True)
        return FlushResult(mode=settings.mode)
    result = flush(ws, timeout=timeout)
    pid = int(state["watchdog_pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 120
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    if _mount_broken(ws.drive) or os.path.ismount(ws.drive):
        if not _fusermount_unmount(ws.drive):
            _fusermount_unmount(ws.drive, lazy=True)
    final = read_json(DrivePaths(ws).state) or {}
    if final.get("error") and final.get("phase") == "failed":
        raise DriveError(f"the drive stopped with an error: {final['error']}", hint=final.get("hint"))
    return result

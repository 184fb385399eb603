"""The drive's state as the watchdog records it, and what `drivelab drive status` shows."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab._background import pid_alive
from drivelab.drive import _guard
from drivelab.drive._config import DrivePaths, DriveSettings, WatchdogState, load_settings, now_iso, read_watchdog_state
from drivelab.drive._host import mount_broken, mount_table_has, rclone_alive, unmount
from drivelab.drive._rc import RcClient
from drivelab.drive._users import users
from drivelab.errors import RcloneError
from drivelab.workspace import Workspace

__all__ = [
    "DriveState", "watchdog_state", "is_attached", "last_event", "recent_events", "append_event", "status", "tree_size",
    "remember_stats", "last_stats", "STATS_TIMEOUT", "remote_spec", "cached_copy",
]  # fmt: skip

STATS_TIMEOUT = 2.0
"""Seconds :func:`status` waits for rclone's ``vfs/stats``; past it the counts are unknown (None), not zero."""


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
    pending_uploads: int | None = 0
    """Files queued or uploading; None when rclone did not answer (unknown: see ``stats_error``, ``last_stats``)."""
    uploading: int | None = 0
    cache_bytes: int | None = 0
    cache_files: int | None = 0
    errored_files: int | None = 0
    stats_error: str | None = None
    """Why the counts above are unknown (None): rclone's rc API did not answer ``vfs/stats``."""
    last_stats: dict[str, Any] | None = None
    """While the counts are unknown: the last ones rclone gave (``time``, ``pending_uploads``, ``uploading``,
    ``cache_bytes``, ``cache_files``, ``errored_files``), kept in this host's ``stats.json``; None if never."""
    watchdog_pid: int | None = None
    rclone_pid: int | None = None
    remounts: int = 0
    last_event: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    """The watchdog's last :data:`RECENT_EVENTS` events (``time``, ``event``, details), oldest first."""
    last_sync: str | None = None
    conflicts: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    error: str | None = None
    users: list[dict[str, Any]] = field(default_factory=list)
    """Commands using the drive now (``drivelab lab``, jobs): ``pid``, ``what``, ``since``."""
    read_only: bool = False
    """The attached drive takes no writes."""
    host: str | None = None
    """This machine's host name: the drive's state here is this host's alone (others sharing the workspace have their own)."""
    cache: str | None = None
    """Where this machine keeps rclone's VFS cache (pending uploads wait there), on its own disk."""

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
            "stats_error": self.stats_error,
            "last_stats": self.last_stats,
            "watchdog_pid": self.watchdog_pid,
            "rclone_pid": self.rclone_pid,
            "remounts": self.remounts,
            "last_event": self.last_event,
            "events": self.events,
            "last_sync": self.last_sync,
            "conflicts": self.conflicts,
            "notices": self.notices,
            "error": self.error,
            "users": self.users,
            "read_only": self.read_only,
            "host": self.host,
            "cache": self.cache,
        }


def watchdog_state(ws: Workspace) -> WatchdogState | None:
    """The state this host's live watchdog recorded; None when none is alive here (another host's is never looked at)."""
    state = read_watchdog_state(DrivePaths(ws))
    if state and pid_alive(state.watchdog_pid):
        return state
    return None


def is_attached(ws: Workspace) -> bool:
    """True while a watchdog keeps a remote drive attached (live, or being brought back)."""
    state = watchdog_state(ws)
    return state is not None and state.phase in ("live", "down", "starting")


RECENT_EVENTS = 10
"""How many of the watchdog's last events :func:`status` reports (``DriveState.events``)."""


def recent_events(paths: DrivePaths, count: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    """The last ``count`` events of ``events.jsonl``, oldest first (read from its end: the file only grows)."""
    try:
        with open(paths.events, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 512 * count))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return []
    found: list[dict[str, Any]] = []
    for line in reversed(lines):
        if len(found) == count:
            break
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                found.append(event)
    return found[::-1]


def last_event(paths: DrivePaths) -> dict[str, Any] | None:
    events = recent_events(paths, 1)
    return events[-1] if events else None


def append_event(paths: DrivePaths, kind: str, **detail: Any) -> None:
    with contextlib.suppress(OSError):
        paths.host_folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError), open(paths.events, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": now_iso(), "event": kind, **detail}) + "\n")


def status(ws: Workspace) -> DriveState:
    """The drive on this machine: its mode, whether it is live, pending uploads, cache size and the last watchdog event."""
    settings = load_settings(ws)
    paths = DrivePaths(ws)
    if settings.remote is None:
        return DriveState(mode="local", live=ws.drive.is_dir(), path=ws.drive, phase="local")
    result = _status(ws, settings, paths)
    result.host = paths.host
    if result.mode == "mount":
        result.cache = str(paths.cache)
    return result


def _status(ws: Workspace, settings: DriveSettings, paths: DrivePaths) -> DriveState:
    entry = settings.remotes.get(settings.remote)
    spec = entry.spec if entry else None
    state = watchdog_state(ws)
    events = recent_events(paths)
    last = events[-1] if events else None
    if state is None:
        raw = read_watchdog_state(paths)
        if raw is not None and rclone_alive(ws, raw.rclone_pid):
            # The watchdog died and left rclone serving drive/: nothing here may look into the mount (a stopped
            # or hung rclone never answers); the next attach replaces it.
            return DriveState(
                mode=raw.mode, live=False, path=ws.drive, remote=settings.remote, spec=spec, phase="detached",
                rclone_pid=raw.rclone_pid, last_event=last, events=events,
                error=f"rclone (pid {raw.rclone_pid}) still serves drive/, but its watchdog is gone; "
                "`drivelab drive mount` replaces it (its pending uploads are kept), `drivelab drive unmount` stops it",
            )
        # Nothing keeps the drive (a killed watchdog, a reboot): a dead mount left behind, or the protected
        # folder beneath it, would refuse every write to drive/ from now on.
        if mount_broken(ws.drive):
            unmount(ws.drive, lazy=True)
        elif not mount_table_has(ws.drive):
            _guard.release(ws.drive)
        return DriveState(
            mode=settings.mode, live=False, path=ws.drive, remote=settings.remote, spec=spec,
            phase="detached", last_event=last, events=events, error=_stale_error(paths),
        )
    result = DriveState(
        mode=state.mode,
        live=state.phase == "live",
        path=ws.drive,
        remote=settings.remote,
        spec=spec,
        phase=state.phase,
        watchdog_pid=state.watchdog_pid,
        rclone_pid=state.rclone_pid,
        remounts=state.remounts,
        last_event=last,
        events=events,
        last_sync=state.last_sync,
        conflicts=list(state.conflicts),
        notices=list(state.notices),
        error=state.error,
        users=users(ws),
        read_only=state.read_only,
    )
    client = RcClient.from_state(state)
    if result.mode == "mount" and client is not None and result.live:
        try:
            counts = _counts(client.call("vfs/stats", timeout=STATS_TIMEOUT).get("diskCache", {}))
        except RcloneError as exc:
            # Unknown is said as unknown, never as zero: with the last counts rclone gave, and when.
            result.pending_uploads = result.uploading = result.cache_bytes = result.cache_files = result.errored_files = None
            result.stats_error = exc.message
            result.last_stats = last_stats(paths)
        else:
            # rclone recounts its cache's size only when it cleans it (each minute): what is on disk now, measured.
            counts["cache_files"], counts["cache_bytes"] = cache_on_disk(paths.cache / "vfs")
            for key, value in counts.items():
                setattr(result, key, value)
            remember_stats(paths, counts)
    elif result.mode == "sync":
        result.cache_bytes = tree_size(ws.drive)[1]
    return result


def _counts(disk_cache: dict[str, Any]) -> dict[str, int]:
    """``DriveState``'s counts from ``vfs/stats``' ``diskCache``."""
    uploading = int(disk_cache.get("uploadsInProgress", 0))
    return {
        "pending_uploads": int(disk_cache.get("uploadsQueued", 0)) + uploading,
        "uploading": uploading,
        "cache_bytes": int(disk_cache.get("bytesUsed", 0)),
        "cache_files": int(disk_cache.get("files", 0)),
        "errored_files": int(disk_cache.get("erroredFiles", 0)),
    }


def _stats_file(paths: DrivePaths) -> Path:
    return paths.stats


def remember_stats(paths: DrivePaths, counts: dict[str, int] | dict[str, Any]) -> None:
    """Keep the counts rclone just gave (``vfs/stats``' ``diskCache`` or :func:`_counts`), with the time, for when it does not answer."""
    if "pending_uploads" not in counts:
        counts = _counts(counts)
    with contextlib.suppress(OSError):
        write_text_atomic(_stats_file(paths), json.dumps({"time": now_iso(), "unix": time.time(), **counts}) + "\n")


def last_stats(paths: DrivePaths) -> dict[str, Any] | None:
    """The counts :func:`remember_stats` kept last, with ``time`` (ISO) and ``age`` (seconds ago); None if none."""
    try:
        data = json.loads(_stats_file(paths).read_text(encoding="utf-8"))
        data["age"] = max(0.0, round(time.time() - float(data.pop("unix")), 1))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return data


def remote_spec(ws: Workspace) -> str | None:
    """The workspace's remote drive as ``remote:root`` (from local settings only); None for a local drive."""
    settings = load_settings(ws)
    if settings.remote is None:
        return None
    entry = settings.remotes.get(settings.remote)
    return entry.spec if entry else settings.remote


def cached_copy(ws: Workspace, path: Path) -> tuple[bytes, float] | None:
    """A drive file's content from rclone's VFS cache on this machine, and when it was written there.

    None unless the cache holds all of it (its ``vfsMeta`` ranges cover its
    size). Reads local disk only, never the mount: for showing a file while the
    remote does not answer or the drive is not attached.
    """
    spec = remote_spec(ws)
    try:
        relative = path.relative_to(ws.drive)
    except ValueError:
        return None
    if spec is None:
        return None
    remote, _, root = spec.partition(":")
    cache = DrivePaths(ws).cache
    data_path = cache / "vfs" / remote / root.strip("/") / relative
    meta_path = cache / "vfsMeta" / remote / root.strip("/") / relative
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        data = data_path.read_bytes()
        written = data_path.stat().st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    size = int(meta.get("Size", -1))
    covered = sum(int(r.get("Size", 0)) for r in (meta.get("Rs") or []) if isinstance(r, dict))
    if size != len(data) or covered < size:
        return None
    return data, written


def _stale_error(paths: DrivePaths) -> str | None:
    state = read_watchdog_state(paths)
    return state.error if state and state.phase == "failed" else None


def cache_on_disk(root: Path) -> tuple[int, int]:
    """Files under ``root`` and the bytes they take on disk (allocated blocks: the VFS cache's files are sparse)."""
    files = used = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                files += 1
    return files, used


def tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
    return files, size

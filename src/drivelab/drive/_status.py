"""The drive's state as the watchdog records it, and what `drivelab drive status` shows."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivelab._background import pid_alive
from drivelab.drive import _guard
from drivelab.drive._config import DrivePaths, WatchdogState, load_settings, now_iso, read_watchdog_state
from drivelab.drive._host import mount_broken, unmount
from drivelab.drive._rc import RcClient
from drivelab.drive._users import users
from drivelab.errors import RcloneError
from drivelab.workspace import Workspace

__all__ = ["DriveState", "watchdog_state", "is_attached", "last_event", "recent_events", "append_event", "status", "tree_size"]


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
            "events": self.events,
            "last_sync": self.last_sync,
            "conflicts": self.conflicts,
            "notices": self.notices,
            "error": self.error,
            "users": self.users,
            "read_only": self.read_only,
        }


def watchdog_state(ws: Workspace) -> WatchdogState | None:
    """The state a live watchdog recorded; None when no watchdog is alive."""
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
    with contextlib.suppress(OSError), open(paths.events, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": now_iso(), "event": kind, **detail}) + "\n")


def status(ws: Workspace) -> DriveState:
    """The drive's mode, whether it is live, pending uploads, cache size and the last watchdog event."""
    settings = load_settings(ws)
    paths = DrivePaths(ws)
    if settings.remote is None:
        return DriveState(mode="local", live=ws.drive.is_dir(), path=ws.drive, phase="local")
    entry = settings.remotes.get(settings.remote)
    spec = entry.spec if entry else None
    state = watchdog_state(ws)
    events = recent_events(paths)
    last = events[-1] if events else None
    if state is None:
        # Nothing keeps the drive (a killed watchdog, a reboot): a dead mount left behind, or the protected
        # folder beneath it, would refuse every write to drive/ from now on.
        if mount_broken(ws.drive):
            unmount(ws.drive, lazy=True)
        elif not os.path.ismount(ws.drive):
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
        with contextlib.suppress(RcloneError):
            stats = client.call("vfs/stats", timeout=5.0).get("diskCache", {})
            result.pending_uploads = int(stats.get("uploadsQueued", 0)) + int(stats.get("uploadsInProgress", 0))
            result.uploading = int(stats.get("uploadsInProgress", 0))
            result.cache_bytes = int(stats.get("bytesUsed", 0))
            result.cache_files = int(stats.get("files", 0))
            result.errored_files = int(stats.get("erroredFiles", 0))
    elif result.mode == "sync":
        result.cache_bytes = tree_size(ws.drive)[1]
    return result


def _stale_error(paths: DrivePaths) -> str | None:
    state = read_watchdog_state(paths)
    return state.error if state and state.phase == "failed" else None


def tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
    return files, size

"""The drive's settings in ``.drivelab/config.json``, and the files of a live drive.

::

    .drivelab/
      config.json          {"drive": {"type": "local"} | {"type": "remote", "remote": NAME, ...},
                            "remotes": {NAME: {"type": ..., "root": ...}}}
      rclone.conf          the workspace's own rclone config (mode 0600)
      drive/
        state.json         the watchdog's view of the attached drive (mode 0600: holds the rc password)
        events.jsonl       watchdog events (lost, remounted, synced, ...)
        watchdog.log       the watchdog's own log
        rclone.log         rclone's log
        cache/             rclone's VFS cache
        bisync/            rclone bisync's listings (sync mode)
      local-drive/<time>/  what the local drive held before a remote was attached
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab.errors import WorkspaceError
from drivelab.workspace import Workspace

__all__ = ["DriveSettings", "RemoteEntry", "load_settings", "save_settings", "DrivePaths", "read_json", "write_private_json"]

MODES = ("mount", "sync")
CACHE_MODES = ("off", "minimal", "writes", "full")


@dataclass
class RemoteEntry:
    name: str
    type: str
    root: str = ""

    @property
    def spec(self) -> str:
        """The rclone path of the drive's root on this remote, ``name:root``."""
        return f"{self.name}:{self.root}"


@dataclass
class DriveSettings:
    """How ``drive/`` is attached. ``remote`` None means the local default drive."""

    remote: str | None = None
    mode: str = "mount"
    # full: files read are kept in the VFS cache (up to cache_max_size), so a second read does not
    # download it again; with writes every open of a file not written here downloads it again.
    # Both upload what is written the same way (write-back, waited for by flush).
    cache_mode: str = "full"
    cache_max_size: str = "10G"
    dir_cache_time: str = "1m"
    sync_interval: float = 60.0
    read_only: bool = False
    remotes: dict[str, RemoteEntry] = field(default_factory=dict)

    def drive_dict(self) -> dict[str, Any]:
        if self.remote is None:
            return {"type": "local"}
        return {
            "type": "remote",
            "remote": self.remote,
            "mode": self.mode,
            "cache_mode": self.cache_mode,
            "cache_max_size": self.cache_max_size,
            "dir_cache_time": self.dir_cache_time,
            "sync_interval": self.sync_interval,
            "read_only": self.read_only,
        }


def _config(ws: Workspace) -> dict[str, Any]:
    try:
        data = json.loads(ws.config_file.read_text())
    except FileNotFoundError as exc:
        raise WorkspaceError(f"{ws.root} is not a drivelab workspace", hint="run `drivelab init` there first") from exc
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"cannot read {ws.config_file}: {exc}", hint="fix or delete the file, then run `drivelab init`") from exc
    if not isinstance(data, dict):
        raise WorkspaceError(f"{ws.config_file} does not hold a JSON object", hint="fix or delete the file, then run `drivelab init`")
    return data


def load_settings(ws: Workspace) -> DriveSettings:
    data = _config(ws)
    drive = data.get("drive") or {}
    remotes = {
        name: RemoteEntry(name=name, type=str(entry.get("type", "")), root=str(entry.get("root", "")))
        for name, entry in (data.get("remotes") or {}).items()
        if isinstance(entry, dict)
    }
    settings = DriveSettings(remotes=remotes)
    if drive.get("type") == "remote":
        settings.remote = drive.get("remote")
        settings.mode = drive.get("mode", settings.mode)
        settings.cache_mode = drive.get("cache_mode", settings.cache_mode)
        settings.cache_max_size = drive.get("cache_max_size", settings.cache_max_size)
        settings.dir_cache_time = drive.get("dir_cache_time", settings.dir_cache_time)
        settings.sync_interval = float(drive.get("sync_interval", settings.sync_interval))
        settings.read_only = bool(drive.get("read_only", False))
    return settings


def save_settings(ws: Workspace, settings: DriveSettings) -> None:
    data = _config(ws)
    data["drive"] = settings.drive_dict()
    data["remotes"] = {name: {"type": e.type, "root": e.root} for name, e in sorted(settings.remotes.items())}
    write_text_atomic(ws.config_file, json.dumps(data, indent=2) + "\n")


@dataclass(frozen=True)
class DrivePaths:
    """Where the drive keeps its local state inside ``.drivelab/``."""

    ws: Workspace

    @property
    def rclone_conf(self) -> Path:
        return self.ws.state / "rclone.conf"

    @property
    def folder(self) -> Path:
        return self.ws.state / "drive"

    @property
    def state(self) -> Path:
        return self.folder / "state.json"

    @property
    def events(self) -> Path:
        return self.folder / "events.jsonl"

    @property
    def watchdog_log(self) -> Path:
        return self.folder / "watchdog.log"

    @property
    def rclone_log(self) -> Path:
        return self.folder / "rclone.log"

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    @property
    def bisync(self) -> Path:
        return self.folder / "bisync"

    @property
    def sync_lock(self) -> Path:
        return self.folder / "sync.lock"

    @property
    def local_drive(self) -> Path:
        return self.ws.state / "local-drive"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically to a file only its owner can read."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n", private=True)


def now_iso() -> str:
    """The time now, UTC, as recorded in the drive's state and events."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class WatchdogState:
    """What the watchdog records in ``.drivelab/drive/state.json`` (mode 0600: it holds the rc password).

    Written by the watchdog only; read by status, flush and detach. Keys a
    newer drivelab wrote and this one does not know are kept in ``extra``.
    """

    watchdog_pid: int | None = None
    mode: str = "mount"
    remote: str | None = None
    spec: str | None = None
    phase: str = "starting"
    """``starting``, ``live``, ``down`` (being brought back), ``failed`` or ``detached``."""
    started: str | None = None
    remounts: int = 0
    notices: list[str] = field(default_factory=list)
    rclone_pid: int | None = None
    rc: dict[str, str] | None = None
    """rclone's rc API: ``url``, ``user``, ``password``."""
    error: str | None = None
    hint: str | None = None
    protection: str | None = None
    """How the folder beneath the mount is kept from taking writes (see ``_guard``)."""
    read_only: bool = False
    """This mount takes no writes (the workspace's setting, or asked for this mount only)."""
    last_sync: str | None = None
    conflicts: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchdogState:
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known}, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **data}


def read_watchdog_state(paths: DrivePaths) -> WatchdogState | None:
    """What ``state.json`` holds, or None when there is none (or it cannot be read)."""
    data = read_json(paths.state)
    return WatchdogState.from_dict(data) if data else None

"""The drive's settings in ``.drivelab/config.json``, and the files of a live drive.

::

    .drivelab/
      config.json          {"drive": {"type": "local"} | {"type": "remote", "remote": NAME, ...},
                            "remotes": {NAME: {"type": ..., "root": ...}}}
      rclone.conf          the workspace's own rclone config (mode 0600)
      drive/
        hosts/<host>/      what belongs to one machine (see "One workspace, several machines" in docs/drive.md)
          state.json       its watchdog's view of the attached drive (mode 0600: holds the rc password)
          events.jsonl     watchdog events (lost, remounted, synced, ...)
          watchdog.log     the watchdog's own log
          rclone.log       rclone's log
          stats.json       the last counts rclone gave
          users/           leases of the commands using the drive on that machine
          when-landed/     files to write once the uploads have landed
          attach.lock      one attach at a time on that machine
          incomplete/, stray/, bisync/, sync-backup/
      local-drive/<time>/  what the local drive held before a remote was attached

    /var/tmp/drivelab-<uid>/<workspace-id>/<host>/   rclone's VFS cache, on the machine's own disk
                                                     ($DRIVELAB_DRIVE_CACHE_DIR or the drive's cache_dir
                                                     setting replace /var/tmp/drivelab-<uid>)

Every record that holds a process id also holds the identity of the host
that wrote it (:mod:`drivelab._host_id`); a pid is judged only on that host,
in that boot.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab._host_id import folder_name, host_name, is_this_host, this_host
from drivelab.errors import DriveError, WorkspaceError
from drivelab.workspace import Workspace

__all__ = [
    "DriveSettings", "RemoteEntry", "load_settings", "save_settings", "DrivePaths", "read_json", "write_private_json",
    "CACHE_DIR_ENV", "DEFAULT_CACHE_BASE",
]  # fmt: skip

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
    cache_dir: str | None = None
    """Where this workspace's VFS caches go on each machine (``~`` and ``$VARS`` expanded there); None: the default."""
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
            **({"cache_dir": self.cache_dir} if self.cache_dir else {}),
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
        settings.cache_dir = drive.get("cache_dir") or None
    return settings


def save_settings(ws: Workspace, settings: DriveSettings) -> None:
    data = _config(ws)
    data["drive"] = settings.drive_dict()
    data["remotes"] = {name: {"type": e.type, "root": e.root} for name, e in sorted(settings.remotes.items())}
    write_text_atomic(ws.config_file, json.dumps(data, indent=2) + "\n")


CACHE_DIR_ENV = "DRIVELAB_DRIVE_CACHE_DIR"
"""A folder on this machine's own disk for the drive's VFS caches (replaces :data:`DEFAULT_CACHE_BASE`)."""


def _default_cache_base() -> str:
    # /var/tmp: the machine's own disk on a cluster node (the home, and ~/.cache with it, is often NFS),
    # and unlike /tmp it is kept across reboots, so uploads still pending then resume at the next mount.
    return f"/var/tmp/drivelab-{os.getuid()}" if hasattr(os, "getuid") else os.path.join(os.path.expanduser("~"), ".cache", "drivelab")


DEFAULT_CACHE_BASE = _default_cache_base()

_HOST_FILES = (
    "state.json", "events.jsonl", "watchdog.log", "rclone.log", "stats.json", "users", "when-landed",
    "attach.lock", "incomplete", "stray", "bisync", "sync.lock", "sync-backup",
)  # fmt: skip
"""What an earlier drivelab kept in ``.drivelab/drive/`` itself and now belongs to one host."""


@dataclass(frozen=True)
class DrivePaths:
    """Where the drive keeps its local state: shared ``.drivelab/``, this host's folder, this host's cache.

    ``host`` is this machine's host name (read when made). Made for a
    workspace that an earlier drivelab used, it moves that version's files
    into this host's folder once (:meth:`migrate`).
    """

    ws: Workspace
    host: str = field(default_factory=host_name)

    def __post_init__(self) -> None:
        self.migrate()

    @property
    def rclone_conf(self) -> Path:
        return self.ws.state / "rclone.conf"

    @property
    def folder(self) -> Path:
        """``.drivelab/drive/``, shared by every host that sees the workspace."""
        return self.ws.state / "drive"

    @property
    def host_folder(self) -> Path:
        """``.drivelab/drive/hosts/<host>/``: what belongs to this machine alone."""
        return self.folder / "hosts" / folder_name(self.host)

    @property
    def state(self) -> Path:
        return self.host_folder / "state.json"

    @property
    def events(self) -> Path:
        return self.host_folder / "events.jsonl"

    @property
    def watchdog_log(self) -> Path:
        return self.host_folder / "watchdog.log"

    @property
    def rclone_log(self) -> Path:
        return self.host_folder / "rclone.log"

    @property
    def stats(self) -> Path:
        return self.host_folder / "stats.json"

    @property
    def users(self) -> Path:
        return self.host_folder / "users"

    @property
    def when_landed(self) -> Path:
        return self.host_folder / "when-landed"

    @property
    def attach_lock(self) -> Path:
        return self.host_folder / "attach.lock"

    @property
    def incomplete(self) -> Path:
        return self.host_folder / "incomplete"

    @property
    def stray(self) -> Path:
        return self.host_folder / "stray"

    @property
    def bisync(self) -> Path:
        return self.host_folder / "bisync"

    @property
    def sync_lock(self) -> Path:
        return self.host_folder / "sync.lock"

    @property
    def sync_backup(self) -> Path:
        return self.host_folder / "sync-backup"

    @property
    def cache_base(self) -> Path:
        """The folder on this machine's own disk that holds the caches of all its workspaces."""
        chosen = os.environ.get(CACHE_DIR_ENV, "").strip() or _cache_dir_setting(self.ws) or DEFAULT_CACHE_BASE
        return Path(os.path.expandvars(os.path.expanduser(chosen)))

    @property
    def cache(self) -> Path:
        """rclone's VFS cache for this workspace on this machine: ``<cache base>/<workspace id>/<host>``."""
        return self.cache_base / workspace_id(self.ws) / folder_name(self.host)

    @property
    def legacy_cache(self) -> Path:
        """Where an earlier drivelab kept the VFS cache, in the shared workspace (see :func:`claim_legacy_cache`)."""
        return self.folder / "cache"

    @property
    def local_drive(self) -> Path:
        return self.ws.state / "local-drive"

    def migrate(self) -> None:
        """Move what an earlier drivelab kept in ``.drivelab/drive/`` into this host's folder (once).

        That version kept one machine's state there without saying which
        machine: it is taken as this host's (a workspace used from several
        machines at once never worked with it). Its ``state.json`` is stamped
        with this host's identity, so its pids are judged here.
        """
        try:
            legacy = [name for name in _HOST_FILES if os.path.lexists(self.folder / name)]
        except OSError:
            return
        if not legacy:
            return
        with contextlib.suppress(OSError):
            self.host_folder.mkdir(parents=True, exist_ok=True)
        for name in legacy:
            old, new = self.folder / name, self.host_folder / name
            if os.path.lexists(new):
                continue  # this host has its own already; the old one stays for whoever looks
            with contextlib.suppress(OSError):
                os.rename(old, new)  # atomic: of two processes migrating at once, one moves it
                if name == "state.json":
                    data = read_json(new)
                    if data is not None and "host" not in data:
                        write_private_json(new, {**data, "host": this_host().to_dict()})


def _cache_dir_setting(ws: Workspace) -> str | None:
    data = read_json(ws.config_file) or {}
    drive = data.get("drive")
    value = drive.get("cache_dir") if isinstance(drive, dict) else None
    return str(value) if value else None


def workspace_id(ws: Workspace) -> str:
    """A name for the workspace that no other workspace on a machine has: its folder's name and a hash of its path."""
    root = os.path.realpath(ws.root)
    return f"{folder_name(os.path.basename(root))}-{hashlib.sha256(root.encode()).hexdigest()[:12]}"


def prepare_cache(paths: DrivePaths) -> Path:
    """Make this host's cache folder (owner only) and return it; :class:`DriveError` when its base is not ours.

    The default base lies in ``/var/tmp``, where any user may create a name
    first: a base (or a folder under it) that is a link or owned by another
    user is refused, never used.
    """
    base = paths.cache_base
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(base)
    except OSError as exc:
        raise DriveError(f"cannot make the drive's cache folder {base}: {exc.strerror}", hint=f"set ${CACHE_DIR_ENV} to a folder on this machine's disk") from exc
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or os.path.islink(base)):
        raise DriveError(
            f"the drive's cache folder {base} belongs to another user (or is a link)",
            hint=f"set ${CACHE_DIR_ENV} to a folder of your own on this machine's disk",
        )
    with contextlib.suppress(OSError):
        if paths.cache_base == Path(DEFAULT_CACHE_BASE):
            os.chmod(base, 0o700)
    paths.cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    return paths.cache


def claim_legacy_cache(paths: DrivePaths) -> tuple[int, Path | None]:
    """Bring an earlier drivelab's cache (``.drivelab/drive/cache``) to this host: (files moved, where left on failure).

    Its uploads still pending (items marked dirty) move into this host's
    cache, so the next rclone uploads them; the rest (files kept from reads)
    is deleted. The first host to attach claims it (an atomic rename into its
    own folder), so no two hosts take the same items.
    """
    old = paths.legacy_cache
    if not old.is_dir():
        return 0, None
    claimed = paths.host_folder / "legacy-cache"
    if not claimed.exists():
        paths.host_folder.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(old, claimed)
        except OSError:
            return 0, None  # another host claimed it first
    moved = 0
    meta_root, data_root = claimed / "vfsMeta", claimed / "vfs"
    try:
        for dirpath, _dirs, names in os.walk(meta_root):
            for name in names:
                meta = Path(dirpath) / name
                info = read_json(meta)
                if not info or not info.get("Dirty"):
                    continue
                rel = meta.relative_to(meta_root)
                for src, dest in ((data_root / rel, paths.cache / "vfs" / rel), (meta, paths.cache / "vfsMeta" / rel)):
                    if src.exists():
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.move(str(src), str(dest))
                moved += 1
    except OSError:
        return moved, claimed
    shutil.rmtree(claimed, ignore_errors=True)
    return moved, None


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
    """What the watchdog records in this host's ``state.json`` (mode 0600: it holds the rc password).

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
    host: dict[str, str] | None = None
    """The identity of the host that wrote it (``name``, ``boot``): its pids are judged on that host, in that boot, only."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchdogState:
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known}, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **data}


def read_watchdog_state(paths: DrivePaths) -> WatchdogState | None:
    """What this host's ``state.json`` holds, or None when there is none (or it cannot be read).

    Its pids are None unless it was written on this host in this boot: a
    process of another machine, or of an earlier boot, is never judged here.
    """
    data = read_json(paths.state)
    if not data:
        return None
    state = WatchdogState.from_dict(data)
    if not is_this_host(state.host):
        state.watchdog_pid = state.rclone_pid = None
    return state

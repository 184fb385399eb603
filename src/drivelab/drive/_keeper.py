"""What both kinds of watchdog share: the state they record in ``state.json``, the events they append, their logs' cap."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from drivelab._host_id import this_host
from drivelab.drive._config import DrivePaths, DriveSettings, WatchdogState, now_iso, write_private_json
from drivelab.drive._status import append_event
from drivelab.workspace import Workspace

__all__ = ["Keeper", "LOG_MAX", "LOG_MAX_ENV", "cap_file", "env_number", "log"]

log = logging.getLogger("drivelab.drive.watchdog")

LOG_MAX = 10 * 2**20
"""Bytes each of ``events.jsonl``, ``watchdog.log`` and ``rclone.log`` may hold (``$DRIVELAB_DRIVE_LOG_MAX``)."""
LOG_MAX_ENV = "DRIVELAB_DRIVE_LOG_MAX"


def env_number(name: str, default: float, least: float) -> float:
    """The number ``$name`` gives (at least ``least``), else ``default``."""
    with contextlib.suppress(ValueError):
        return max(least, float(os.environ.get(name, "") or default))
    return default


def cap_file(path: Path, limit: int) -> int:
    """Keep ``path`` under ``limit`` bytes: past it, only its newest whole lines (half the limit) stay; bytes cut.

    The file is cut in place, never renamed: rclone and the watchdog's own
    output hold it open with ``O_APPEND``, so their next line goes to the new
    end. A line written between the read of the tail and the cut is lost.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    if size <= limit:
        return 0
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        keep = limit // 2
        os.lseek(fd, max(0, size - keep), os.SEEK_SET)
        tail = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
        tail = tail[tail.find(b"\n") + 1 :][-keep:]  # whole lines only
        cut = os.fstat(fd).st_size - len(tail)
        if path.suffix == ".jsonl":
            marker = f'{{"time": "{now_iso()}", "event": "trimmed", "bytes": {cut}}}\n'.encode()
        else:
            marker = f"[drivelab: {cut} older bytes of this log were cut at {now_iso()}]\n".encode()
        os.ftruncate(fd, 0)
        os.write(fd, marker + tail)
        return cut
    except OSError:
        return 0
    finally:
        os.close(fd)


class Keeper:
    def __init__(self, ws: Workspace, settings: DriveSettings, request: dict[str, Any]) -> None:
        self.ws = ws
        self.paths = DrivePaths(ws)
        self.settings = settings
        self.entry = settings.remotes[settings.remote or ""]
        self.request = request
        self.stop = threading.Event()
        self.state = WatchdogState(
            watchdog_pid=os.getpid(), mode=request["mode"], remote=settings.remote, spec=self.entry.spec,
            started=now_iso(), notices=list(request.get("notices", [])), read_only=settings.read_only,
            host=this_host().to_dict(),
        )  # fmt: skip
        self.paths.host_folder.mkdir(parents=True, exist_ok=True)

    def save(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        write_private_json(self.paths.state, self.state.to_dict())

    def event(self, kind: str, **detail: Any) -> None:
        log.info("%s %s", kind, detail)
        append_event(self.paths, kind, **detail)
        self.cap_logs()

    def cap_logs(self, *more: Path) -> int:
        """Keep the events, the watchdog's log and ``more`` under :data:`LOG_MAX`; bytes cut from the last of ``more``."""
        limit = int(env_number(LOG_MAX_ENV, LOG_MAX, 4096))
        cut = 0
        for path in (self.paths.events, self.paths.watchdog_log, *more):
            cut = cap_file(path, limit)
        return cut

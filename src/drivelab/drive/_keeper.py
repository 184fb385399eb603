"""What both kinds of watchdog share: the state they record in ``state.json`` and the events they append."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from typing import Any

from drivelab.drive._config import DrivePaths, DriveSettings, WatchdogState, now_iso, write_private_json
from drivelab.drive._status import append_event
from drivelab.workspace import Workspace

__all__ = ["Keeper", "log"]

log = logging.getLogger("drivelab.drive.watchdog")


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
        )  # fmt: skip

    def save(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        write_private_json(self.paths.state, self.state.to_dict())

    def event(self, kind: str, **detail: Any) -> None:
        log.info("%s %s", kind, detail)
        append_event(self.paths, kind, **detail)

"""Files to write on the drive once its pending uploads have landed.

A job that ended while the remote did not answer records its status saying
"N uploads pending". That status must not stay so once they land. The
corrected text is kept in this host's folder (``.drivelab/drive/hosts/<host>/when-landed/``),
and this host's watchdog writes it through the mount as soon as rclone
reports nothing pending (the remote answers again, or at the next mount)::

    write_when_landed(ws, {status_path: corrected_text}, after=[stuck_pid])

``after``: processes of this host that may still write the same files (a
write left stuck on the remote); the correction waits until they are gone,
so it is the last. The record names this host and boot: after a reboot they
are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from drivelab._atomic import write_text_atomic
from drivelab._background import pid_alive
from drivelab._deadline import DeadlineError, NoAnswer, within
from drivelab._host_id import is_this_host, this_host
from drivelab.drive._config import DrivePaths
from drivelab.workspace import Workspace

__all__ = ["write_when_landed", "due_corrections", "apply_corrections", "WRITE_WITHIN"]

WRITE_WITHIN = 10.0
"""Seconds a correction's write through the mount may take before it is tried again later."""


def _folder(ws: Workspace) -> Path:
    return DrivePaths(ws).when_landed


def write_when_landed(ws: Workspace, files: Mapping[Path, str], *, after: Iterable[int] = ()) -> Path:
    """Keep ``files`` (path -> text) to be written once nothing is pending; the record's path."""
    folder = _folder(ws)
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"{time.time_ns()}-{os.getpid()}.json"
    write_text_atomic(record, json.dumps({"files": {str(p): t for p, t in files.items()}, "after": sorted(set(after)), "host": this_host().to_dict()}) + "\n")
    return record


def due_corrections(ws: Workspace) -> list[Path]:
    """The records waiting, oldest first (a cheap look at local disk)."""
    folder = _folder(ws)
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".json")
    except OSError:
        return []


def apply_corrections(ws: Workspace, records: list[Path]) -> int:
    """Write the records' files (call once nothing is pending); the number of records done and removed.

    A record waits while a process it names is alive; a write that does not
    finish within :data:`WRITE_WITHIN` is tried again by a later call.
    """
    done = 0
    for record in records:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            files = {Path(p): str(t) for p, t in dict(data["files"]).items()}
            after = [int(pid) for pid in data.get("after", [])]
            here = is_this_host(data.get("host"))
        except (OSError, ValueError, TypeError, KeyError):
            with contextlib.suppress(OSError):
                record.unlink()  # unreadable: nothing to do with it
            continue
        if here and any(pid_alive(pid) for pid in after):
            continue
        try:
            within(WRITE_WITHIN, lambda files=files: [write_text_atomic(path, text) for path, text in files.items()])
        except (NoAnswer, DeadlineError, OSError):
            continue
        with contextlib.suppress(OSError):
            record.unlink()
        done += 1
    return done

"""Who uses the drive: each command that attaches it holds a lock file for its life, so a killed one stops counting by itself.

The leases are this host's (``.drivelab/drive/hosts/<host>/users/``): a command
on another machine uses that machine's mount, not this one's. Each names its
host, whose identity goes with the pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import Any

from drivelab._host_id import this_host
from drivelab.drive._config import DrivePaths, now_iso
from drivelab.workspace import Workspace

__all__ = ["hold", "release", "users", "describe_users"]


_held: dict[tuple[str, int], tuple[int, Path]] = {}
"""(workspace root, pid) -> (locked fd, lease file) of the leases this process holds."""


def _users_folder(ws: Workspace) -> Path:
    return DrivePaths(ws).users


def hold(ws: Workspace, what: str) -> None:
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
        os.write(fd, json.dumps({"pid": os.getpid(), "what": what, "since": now_iso(), "host": this_host().to_dict()}).encode())
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


def describe_users(found: list[dict[str, Any]]) -> str:
    return ", ".join(f"{u.get('what', '?')} (pid {u.get('pid', '?')})" for u in found)

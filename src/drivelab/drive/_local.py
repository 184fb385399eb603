"""The local drive's own files when a remote takes its place: copied, set aside, restored; the drive's folders."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivelab._units import format_bytes
from drivelab.drive import _guard
from drivelab.drive._config import DrivePaths
from drivelab.drive._rclone import classify_failure, find_rclone
from drivelab.drive._status import tree_size
from drivelab.errors import MountError
from drivelab.workspace import Workspace

__all__ = ["DRIVE_FOLDERS", "LOCAL_FILE_CHOICES", "ensure_folders", "handle_local_files", "restore_local_drive"]


DRIVE_FOLDERS = ("colab", "dataset", "runs")


LOCAL_FILE_CHOICES = ("copy", "set-aside", "mount-over")


def ensure_folders(drive: Path) -> None:
    for name in DRIVE_FOLDERS:
        (drive / name).mkdir(parents=True, exist_ok=True)


def _local_files(drive: Path) -> tuple[int, int, list[str]]:
    """Files in ``drive/`` (folders that are empty do not count)."""
    files, size = tree_size(drive)
    entries = sorted(p.name for p in drive.iterdir()) if drive.is_dir() else []
    return files, size, entries


def handle_local_files(ws: Workspace, spec: str, mode: str, choice: str | None, notice: Callable[[str], None]) -> bool:
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
    rclone = find_rclone()
    conf = DrivePaths(ws).rclone_conf
    # --ignore-existing: a file already on the remote is never overwritten.
    done = rclone.run(
        ["copy", str(ws.drive), spec, "--ignore-existing", "--use-json-log", "-v", "--stats-log-level", "NOTICE"],
        config=conf,
        timeout=24 * 3600,
    )
    if done.returncode != 0:
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

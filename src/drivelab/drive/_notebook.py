"""The Colab-style face of the drive: ``drive.mount(...)`` and ``drive.flush_and_unmount()``.

For notebooks: they find the workspace from the mount point (or
``$DRIVELAB_WORKSPACE``, or the current folder) and attach its configured
drive, local or remote.
"""

from __future__ import annotations

from pathlib import Path

from drivelab.drive._attach import attach
from drivelab.drive._detach import detach
from drivelab.drive._results import FlushResult
from drivelab.drive._status import DriveState
from drivelab.errors import MountError, WorkspaceError
from drivelab.workspace import Workspace, find_workspace

__all__ = ["mount", "flush_and_unmount"]


def _workspace_for(mountpoint: str | Path | None) -> Workspace:
    if mountpoint is None:
        return find_workspace()
    path = Path(mountpoint).expanduser()
    candidates = [path.parent if path.name == "drive" else path, path]
    for candidate in candidates:
        try:
            ws = find_workspace(candidate if candidate.exists() else None)
        except WorkspaceError:
            continue
        return ws
    return find_workspace()


def mount(
    mountpoint: str | Path = "drive",
    *,
    force_remount: bool = False,
    timeout: float = 120.0,
    readonly: bool = False,
) -> DriveState:
    """Attach the workspace's drive, as Colab's ``drive.mount`` does.

    ``mountpoint`` names the workspace's ``drive`` folder (relative paths are
    taken from the current folder); the drive is always attached at the
    workspace's ``drive/``. ``force_remount`` flushes and detaches a drive that
    is already attached first. ``readonly`` makes this mount read-only, and
    only this one (the next attach, by the lab or a job, is read-write again);
    a drive attached already stays as it is: the state's ``read_only`` says
    which it is. Returns the drive's state.
    """
    ws = _workspace_for(mountpoint)
    target = Path(mountpoint).expanduser()
    if not target.is_absolute():
        target = Path.cwd() / target
    if target.resolve() != ws.drive.resolve() and target.resolve() != ws.root.resolve():
        raise MountError(
            f"{mountpoint} is not the drive folder of the workspace at {ws.root}",
            hint=f"mount {ws.drive} (the drive is always attached at the workspace's drive/)",
        )
    if force_remount:
        detach(ws, timeout=timeout)
    return attach(ws, read_only_once=readonly, timeout=timeout)


def flush_and_unmount(timeout: float = 120.0, *, mountpoint: str | Path | None = None) -> FlushResult:
    """Wait for every pending upload, then detach the drive (Colab's ``drive.flush_and_unmount``)."""
    ws = _workspace_for(mountpoint)
    return detach(ws, timeout=timeout)

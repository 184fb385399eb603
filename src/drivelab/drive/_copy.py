"""A folder of the drive copied to local disk, straight from where it is kept.

Reading thousands of small files through a cloud mount is slow (each open is
a round trip); rclone copies them from the remote itself, several at once,
and checks each file against the remote's hash (MD5 where the remote has one)
and size as it lands. For the local drive the source is the folder itself.

::

    listing = drive.list_folder(ws, "dataset/MNIST")   # what the drive holds there
    drive.copy_folder(ws, "dataset/MNIST", target)      # target made equal to it, verified

Neither flushes the mount: call :func:`drivelab.drive.flush` first when files
written through it must be included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from drivelab.drive._config import DrivePaths, load_settings
from drivelab.drive._rclone import Rclone, classify_failure, find_rclone
from drivelab.errors import DriveError
from drivelab.workspace import Workspace

__all__ = ["FolderListing", "has_remote", "list_folder", "copy_folder"]


@dataclass(frozen=True)
class FolderListing:
    """The files of a drive folder: ``files[relative path] = (size, md5 or None)``."""

    source: str
    """Where they are kept: ``remote:root/path``, or a local folder."""
    files: dict[str, tuple[int, str | None]]
    hash: str
    """``md5`` when the source offers MD5 for every file (then copies were verified with it), else ``size``."""


def has_remote(ws: Workspace) -> bool:
    """Whether the workspace's drive is a remote (else the plain local folder ``drive/``)."""
    return load_settings(ws).remote is not None


def _source(ws: Workspace, rel: str) -> tuple[str, Path | None]:
    settings = load_settings(ws)
    if settings.remote is None:
        folder = ws.drive / rel
        if not folder.is_dir():
            raise DriveError(f"{folder} is not a folder", hint="fetch the dataset first, e.g. `drivelab data get mnist`")
        return str(folder), None
    entry = settings.remotes[settings.remote]
    return f"{entry.spec.rstrip('/')}/{rel}" if entry.root else f"{entry.spec}{rel}", DrivePaths(ws).rclone_conf


def _offers_md5(rclone: Rclone, source: str, conf: Path | None) -> bool:
    done = rclone.run(["backend", "features", source.split(":")[0] + ":" if ":" in source else source], config=conf, timeout=60)
    try:
        return "md5" in [h.lower() for h in json.loads(done.stdout).get("Hashes", [])]
    except (ValueError, AttributeError):
        return False


def list_folder(ws: Workspace, rel: str) -> FolderListing:
    """Every file under the drive folder ``rel`` (e.g. ``dataset/MNIST``), with size and MD5.

    One recursive listing of the remote. Raises :class:`DriveError` (a
    :class:`RemoteError` with rclone's reason) when it cannot be listed.
    """
    source, conf = _source(ws, rel)
    rclone = find_rclone()
    done = rclone.run(["lsjson", "-R", "--fast-list", "--files-only", "--hash", "--hash-type", "md5", source], config=conf, timeout=3600)
    if done.returncode != 0:
        raise classify_failure(done.stderr, what=f"cannot list {source}")
    files = {e["Path"]: (int(e["Size"]), (e.get("Hashes") or {}).get("md5") or None) for e in json.loads(done.stdout or "[]")}
    return FolderListing(source, files, "md5" if files and all(md5 for _, md5 in files.values()) else "size")


def copy_folder(ws: Workspace, rel: str, target: Path, *, transfers: int = 8, exclude: tuple[str, ...] = ()) -> FolderListing:
    """Make ``target`` hold exactly the drive folder ``rel``, each file verified as it lands.

    rclone syncs from the remote, ``transfers`` files at once, and fails the
    copy of a file whose hash (MD5 where the remote offers it) or size does
    not match; files under ``target`` that are not in the drive folder are
    deleted, except those matching ``exclude`` (rclone filter patterns).
    Returns the source and the hash the copies were checked with (``files``
    is left empty: the caller reads what landed). Raises :class:`DriveError`
    when the copy fails.
    """
    source, conf = _source(ws, rel)
    rclone = find_rclone()
    target.mkdir(parents=True, exist_ok=True)
    args = ["sync", source, str(target), "--transfers", str(transfers), "--checkers", str(max(transfers, 8)),
            "--fast-list", "--retries", "3", "--low-level-retries", "5"]  # fmt: skip
    for pattern in exclude:
        args += ["--exclude", pattern]
    done = rclone.run(args, config=conf, timeout=24 * 3600)
    if done.returncode != 0:
        raise classify_failure(done.stderr, what=f"cannot copy {source} to {target}")
    return FolderListing(source, {}, "md5" if _offers_md5(rclone, source, conf) else "size")

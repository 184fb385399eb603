"""Stage a dataset folder from the drive to fast local scratch, verified.

Reading thousands of small files through a cloud mount is slow (each open is a
round trip); rclone copies them straight from the remote with many transfers
at once. The copy lands in ``.drivelab/scratch/<path in the drive>``, every
file is checked against the remote's size and hash (MD5 where the remote has
one), and a manifest is written last. A later call reuses the copy when the
manifest still matches the remote and the files on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivelab import drive
from drivelab._atomic import made_folder, write_text_atomic
from drivelab.errors import DriveError, StageError
from drivelab.workspace import Workspace

__all__ = ["StageResult", "stage_dataset", "staged_dataset_root", "SCRATCH_ENV"]

SCRATCH_ENV = "DRIVELAB_SCRATCH"
MANIFEST = ".drivelab-stage.json"


@dataclass
class StageResult:
    source: str
    """Where the files came from: ``remote:root/path``, or a local folder."""
    path: Path
    """The staged copy."""
    files: int
    bytes: int
    reused: bool
    seconds: float
    hash: str
    """The hash the files were verified with (``md5``), or ``size`` when the remote has none."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": str(self.path),
            "files": self.files,
            "bytes": self.bytes,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "hash": self.hash,
        }


def _relative(ws: Workspace, path: Path | str) -> str:
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else [ws.drive / p, Path.cwd() / p, ws.root / p]
    if p.parts and p.parts[0] == "drive" and not p.is_absolute():
        candidates.insert(0, ws.root / p)  # "drive/dataset/X" names the drive's dataset/X
    for candidate in candidates:
        try:
            rel = candidate.resolve().relative_to(ws.drive.resolve())
        except ValueError:
            continue
        if str(rel) in (".", ""):
            break
        return rel.as_posix()
    raise StageError(f"{path} is not a folder inside the drive ({ws.drive})", hint="pass a path like dataset/MNIST or drive/dataset/MNIST")


def _scratch_root(ws: Workspace) -> Path:
    env = os.environ.get(SCRATCH_ENV)
    return Path(env).expanduser() / ws.root.name if env else ws.state / "scratch"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_matches(dest: Path, listing: dict[str, tuple[int, str | None]]) -> bool:
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files", {})
    if set(files) != set(listing):
        return False
    for name, (size, md5) in listing.items():
        recorded = files[name]
        if recorded["size"] != size or (md5 and recorded.get("md5") != md5):
            return False
        try:
            st = os.stat(dest / name)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != recorded["mtime_ns"]:
            return False
    return True


def _listing(target: Path, hash: str | None) -> dict[str, dict[str, Any]]:
    """Size, MD5 (where the remote has MD5s to match) and modification time of every file copied to ``target``."""
    files: dict[str, dict[str, Any]] = {}
    for dirpath, _dirs, names in os.walk(target):
        for name in names:
            local = Path(dirpath) / name
            key = local.relative_to(target).as_posix()
            if key == MANIFEST:
                continue
            st = local.stat()
            files[key] = {"size": st.st_size, "md5": _md5(local) if hash == "md5" else None, "mtime_ns": st.st_mtime_ns}
    return files


def stage_dataset(ws: Workspace, path: Path | str, *, dest: Path | None = None, transfers: int = 8) -> StageResult:
    """Copy the drive folder ``path`` (e.g. ``dataset/MNIST``) to local scratch, verified.

    Pending uploads of the mount land first; then rclone copies the files
    straight from the remote, several at once, and checks each one against
    the remote's hash (MD5 where the remote has one) and size as it lands
    (:func:`drivelab.drive.copy_folder`); the manifest written last records
    size, MD5 and modification time of every file. An earlier copy is reused
    when its manifest still matches the remote's listing and the files on
    disk. Raises :class:`StageError` when the folder cannot be listed or
    copied, or a file does not match (the copy is then not marked valid).
    """
    start = time.monotonic()
    rel = _relative(ws, path)
    target = dest or _scratch_root(ws) / rel
    try:
        # Files written through the mount may still wait in its upload queue: land them first.
        drive.flush(ws)
        if (target / MANIFEST).is_file():
            listing = drive.list_folder(ws, rel)
            if _manifest_matches(target, listing.files):
                total = sum(size for size, _ in listing.files.values())
                return StageResult(listing.source, target, len(listing.files), total, True, time.monotonic() - start, listing.hash)
        with made_folder(target):  # a failed first copy leaves no empty scratch folder
            with contextlib.suppress(FileNotFoundError):
                (target / MANIFEST).unlink()  # invalid until verified again
            copied = drive.copy_folder(ws, rel, target, transfers=transfers, exclude=(MANIFEST,))
            files = _listing(target, copied.hash)
            if not files:
                raise StageError(f"{copied.source} holds no files", hint="fetch the dataset into the drive first")
    except DriveError as exc:
        raise StageError(exc.message, hint=exc.hint) from exc
    write_text_atomic(target / MANIFEST, json.dumps({"source": copied.source, "hash": copied.hash, "files": files}) + "\n")
    total = sum(f["size"] for f in files.values())
    return StageResult(copied.source, target, len(files), total, False, time.monotonic() - start, copied.hash)


def staged_dataset_root(dataset_root: Path | str, subfolder: str) -> Path:
    """Where a trainer should read ``dataset_root/subfolder`` from.

    When ``dataset_root`` is in a workspace whose drive is a remote, the
    folder is staged to local scratch and the scratch root returned (it has
    the same layout); otherwise ``dataset_root`` itself.
    """
    from drivelab.errors import WorkspaceError
    from drivelab.workspace import find_workspace

    root = Path(dataset_root)
    try:
        ws = find_workspace(root)
    except WorkspaceError:
        return root
    if not drive.has_remote(ws):
        return root
    try:
        rel = root.resolve().relative_to(ws.drive.resolve())
    except ValueError:
        return root
    result = stage_dataset(ws, rel / subfolder)
    return result.path.parent if subfolder else result.path

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

from drivelab._atomic import write_text_atomic
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


def _listing(rclone: Any, source: str, conf: Path | None) -> dict[str, tuple[int, str | None]]:
    from drivelab.drive._rclone import classify_failure

    done = rclone.run(["lsjson", "-R", "--files-only", "--hash", "--hash-type", "md5", source], config=conf, timeout=3600)
    if done.returncode != 0:
        err = classify_failure(done.stderr, what=f"cannot list {source}")
        raise StageError(err.message, hint=err.hint)
    entries = json.loads(done.stdout or "[]")
    return {e["Path"]: (int(e["Size"]), (e.get("Hashes") or {}).get("md5") or None) for e in entries}


def _source(ws: Workspace, rel: str) -> tuple[str, Path | None]:
    from drivelab.drive._config import DrivePaths, load_settings

    settings = load_settings(ws)
    if settings.remote is None:
        folder = ws.drive / rel
        if not folder.is_dir():
            raise StageError(f"{folder} is not a folder", hint="fetch the dataset first, e.g. `drivelab data get mnist`")
        return str(folder), None
    entry = settings.remotes[settings.remote]
    return f"{entry.spec.rstrip('/')}/{rel}" if entry.root else f"{entry.spec}{rel}", DrivePaths(ws).rclone_conf


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


def stage_dataset(ws: Workspace, path: Path | str, *, dest: Path | None = None, transfers: int = 16) -> StageResult:
    """Copy the drive folder ``path`` (e.g. ``dataset/MNIST``) to local scratch, verified.

    Reuses an earlier copy that still matches. Raises :class:`StageError` when
    the folder cannot be listed or a file does not match after copying (the
    copy is then not marked valid).
    """
    from drivelab.drive._rclone import classify_failure, find_rclone

    start = time.monotonic()
    rel = _relative(ws, path)
    source, conf = _source(ws, rel)
    target = dest or _scratch_root(ws) / rel
    try:
        rclone = find_rclone()
    except DriveError as exc:
        raise StageError(exc.message, hint=exc.hint) from exc
    listing = _listing(rclone, source, conf)
    if not listing:
        raise StageError(f"{source} holds no files", hint="fetch the dataset into the drive first")
    hash_name = "md5" if all(md5 for _, md5 in listing.values()) else "size"
    total = sum(size for size, _ in listing.values())
    if _manifest_matches(target, listing):
        return StageResult(source, target, len(listing), total, True, time.monotonic() - start, hash_name)
    target.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (target / MANIFEST).unlink()  # invalid until verified again
    done = rclone.run(
        ["sync", source, str(target), "--transfers", str(transfers), "--checkers", str(transfers),
         "--exclude", MANIFEST, "--retries", "3", "--low-level-retries", "5"],
        config=conf,
        timeout=24 * 3600,
    )
    if done.returncode != 0:
        err = classify_failure(done.stderr, what=f"cannot copy {source} to {target}")
        raise StageError(err.message, hint=err.hint)
    files: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    for name, (size, md5) in listing.items():
        local = target / name
        try:
            st = os.stat(local)
        except OSError:
            bad.append(f"{name} (missing)")
            continue
        actual = _md5(local) if md5 else None
        if st.st_size != size or (md5 and actual != md5):
            bad.append(f"{name} (size {st.st_size} vs {size}" + (f", md5 {actual} vs {md5})" if md5 else ")"))
            continue
        files[name] = {"size": size, "md5": md5, "mtime_ns": st.st_mtime_ns}
    if bad:
        shown = "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise StageError(f"{len(bad)} staged files do not match {source}: {shown}", hint="run `drivelab data stage` again; if it persists, check the remote")
    write_text_atomic(target / MANIFEST, json.dumps({"source": source, "hash": hash_name, "files": files}) + "\n")
    return StageResult(source, target, len(listing), total, False, time.monotonic() - start, hash_name)


def staged_dataset_root(dataset_root: Path | str, subfolder: str) -> Path:
    """Where a trainer should read ``dataset_root/subfolder`` from.

    When ``dataset_root`` is in a workspace whose drive is a remote, the
    folder is staged to local scratch and the scratch root returned (it has
    the same layout); otherwise ``dataset_root`` itself.
    """
    from drivelab.drive._config import load_settings
    from drivelab.errors import WorkspaceError
    from drivelab.workspace import find_workspace

    root = Path(dataset_root)
    try:
        ws = find_workspace(root)
    except WorkspaceError:
        return root
    if load_settings(ws).remote is None:
        return root
    try:
        rel = root.resolve().relative_to(ws.drive.resolve())
    except ValueError:
        return root
    result = stage_dataset(ws, rel / subfolder)
    return result.path.parent if subfolder else result.path

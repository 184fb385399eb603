"""Sync mode: ``drive/`` is a local folder kept in step with the remote by ``rclone bisync``.

For machines without FUSE. The first sync pulls the remote into ``drive/``;
later ones push and pull changes. A file changed on both sides is never
overwritten: both versions are kept side by side as ``name.local.ext`` and
``name.remote.ext`` and reported. Files that a sync would delete or replace in
``drive/`` are moved to ``.drivelab/drive/sync-backup/`` first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import time
from typing import Any

from drivelab.drive._config import DrivePaths, load_settings, now_iso
from drivelab.drive._keeper import Keeper
from drivelab.drive._rclone import classify_failure, find_rclone
from drivelab.drive._results import FlushResult
from drivelab.errors import FlushError
from drivelab.workspace import Workspace

__all__ = ["SyncKeeper", "sync_now"]

_RENAMED = re.compile(r"Renaming Path[12] copy\s+-\s+(?P<path>.+)$")


@contextlib.contextmanager
def _locked(paths: DrivePaths, timeout: float | None):
    paths.host_folder.mkdir(parents=True, exist_ok=True)
    with open(paths.sync_lock, "a") as fh:
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timeout is not None and time.monotonic() - start > timeout:
                    raise FlushError(f"another sync of the drive has been running for over {timeout:.0f} s", hint="try again later") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _bisync(ws: Workspace, *, resync: bool) -> tuple[dict[str, Any], list[str]]:
    paths = DrivePaths(ws)
    settings = load_settings(ws)
    entry = settings.remotes[settings.remote or ""]
    rclone = find_rclone()
    ws.drive.mkdir(parents=True, exist_ok=True)
    args = [
        "bisync", str(ws.drive), entry.spec,
        "--workdir", str(paths.bisync),
        "--conflict-resolve", "none", "--conflict-loser", "pathname",
        "--conflict-suffix", "local,remote", "--suffix-keep-extension",
        "--backup-dir1", str(paths.sync_backup),
        "--create-empty-src-dirs", "--resilient", "--recover", "--force",
        "--use-json-log", "-v", "--color", "NEVER", "--stats-log-level", "NOTICE",
        "--retries", "3", "--low-level-retries", "3", "--contimeout", "10s", "--timeout", "60s",
    ]
    if resync:
        # Files on both sides at a resync: the newer one wins (the older local one goes to sync-backup/).
        args += ["--resync", "--resync-mode", "newer"]
    done = rclone.run(args, config=paths.rclone_conf, timeout=24 * 3600)
    stats: dict[str, Any] = {}
    conflicts: list[str] = []
    drive_prefix = str(ws.drive).rstrip("/") + "/"
    for line in done.stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "stats" in record:
            stats = record["stats"]
        match = _RENAMED.search(str(record.get("msg", "")))
        if match:
            path = match["path"].strip()
            for prefix in (drive_prefix, entry.spec.rstrip("/") + "/", entry.spec):
                if path.startswith(prefix):
                    rel = path[len(prefix):]
                    if rel not in conflicts:
                        conflicts.append(rel)
                    break
    if done.returncode != 0:
        text = done.stderr.lower()
        # bisync refuses to trust an empty earlier listing (one side was empty at the last sync),
        # and asks for a resync after some failures: both are safe to resync from here.
        if not resync and ("empty prior path" in text or "must run --resync" in text):
            return _bisync(ws, resync=True)
        raise classify_failure(_messages(done.stderr), what=f"syncing drive/ with {entry.spec}")
    return stats, conflicts


def _messages(stderr: str) -> str:
    out = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(record.get("msg", "")))
        if record.get("level") in ("error", "critical") and "aborted" not in msg:
            out.append(msg)
    return "\n".join(out) or stderr


def _needs_resync(paths: DrivePaths) -> bool:
    return not any(paths.bisync.glob("*.lst")) if paths.bisync.is_dir() else True


def sync_now(ws: Workspace, *, timeout: float | None = None) -> FlushResult:
    """Push local changes to the remote and pull remote ones, now; conflicts are kept and reported."""
    paths = DrivePaths(ws)
    start = time.monotonic()
    with _locked(paths, timeout):
        stats, conflicts = _bisync(ws, resync=_needs_resync(paths))
    return FlushResult(
        files=int(stats.get("transfers", 0)),
        bytes=int(stats.get("bytes", 0)),
        seconds=time.monotonic() - start,
        mode="sync",
        conflicts=conflicts,
    )


class SyncKeeper(Keeper):
    def sync(self, *, first: bool = False) -> None:
        with _locked(self.paths, None):
            stats, conflicts = _bisync(self.ws, resync=first or _needs_resync(self.paths))
        known = list(self.state.conflicts)
        known += [c for c in conflicts if c not in known]
        self.save(last_sync=now_iso(), conflicts=known)
        if stats.get("transfers") or conflicts:
            self.event("synced", files=int(stats.get("transfers", 0)), bytes=int(stats.get("bytes", 0)), conflicts=conflicts)

    def run(self) -> int:
        self.sync(first=True)
        self.event("attached", spec=self.entry.spec, mode="sync")
        self.save(phase="live")
        interval = max(1.0, float(self.settings.sync_interval))
        while not self.stop.wait(interval):
            try:
                self.sync()
                if self.state.phase != "live":
                    self.save(phase="live", error=None)
            except Exception as exc:  # keep syncing later; the next round retries
                message = getattr(exc, "message", str(exc))
                self.save(phase="down", error=message)
                self.event("sync-failed", reason=message)
        try:
            self.sync()
        except Exception as exc:
            self.event("sync-failed", reason=getattr(exc, "message", str(exc)))
            self.save(phase="detached", error=getattr(exc, "message", str(exc)))
            return 1
        self.save(phase="detached")
        self.event("detached")
        return 0

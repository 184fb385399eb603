"""Flushing: returns once every pending upload has landed on the remote."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from drivelab.drive._config import DrivePaths, WatchdogState, load_settings
from drivelab.drive._host import rclone_alive
from drivelab.drive._rc import RcClient, RcUnavailable
from drivelab.drive._results import FlushResult
from drivelab.drive._status import remember_stats, watchdog_state
from drivelab.drive._sync import sync_now
from drivelab.errors import FlushError, RcloneError
from drivelab.workspace import Workspace

__all__ = ["flush", "flush_mount", "uploads_phrase", "cache_shown", "pending_in_cache"]


STALL = 600.0
"""Seconds without an upload landing after which a flush without a timeout gives up (nothing is discarded)."""


def flush(
    ws: Workspace, *, timeout: float | None = None, on_progress: Callable[[int, int], None] | None = None, stall: float = STALL,
) -> FlushResult:
    """Return once every pending upload has landed on the remote.

    In mount mode rclone's VFS is asked to upload queued files now, then
    polled until nothing is in progress and nothing is queued. In sync mode
    the changes are pushed (and pulled) with bisync. ``on_progress(pending,
    landed)`` is called while waiting. Raises :class:`FlushError` if uploads
    are still pending after ``timeout`` seconds, or (without a timeout) when
    none landed for ``stall`` seconds; nothing is discarded. Its words say
    what happened: rclone not answering, or rclone live and the remote taking
    none of the uploads (then ``remote_silent``: they land once it answers).
    """
    settings = load_settings(ws)
    if settings.remote is None:
        return FlushResult(mode="local")
    state = watchdog_state(ws)
    if state is None:
        return FlushResult(mode=settings.mode)
    if state.mode == "sync":
        return sync_now(ws, timeout=timeout)
    return flush_mount(ws, state, timeout, on_progress, stall=stall)


def flush_mount(
    ws: Workspace, state: WatchdogState, timeout: float | None, on_progress: Callable[[int, int], None] | None, *,
    queued_now: bool = False, stall: float = STALL,
) -> FlushResult:
    """Wait until nothing is queued or uploading; with ``queued_now``, only until what is queued now has landed
    (another command may keep writing: its own flush waits for its files)."""
    start = time.monotonic()
    targets: set[str] | None = None
    client = RcClient.from_state(state)
    if client is None:
        raise FlushError("the drive's watchdog has no rc address yet", hint="wait for `drivelab drive status` to say live, then flush again")
    paths = DrivePaths(ws)
    kept_in = cache_shown(paths)

    def call_timeout(longest: float) -> float:
        # No single rc call may outlast the flush's own deadline (a hung rclone accepts and never answers).
        if timeout is None:
            return longest
        return max(0.5, min(longest, timeout - (time.monotonic() - start)))

    seen: dict[str, int] = {}
    remembered: dict[str, Any] | None = None
    stalled_since = time.monotonic()
    last_pending = -1
    while True:
        try:
            queue = client.call("vfs/queue", timeout=call_timeout(10.0)).get("queue") or []
            stats = client.call("vfs/stats", timeout=call_timeout(10.0)).get("diskCache", {})
        except RcloneError as exc:
            fresh = watchdog_state(ws)
            if fresh is None and not rclone_alive(ws, state.rclone_pid):
                raise FlushError("the drive was detached while flushing", hint=f"files not yet uploaded stay in {kept_in} and upload at the next mount") from exc
            client = RcClient.from_state(fresh or state) or client
            waited = time.monotonic() - (stalled_since if timeout is None else start)
            if waited > (stall if timeout is None else timeout):
                pending = pending_in_cache(paths)
                raise FlushError(
                    f"rclone did not answer for {waited:.0f} s while flushing ({exc.message}); {uploads_phrase(pending)} pending",
                    hint=f"nothing was discarded: they are kept in {kept_in} and upload once rclone answers, or at the next mount; "
                    "see `drivelab drive status`",
                    pending=pending,
                ) from exc
            time.sleep(0.2)
            continue
        if stats != remembered:  # for `drivelab drive status`, when rclone stops answering it
            remember_stats(paths, stats)
            remembered = stats
        waiting = []
        for item in queue:
            name = str(item.get("name", ""))
            seen[name] = max(int(item.get("size", 0) or 0), seen.get(name, 0))
            if not item.get("uploading") and float(item.get("expiry", 0) or 0) > 0:
                waiting.append(item.get("id"))
        if waiting:
            _upload_now(client, waiting, call_timeout(30.0))
        pending = int(stats.get("uploadsQueued", 0)) + int(stats.get("uploadsInProgress", 0))
        if queued_now:
            names_now = {str(item.get("name", "")) for item in queue}
            if targets is None:
                targets = names_now
            pending = len(targets & names_now)
        if on_progress:
            on_progress(pending, max(0, len(seen) - pending))
        if pending == 0 and (queued_now or not queue):
            break
        if pending != last_pending:
            last_pending = pending
            stalled_since = time.monotonic()
        now = time.monotonic()
        silent = now - stalled_since
        if (timeout is not None and now - start > timeout) or (timeout is None and silent > stall):
            names = ", ".join(str(i.get("name")) for i in queue[:10]) + (" ..." if len(queue) > 10 else "")
            # rclone answers: the mount is live. Nothing landing for a while means the remote takes nothing.
            remote_silent = silent >= min(stall, 10.0)
            why = (
                f"the remote ({state.spec or 'the drive'}) is not answering: none landed for {silent:.0f} s while the mount stayed live"
                if remote_silent else "still uploading"
            )
            raise FlushError(
                f"{uploads_phrase(pending)} pending after {now - start:.0f} s: {why} ({names})",
                hint=f"nothing was discarded: they are kept in {kept_in} and land when the remote answers "
                f"(or at the next mount); `drivelab drive status` shows the count, {paths.rclone_log} why",
                pending=pending, remote_silent=remote_silent,
            )
        time.sleep(min(0.25, 0.02 + 0.01 * len(queue)))
    return FlushResult(
        files=len(seen), bytes=sum(seen.values()), seconds=time.monotonic() - start, mode="mount", names=sorted(seen),
    )


def _upload_now(client: RcClient, ids: list[Any], timeout: float = 30.0) -> None:
    """Make queued files eligible for upload now instead of after the write-back delay."""
    # A large negative expiry means "as soon as possible"; one batch call for all of them.
    batch = [{"_path": "vfs/queue-set-expiry", "id": i, "expiry": -1e9} for i in ids]
    try:
        client.call("job/batch", {"inputs": batch}, timeout=timeout)
        return
    except RcUnavailable:
        return  # no answer: the flush's loop notices and retries
    except RcloneError:
        pass  # an rclone without job/batch: one call each
    for i in ids:
        with contextlib.suppress(RcloneError):  # an item that began uploading has left the queue
            client.call("vfs/queue-set-expiry", {"id": i, "expiry": -1e9}, timeout=min(timeout, 10.0))


def uploads_phrase(n: int) -> str:
    return f"{n} upload{'' if n == 1 else 's'}"


def cache_shown(where: DrivePaths | Workspace) -> str:
    """Where this machine keeps the drive's pending uploads, as messages name it: its VFS cache on local disk."""
    paths = where if isinstance(where, DrivePaths) else DrivePaths(where)
    return str(paths.cache)


def pending_in_cache(paths: DrivePaths) -> int:
    """Files in this host's VFS cache not yet uploaded (marked dirty in its metadata), read from disk.

    An earlier drivelab's cache in the workspace (``.drivelab/drive/cache``, not yet moved here at an attach) counts too.
    """
    return sum(_dirty(root / "vfsMeta") for root in (paths.cache, paths.legacy_cache, paths.host_folder / "legacy-cache"))


def _dirty(meta_root: os.PathLike[str] | str) -> int:
    count = 0
    for dirpath, _dirs, names in os.walk(meta_root):
        for name in names:
            try:
                with open(os.path.join(dirpath, name), "rb") as fh:
                    meta = json.loads(fh.read())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("Dirty"):
                count += 1
    return count

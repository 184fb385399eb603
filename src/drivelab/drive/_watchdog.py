"""The watchdog: keeps a remote drive attached at ``drive/`` until told to stop.

Started by :func:`drivelab.drive.attach` as its own session (it outlives the
command that started it)::

    python -m drivelab.drive._watchdog WORKSPACE '{"mode": "mount", ...}'

In ``mount`` mode it runs ``rclone mount`` with the VFS cache and an rc API on
a loopback port (user and password in ``state.json``, mode 0600). Twice a
second it checks that rclone is alive and that the mount point answers; when
either fails (rclone killed, "Transport endpoint is not connected", or no
answer for :data:`HUNG_AFTER` seconds, or ``$DRIVELAB_DRIVE_HUNG_AFTER``,
from a hung rclone) it records the loss, kills rclone (a hung one at once, so
nobody waits on it any longer), lazily unmounts the dead mount, starts rclone
again on the same cache -- so uploads that were queued resume -- and records
the remount. A remount that fails is tried again after 0.5 s, 1 s, 2 s, ...
up to 30 s; once :data:`REMOUNT_TRIES` tries in a row have failed and
:data:`REMOUNT_WINDOW` seconds have passed since the loss, the watchdog
records phase ``failed`` with the last error and a hint, and from then on
tries once every :data:`FAILED_RETRY` seconds (each bound has its
``$DRIVELAB_DRIVE_...`` variable). It stays, keeping ``drive/`` from taking
writes, and brings the drive back by itself once the remote answers again.

Its files are this host's (``.drivelab/drive/hosts/<host>/``) and its VFS
cache lies on this machine's own disk (``DrivePaths.cache``): a watchdog on
another machine sharing the workspace keeps its own. Its logs
(``events.jsonl``, ``watchdog.log``, ``rclone.log``) are kept under
``$DRIVELAB_DRIVE_LOG_MAX`` bytes each (10 MiB): past it, the oldest half is cut.

While the drive is down, writes to ``drive/`` fail with an error; none is
silently dropped. The folder beneath the mount point is kept from taking
writes (:mod:`drivelab.drive._guard`); files found there anyway before a
remount (no protection possible) are moved to this host's ``stray/``. A
file that was still open for writing when rclone died holds partial bytes in
the cache, which rclone would upload when it starts again: before each start
such items are moved out of the cache to this host's ``incomplete/``, so
the remote keeps its previous version and nothing half-written is published.

In ``sync`` mode it pulls the remote into ``drive/`` once, then pushes and
pulls changes every ``sync_interval`` seconds with bisync.

SIGTERM, SIGINT or SIGHUP: flush, unmount, exit.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from drivelab._background import stop
from drivelab.drive import _guard
from drivelab.drive._config import DriveSettings, load_settings
from drivelab.drive._flush import flush_mount
from drivelab.drive._host import clear_dead_mount, mount_broken, unmount
from drivelab.drive._keeper import Keeper, env_number, log
from drivelab.drive._landed import apply_corrections, due_corrections
from drivelab.drive._local import ensure_folders
from drivelab.drive._rc import RcClient
from drivelab.drive._rclone import Rclone, classify_failure, find_rclone
from drivelab.drive._sync import SyncKeeper
from drivelab.errors import DrivelabError, RcloneError
from drivelab.workspace import Workspace

CHECK_EVERY = 0.5
CORRECT_EVERY = 2.0
"""Seconds between looks for files to write once the uploads have landed (see ``_landed``)."""
HUNG_AFTER = 10.0
"""Seconds without an answer from the mount point before rclone counts as hung (``$DRIVELAB_DRIVE_HUNG_AFTER``)."""
HUNG_AFTER_ENV = "DRIVELAB_DRIVE_HUNG_AFTER"
START_TIMEOUT = 60.0
REMOUNT_KILL_GRACE = 2.0
"""Seconds a dead or hung rclone gets to exit on SIGTERM before SIGKILL, when it is replaced."""
REMOUNT_TRIES = 10
"""Failed remounts in a row, at least, before the drive counts as failed (``$DRIVELAB_DRIVE_REMOUNT_TRIES``)."""
REMOUNT_WINDOW = 600.0
"""Seconds since the loss, at least, before the drive counts as failed (``$DRIVELAB_DRIVE_REMOUNT_WINDOW``)."""
FAILED_RETRY = 600.0
"""Seconds between tries once the drive counts as failed (``$DRIVELAB_DRIVE_FAILED_RETRY``)."""


def hung_after() -> float:
    """:data:`HUNG_AFTER`, or the seconds ``$DRIVELAB_DRIVE_HUNG_AFTER`` gives (at least 1)."""
    return env_number(HUNG_AFTER_ENV, HUNG_AFTER, 1.0)


def _stat_within(path: Path, timeout: float) -> str:
    """``ok``, ``broken`` (ENOTCONN, EIO) or ``hung`` (no answer within ``timeout``).

    A hung FUSE server blocks ``stat`` until it is killed, so the call runs in a
    thread that is left behind (it returns once the dead mount is cleaned up).
    """
    result: list[str] = []

    def probe() -> None:
        result.append("broken" if mount_broken(path) else "ok")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else "hung"


def _go_time_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of a Go RFC 3339 time (``2026-01-02T03:04:05.123456789+01:00``), None if unreadable."""
    head, _, rest = text.partition(".")
    digits = "".join(c for c in rest[:9] if c.isdigit()) if rest else ""
    zone = rest[len(digits):] if rest else ""
    try:
        whole = _dt.datetime.fromisoformat(head + zone)
    except ValueError:
        return None
    return int(whole.timestamp()) * 1_000_000_000 + int(digits.ljust(9, "0") or 0)


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MountKeeper(Keeper):
    def __init__(self, ws: Workspace, settings: DriveSettings, request: dict[str, Any]) -> None:
        super().__init__(ws, settings, request)
        self.rclone: Rclone = find_rclone()
        self.proc: subprocess.Popen[bytes] | None = None
        self.hung_after = hung_after()
        self.give_up_tries = int(env_number("DRIVELAB_DRIVE_REMOUNT_TRIES", REMOUNT_TRIES, 1))
        self.give_up_after = env_number("DRIVELAB_DRIVE_REMOUNT_WINDOW", REMOUNT_WINDOW, 0.0)
        self.failed_retry = env_number("DRIVELAB_DRIVE_FAILED_RETRY", FAILED_RETRY, 1.0)
        self.guard: _guard.Guard | None = None
        self.log_offset = 0
        self.rc = RcClient(f"http://127.0.0.1:{_free_port()}/", "drivelab", secrets.token_urlsafe(24))
        self.next_correction = 0.0

    def argv(self) -> list[str]:
        s = self.settings
        args = [
            "mount", self.entry.spec, str(self.ws.drive),
            "--cache-dir", str(self.paths.cache),
            "--vfs-cache-mode", s.cache_mode,
            "--vfs-cache-max-size", s.cache_max_size,
            "--dir-cache-time", s.dir_cache_time,
            # The kernel keeps a file's size and mtime this long without asking rclone. Longer times
            # measured no faster for warm reads (each open still costs open/read/flush/release round
            # trips to rclone), while a file another machine changed could read truncated for that long.
            "--attr-timeout", "1s",
            # A folder on a bucket (S3, GCS, B2, Azure, Swift; Dropbox too) has no date: rclone shows its
            # --default-time, 2000-01-01 unless told, which the lab's file browser shows as "26y ago".
            # 0s: the time this rclone started, i.e. when the drive was attached (docs/drive.md#dates).
            "--default-time", "0s",
            # Uploads of the write-back queue run this many at once (rclone's default, 4, makes a flush of many small files slow).
            "--transfers", "16",
            "--rc", "--rc-addr", self.rc.url.removeprefix("http://").rstrip("/"),
            "--log-file", str(self.paths.rclone_log), "--log-level", "INFO",
            "--devname", f"drivelab:{self.entry.spec}",
        ]
        if s.read_only:
            args.append("--read-only")
        if self.request.get("allow_non_empty"):
            args.append("--allow-non-empty")
        return self.rclone.argv(*args, config=self.paths.rclone_conf)

    def protect(self) -> None:
        """Keep the folder beneath the mount point from taking writes; say once which protection is in force."""
        if os.path.ismount(self.ws.drive) or mount_broken(self.ws.drive):
            return
        guard = _guard.protect(self.ws.drive)
        if guard != self.guard:
            self.guard = guard
            line = _guard.describe(guard.kind, guard.why)
            notices = [n for n in self.state.notices if not n.startswith("drive/ beneath the mount")]
            self.save(protection=guard.kind, notices=[*notices, line])
            if guard.kind == "none":
                self.event("unprotected", reason=guard.why)

    def set_aside_strays(self) -> None:
        """Files beneath the mount point that were not there by choice go to this host's ``stray/<time>/``."""
        if self.request.get("allow_non_empty") or os.path.ismount(self.ws.drive):
            return
        try:
            entries = list(self.ws.drive.iterdir())
        except OSError:
            return
        if not entries:
            return
        target = self.paths.stray / _stamp()
        target.mkdir(parents=True, exist_ok=True)
        relock = _guard.release(self.ws.drive)
        try:
            for entry in entries:
                os.replace(entry, target / entry.name)
        finally:
            if relock:
                _guard.protect(self.ws.drive)
        names = sorted(e.name for e in entries)
        self.event("stray", files=names, kept_in=str(target))
        self.save(notices=[*self.state.notices, f"{len(names)} entries written beneath drive/ while the mount was down are kept in {target}"])

    def quarantine_incomplete(self) -> None:
        """Move out of the cache the dirty items that were still open for writing when rclone died.

        rclone saves an item's metadata when it is first written and again when
        it is closed, and on close sets the cache file's mtime to the metadata's
        ModTime. An item whose file size or mtime differs from its metadata was
        written after its last close: rclone would upload those partial bytes
        when it starts again.
        """
        meta_root, data_root = self.paths.cache / "vfsMeta", self.paths.cache / "vfs"
        if not meta_root.is_dir():
            return
        moved: list[str] = []
        target = self.paths.incomplete / _stamp()
        for meta in sorted(p for p in meta_root.rglob("*") if p.is_file()):
            rel = meta.relative_to(meta_root)
            data = data_root / rel
            try:
                info = json.loads(meta.read_text())
                st = data.stat()
            except (OSError, ValueError):
                continue
            if not isinstance(info, dict) or not info.get("Dirty"):
                continue
            closed_at = _go_time_ns(str(info.get("ModTime", "")))
            if st.st_size == info.get("Size") and closed_at is not None and abs(st.st_mtime_ns - closed_at) <= 2000:
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(data, target / rel)
            with contextlib.suppress(OSError):
                os.replace(meta, target / rel.with_name(rel.name + ".rclone-meta.json"))
            moved.append(str(rel))
        if moved:
            self.event("incomplete", files=moved, kept_in=str(target))

    def start_rclone(self) -> None:
        self.quarantine_incomplete()
        self.set_aside_strays()
        self.protect()
        env = {**os.environ, "RCLONE_RC_USER": self.rc.user, "RCLONE_RC_PASS": self.rc.password}
        env = {k: v for k, v in env.items() if not k.startswith("RCLONE_CONFIG")}
        self.paths.host_folder.mkdir(parents=True, exist_ok=True)
        self.paths.cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cap_logs(self.paths.rclone_log)
        with contextlib.suppress(OSError):
            self.log_offset = self.paths.rclone_log.stat().st_size
        with open(self.paths.rclone_log, "ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        self.save(rclone_pid=self.proc.pid, rc={"url": self.rc.url, "user": self.rc.user, "password": self.rc.password})

    def healthy(self) -> str | None:
        """None when the mount is live, else why not."""
        if self.proc is None:
            return "rclone is not running"
        code = self.proc.poll()
        if code is not None:
            return f"rclone exited with code {code}"
        answer = _stat_within(self.ws.drive, self.hung_after)
        if answer == "hung":
            return f"the mount point did not answer for {self.hung_after:g} s (rclone hung)"
        if answer == "broken":
            return "the mount point answers 'Transport endpoint is not connected'"
        if not os.path.ismount(self.ws.drive):
            return "drive/ is no longer a mount point"
        return None

    def wait_live(self, timeout: float) -> str | None:
        """None once rclone's mount is live, else the reason it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop.is_set():
            assert self.proc is not None
            if self.proc.poll() is not None:
                return self._reason()
            if os.path.ismount(self.ws.drive) and self.rc.alive():
                if not self.settings.read_only:
                    # Object stores keep no empty folders: colab/, dataset/, runs/ are always there.
                    with contextlib.suppress(OSError):
                        ensure_folders(self.ws.drive)
                return None
            time.sleep(0.05)
        return f"the mount did not come up within {timeout:.0f} s"

    def _reason(self) -> str:
        text = ""
        with contextlib.suppress(OSError), open(self.paths.rclone_log, "rb") as fh:
            fh.seek(self.log_offset)
            text = fh.read().decode("utf-8", "replace")[-4000:]
        lines = [line for line in text.strip().splitlines() if "ERROR" in line or "CRITICAL" in line or "Fatal" in line]
        if "directory already mounted" in text or "is not empty" in text:
            return "drive/ is already mounted or not empty"
        return classify_failure("\n".join(lines) or text, what="rclone mount").message

    def kill_rclone(self, grace: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            stop(self.proc.pid, grace=grace)
            self.proc.wait()

    def run(self) -> int:
        self.save()  # whoever finds drive/ protected also finds this live watchdog
        self.start_rclone()
        why = self.wait_live(START_TIMEOUT)
        if why is not None:
            self.kill_rclone()
            clear_dead_mount(self.ws.drive)
            self.release()
            self.save(phase="failed", error=f"cannot mount {self.entry.spec}: {why}", hint=f"see {self.paths.rclone_log}")
            self.event("failed", reason=why)
            return 1
        # The event first: whoever sees the drive live also finds why in events.jsonl.
        self.event("mounted", spec=self.entry.spec, pid=self.proc.pid if self.proc else None)
        self.save(phase="live")
        while not self.stop.wait(CHECK_EVERY):
            self.log_offset = max(0, self.log_offset - self.cap_logs(self.paths.rclone_log))
            why = self.healthy()
            if why is None:
                self.correct_when_landed()
                continue
            self.save(phase="down", error=why)
            self.event("lost", reason=why)
            self.remount(time.monotonic())
        return self.shutdown()

    def correct_when_landed(self) -> None:
        """Write the files kept for when the uploads have landed (``_landed``), once rclone reports none pending."""
        now = time.monotonic()
        if now < self.next_correction:
            return
        self.next_correction = now + CORRECT_EVERY
        records = due_corrections(self.ws)
        if not records:
            return
        try:
            stats = self.rc.call("vfs/stats", timeout=2.0).get("diskCache", {})
        except RcloneError:
            return
        if int(stats.get("uploadsQueued", 0)) + int(stats.get("uploadsInProgress", 0)) == 0:
            done = apply_corrections(self.ws, records)
            if done:
                self.event("corrected", files=done)

    def remount(self, lost_at: float) -> None:
        """Start rclone again until it mounts (or the watchdog is stopped); past the bounds, the drive is ``failed``."""
        backoff, tries = 0.5, 0
        while not self.stop.is_set():
            self.kill_rclone(grace=REMOUNT_KILL_GRACE)
            clear_dead_mount(self.ws.drive, keep_guard=True)
            self.start_rclone()
            failed = self.wait_live(START_TIMEOUT)
            down_for = time.monotonic() - lost_at
            if failed is None:
                self.event("remounted", seconds=round(down_for, 3), pid=self.proc.pid if self.proc else None)
                self.save(phase="live", error=None, hint=None, remounts=self.state.remounts + 1)
                return
            tries += 1
            if self.state.phase == "failed":
                self.event("remount-failed", reason=failed, retry_in=self.failed_retry)
            elif tries >= self.give_up_tries and down_for >= self.give_up_after:
                self.save(
                    phase="failed",
                    error=f"cannot remount {self.entry.spec} after {tries} tries over {down_for:.0f} s: {failed}",
                    hint=f"see {self.paths.rclone_log}; the watchdog tries again every {self.failed_retry:g} s, and meanwhile "
                    "writes to drive/ fail with an error; `drivelab drive detach` gives back the local drive",
                )  # fmt: skip
                self.event("failed", reason=failed, tries=tries, seconds=round(down_for, 3), retry_in=self.failed_retry)
            else:
                self.event("remount-failed", reason=failed, retry_in=backoff)
            self.stop.wait(self.failed_retry if self.state.phase == "failed" else backoff)
            backoff = min(backoff * 2, 30.0)

    def shutdown(self) -> int:
        code = 0
        if self.proc and self.proc.poll() is None and self.state.phase == "live":
            try:
                result = flush_mount(self.ws, self.state, None, None)
                if result.files:
                    self.event("flushed", files=result.files, bytes=result.bytes)
            except DrivelabError as exc:
                code = 1
                self.event("flush-failed", reason=exc.message)
        if not unmount(self.ws.drive):
            with contextlib.suppress(RcloneError):
                self.rc.call("core/quit", timeout=5.0)
        self.kill_rclone()
        clear_dead_mount(self.ws.drive)
        self.release()
        self.save(phase="detached", rclone_pid=None, rc=None)
        self.event("unmounted")
        return code

    def release(self) -> None:
        """drive/ is the plain local folder again: it takes writes."""
        if not os.path.ismount(self.ws.drive):
            _guard.release(self.ws.drive)


def main(argv: list[str]) -> int:
    root, request = Path(argv[0]), json.loads(argv[1])
    ws = Workspace(root)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per rc call otherwise
    settings = load_settings(ws)
    if request.get("read_only"):  # this mount only: the workspace's setting is left as it is
        settings.read_only = True
    if request["mode"] == "sync":
        keeper: Keeper = SyncKeeper(ws, settings, request)
    else:
        keeper = MountKeeper(ws, settings, request)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: detaching", signum)
        keeper.stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        return keeper.run()  # type: ignore[attr-defined,no-any-return]
    except DrivelabError as exc:
        keeper.save(phase="failed", error=exc.message, hint=exc.hint)
        keeper.event("failed", reason=exc.message)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

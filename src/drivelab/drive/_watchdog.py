"""The watchdog: keeps a remote drive attached at ``drive/`` until told to stop.

Started by :func:`drivelab.drive.attach` as its own session (it outlives the
command that started it)::

    python -m drivelab.drive._watchdog WORKSPACE '{"mode": "mount", ...}'

In ``mount`` mode it runs ``rclone mount`` with the VFS cache and an rc API on
a loopback port (user and password in ``state.json``, mode 0600). Twice a
second it checks that rclone is alive and that the mount point answers; when
either fails (rclone killed, "Transport endpoint is not connected", or no
answer for :data:`HUNG_AFTER` seconds from a hung rclone) it records
the loss, lazily unmounts the dead mount, starts rclone again on the same
cache -- so uploads that were queued resume -- and records the remount.
While the drive is down, writes to ``drive/`` fail with an error; none is
silently dropped.

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

from drivelab.drive._attach import _ensure_folders, _fusermount_unmount, _mount_broken
from drivelab.drive._config import DrivePaths, DriveSettings, load_settings, write_private_json
from drivelab.drive._rc import RcClient
from drivelab.drive._rclone import Rclone, classify_failure, find_rclone
from drivelab.errors import DrivelabError, RcloneError
from drivelab.workspace import Workspace

log = logging.getLogger("drivelab.drive.watchdog")

CHECK_EVERY = 0.5
HUNG_AFTER = 10.0
START_TIMEOUT = 60.0


def _stat_within(path: Path, timeout: float) -> str:
    """``ok``, ``broken`` (ENOTCONN, EIO) or ``hung`` (no answer within ``timeout``).

    A hung FUSE server blocks ``stat`` until it is killed, so the call runs in a
    thread that is left behind (it returns once the dead mount is cleaned up).
    """
    result: list[str] = []

    def probe() -> None:
        result.append("broken" if _mount_broken(path) else "ok")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else "hung"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Keeper:
    def __init__(self, ws: Workspace, settings: DriveSettings, request: dict[str, Any]) -> None:
        self.ws = ws
        self.paths = DrivePaths(ws)
        self.settings = settings
        self.entry = settings.remotes[settings.remote or ""]
        self.request = request
        self.stop = threading.Event()
        self.state: dict[str, Any] = {
            "watchdog_pid": os.getpid(),
            "mode": request["mode"],
            "remote": settings.remote,
            "spec": self.entry.spec,
            "phase": "starting",
            "started": _now(),
            "remounts": 0,
            "notices": request.get("notices", []),
        }

    def save(self, **changes: Any) -> None:
        self.state.update(changes)
        write_private_json(self.paths.state, self.state)

    def event(self, kind: str, **detail: Any) -> None:
        record = {"time": _now(), "event": kind, **detail}
        log.info("%s %s", kind, detail)
        with open(self.paths.events, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


class MountKeeper(Keeper):
    def __init__(self, ws: Workspace, settings: DriveSettings, request: dict[str, Any]) -> None:
        super().__init__(ws, settings, request)
        self.rclone: Rclone = find_rclone()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_offset = 0
        self.rc = RcClient(f"http://127.0.0.1:{_free_port()}/", "drivelab", secrets.token_urlsafe(24))

    def argv(self) -> list[str]:
        s = self.settings
        args = [
            "mount", self.entry.spec, str(self.ws.drive),
            "--cache-dir", str(self.paths.cache),
            "--vfs-cache-mode", s.cache_mode,
            "--vfs-cache-max-size", s.cache_max_size,
            "--dir-cache-time", s.dir_cache_time,
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

    def start_rclone(self) -> None:
        env = {**os.environ, "RCLONE_RC_USER": self.rc.user, "RCLONE_RC_PASS": self.rc.password}
        env = {k: v for k, v in env.items() if not k.startswith("RCLONE_CONFIG")}
        self.paths.folder.mkdir(parents=True, exist_ok=True)
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
        answer = _stat_within(self.ws.drive, HUNG_AFTER)
        if answer == "hung":
            return f"the mount point did not answer for {HUNG_AFTER:.0f} s (rclone hung)"
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
                        _ensure_folders(self.ws.drive)
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

    def kill_rclone(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def run(self) -> int:
        self.start_rclone()
        why = self.wait_live(START_TIMEOUT)
        if why is not None:
            self.kill_rclone()
            if _mount_broken(self.ws.drive) or os.path.ismount(self.ws.drive):
                _fusermount_unmount(self.ws.drive, lazy=True)
            self.save(phase="failed", error=f"cannot mount {self.entry.spec}: {why}", hint=f"see {self.paths.rclone_log}")
            self.event("failed", reason=why)
            return 1
        # The event first: whoever sees the drive live also finds why in events.jsonl.
        self.event("mounted", spec=self.entry.spec, pid=self.proc.pid if self.proc else None)
        self.save(phase="live")
        backoff = 0.5
        while not self.stop.wait(CHECK_EVERY):
            why = self.healthy()
            if why is None:
                continue
            lost_at = time.monotonic()
            self.save(phase="down", error=why)
            self.event("lost", reason=why)
            while not self.stop.is_set():
                self.kill_rclone()
                if _mount_broken(self.ws.drive) or os.path.ismount(self.ws.drive):
                    _fusermount_unmount(self.ws.drive, lazy=True)
                self.start_rclone()
                failed = self.wait_live(START_TIMEOUT)
                if failed is None:
                    self.event("remounted", seconds=round(time.monotonic() - lost_at, 3), pid=self.proc.pid if self.proc else None)
                    self.save(phase="live", error=None, remounts=self.state["remounts"] + 1)
                    backoff = 0.5
                    break
                self.event("remount-failed", reason=failed, retry_in=backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        return self.shutdown()

    def shutdown(self) -> int:
        code = 0
        if self.proc and self.proc.poll() is None and self.state.get("phase") == "live":
            try:
                from drivelab.drive._attach import _flush_mount

                result = _flush_mount(self.ws, self.state, None, None)
                if result.files:
                    self.event("flushed", files=result.files, bytes=result.bytes)
            except DrivelabError as exc:
                code = 1
                self.event("flush-failed", reason=exc.message)
        if not _fusermount_unmount(self.ws.drive):
            with contextlib.suppress(RcloneError):
                self.rc.call("core/quit", timeout=5.0)
        self.kill_rclone()
        if _mount_broken(self.ws.drive) or os.path.ismount(self.ws.drive):
            _fusermount_unmount(self.ws.drive, lazy=True)
        self.save(phase="detached", rclone_pid=None, rc=None)
        self.event("unmounted")
        return code


def main(argv: list[str]) -> int:
    root, request = Path(argv[0]), json.loads(argv[1])
    ws = Workspace(root)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per rc call otherwise
    settings = load_settings(ws)
    if request["mode"] == "sync":
        from drivelab.drive._sync import SyncKeeper

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

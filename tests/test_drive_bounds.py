"""The drive's bounds: the local files it mounts over stay untouched while the mount is down; a
remount that keeps failing ends in phase ``failed``; its logs stay under a cap.

Real parts only: ``rclone serve s3`` on loopback, real FUSE mounts, the real watchdog, real signals.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivelab import drive
from drivelab.drive import _guard
from drivelab.drive._keeper import cap_file
from drivelab.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import skip_or_fail  # noqa: E402
from _waiting import wait_until  # noqa: E402
from rclone_servers import S3Server  # noqa: E402
from test_drive import bucket_name, connect_s3, wait_for_remount, ws  # noqa: E402,F401
from test_drive_faults import _fuse_and_flag  # noqa: E402,F401  (FUSE and the immutable flag, or skip)


def events(ws: Workspace) -> list[dict]:
    path = drive.DrivePaths(ws).events
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (p.read_text() if p.is_file() else "/") for p in sorted(folder.rglob("*"))}


# --- mount-over: the folder beneath, sub-folders included -------------------------------------


def test_mount_over_keeps_every_folder_beneath_from_taking_writes_while_the_mount_is_down(ws: Workspace, s3: S3Server) -> None:
    connect_s3(ws, s3, bucket_name())
    (ws.drive / "sub" / "deeper").mkdir(parents=True)
    (ws.drive / "sub" / "old.txt").write_text("local, mounted over")
    (ws.drive / "sub" / "deeper" / "d.txt").write_text("deeper")
    (ws.drive / "top.txt").write_text("top")
    before = tree(ws.drive)
    drive.attach(ws, "box", local_files="mount-over")
    state = drive.status(ws)

    # Hold the gap open: the watchdog frozen, rclone killed and its dead mount unmounted, as the watchdog does.
    os.kill(state.watchdog_pid, signal.SIGSTOP)
    try:
        os.kill(state.rclone_pid, signal.SIGKILL)
        wait_until("rclone gone", lambda: not Path(f"/proc/{state.rclone_pid}").exists() or "Z" in Path(f"/proc/{state.rclone_pid}/stat").read_text().split(")")[-1][:3], 10)
        subprocess.run(["fusermount3", "-uz", str(ws.drive)], check=True, timeout=30)
        assert not os.path.ismount(ws.drive)
        attempts = {
            "new file in a sub-folder": lambda: (ws.drive / "sub" / "x.txt").write_text("lost?"),
            "new file two deep": lambda: (ws.drive / "sub" / "deeper" / "y.txt").write_text("lost?"),
            "new folder in a sub-folder": lambda: (ws.drive / "sub" / "newdir").mkdir(),
            "overwrite of a file beneath": lambda: (ws.drive / "sub" / "old.txt").write_text("changed?"),
            "append to a file beneath": lambda: open(ws.drive / "top.txt", "a").write("more?"),
            "removal of a file beneath": lambda: (ws.drive / "sub" / "deeper" / "d.txt").unlink(),
            "new file in drive/": lambda: (ws.drive / "new.txt").write_text("lost?"),
        }
        landed = []
        for what, attempt in attempts.items():
            try:
                attempt()
                landed.append(what)
            except OSError:
                pass
        assert tree(ws.drive) == before, "nothing written during the gap lands beneath the mount point"
        assert not landed, f"these writes succeeded beneath the mount point: {landed}"
    finally:
        os.kill(state.watchdog_pid, signal.SIGCONT)
    wait_for_remount(ws, state.rclone_pid, within=20)
    drive.detach(ws, timeout=30)
    assert tree(ws.drive) == before
    assert _guard.is_protected(ws.drive / "sub") is None and _guard.is_protected(ws.drive / "sub" / "deeper") is None
    (ws.drive / "sub" / "deeper" / "after.txt").write_text("the local drive takes writes again, all the way down")
    (ws.drive / "sub" / "old.txt").write_text("and its files too")


# --- a remount that keeps failing --------------------------------------------------------------


def test_a_remount_that_keeps_failing_ends_in_phase_failed_and_comes_back_when_fixed(
    ws: Workspace, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIVELAB_DRIVE_REMOUNT_TRIES", "3")
    monkeypatch.setenv("DRIVELAB_DRIVE_REMOUNT_WINDOW", "1")
    monkeypatch.setenv("DRIVELAB_DRIVE_FAILED_RETRY", "3")
    connect_s3(ws, s3, bucket_name())
    drive.attach(ws, "box", local_files="set-aside")
    state = drive.status(ws)
    conf = ws.state / "rclone.conf"
    good = conf.read_text()
    conf.write_text(good.replace("type = s3", "type = nosuchbackend"))  # every start of rclone now fails at once

    os.kill(state.rclone_pid, signal.SIGKILL)
    killed = time.monotonic()
    failed = wait_until("phase failed", lambda: (s := drive.status(ws)).phase == "failed" and s, 20)
    took = time.monotonic() - killed
    print(f"\nphase failed {took:.1f} s after the kill (3 tries, window 1 s)")
    assert "nosuchbackend" in (failed.error or ""), failed.error
    assert "3 tries" in failed.error
    kinds = [e["event"] for e in events(ws)]
    assert kinds.count("failed") == 1 and kinds.count("remount-failed") == 2, kinds
    assert failed.watchdog_pid == state.watchdog_pid, "the watchdog stays, keeping drive/ from taking writes"
    with pytest.raises(OSError):
        (ws.drive / "while-failed.txt").write_text("must not land beneath the mount point")

    # Slow cadence: at most one try per DRIVELAB_DRIVE_FAILED_RETRY seconds, no more busy retries.
    tries_then = kinds.count("remount-failed") + kinds.count("failed")
    time.sleep(2)
    kinds = [e["event"] for e in events(ws)]
    assert kinds.count("remount-failed") + kinds.count("failed") <= tries_then + 1

    conf.write_text(good)  # fixed: the next slow try mounts again
    back = wait_for_remount(ws, state.rclone_pid, within=15)
    print(f"live again {time.monotonic() - killed:.1f} s after the kill")
    assert back.phase == "live" and back.error is None
    drive.detach(ws, timeout=30)
    assert _guard.is_protected(ws.drive) is None


# --- logs under a cap ---------------------------------------------------------------------------


def test_a_log_fed_past_its_cap_stays_under_it_and_keeps_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    writer = subprocess.Popen(  # holds the file open with O_APPEND, as rclone and the watchdog do
        [sys.executable, "-c", "import sys,time\nfh=open(sys.argv[1],'a',buffering=1)\nfor i in range(4000):\n fh.write(f'line {i:05d} ' + 'x'*60 + '\\n')\n time.sleep(0.0002)\nfh.write('LAST LINE\\n')", str(log)],
    )
    try:
        while writer.poll() is None:
            cap_file(log, 20_000)
            time.sleep(0.01)
    finally:
        writer.wait()
    cap_file(log, 20_000)
    text = log.read_text()
    assert len(text.encode()) <= 20_000
    lines = text.splitlines()
    assert lines[-1] == "LAST LINE"
    assert lines[-2].startswith("line 03999 ")
    assert all(line == "LAST LINE" or line.startswith(("line ", "[drivelab:")) and (not line.startswith("line ") or len(line) == 71) for line in lines), "only whole lines"


def test_the_watchdog_keeps_its_logs_under_the_cap(ws: Workspace, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    cap = 30_000
    monkeypatch.setenv("DRIVELAB_DRIVE_LOG_MAX", str(cap))
    connect_s3(ws, s3, bucket_name())
    folder = drive.DrivePaths(ws).host_folder
    folder.mkdir(parents=True, exist_ok=True)
    logs = {"rclone.log": b"old rclone line\n", "watchdog.log": b"old watchdog line\n", "events.jsonl": b'{"time": "2000-01-01T00:00:00Z", "event": "old"}\n'}
    for name, line in logs.items():
        (folder / name).write_bytes(line * (200_000 // len(line)))
    drive.attach(ws, "box", local_files="set-aside")
    state = drive.status(ws)
    os.kill(state.rclone_pid, signal.SIGKILL)
    wait_for_remount(ws, state.rclone_pid, within=20)
    for name in logs:
        wait_until(f"{name} under its cap", lambda name=name: (folder / name).stat().st_size <= cap, 5)
    assert [e["event"] for e in events(ws)][-2:] == ["lost", "remounted"], "the newest events are kept"
    assert drive.status(ws).last_event["event"] == "remounted"
    assert (folder / "rclone.log").read_bytes().splitlines()[-1] != b"old rclone line", "rclone's newest lines are kept"
    drive.detach(ws, timeout=30)
    for name in logs:
        assert (folder / name).stat().st_size <= cap + 4096, name
    with contextlib.suppress(OSError):
        print({name: (folder / name).stat().st_size for name in logs})

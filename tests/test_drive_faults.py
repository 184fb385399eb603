"""The mounted drive under faults: rclone SIGKILLed under a writer, killed under an open file, hung.

Real parts only: ``rclone serve s3`` on loopback, real FUSE mounts, real
signals, writers and readers in their own processes. What must hold: a write
either fails with an error or lands on the server with its bytes, never in
the folder beneath the mount point; a file still being written when rclone
dies is never published half-written; a hung rclone is replaced and nobody
waits on it forever.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drivelab import drive
from drivelab._background import pid_alive
from drivelab.drive import _guard
from drivelab.drive._host import mount_broken
from drivelab.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import skip_or_fail  # noqa: E402
from _waiting import wait_until  # noqa: E402
from rclone_servers import S3Server  # noqa: E402
from test_drive import FUSE_OK, FUSE_WHY, bucket_name, connect_s3, wait_for_remount, ws  # noqa: E402,F401

WRITE_BACK = "2m"
"""Uploads wait this long in the cache (rclone reads ``$RCLONE_VFS_WRITE_BACK``): what was written before a kill is still pending."""

WRITER = r"""
import hashlib, json, os, sys, time
folder, seconds, every = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
out = open(sys.argv[4], "a", buffering=1)
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    name = f"w{i:04d}.bin"
    data = (name + ":").encode() * (50 + i % 400)
    try:
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)
        out.write(json.dumps({"name": name, "ok": True, "md5": hashlib.md5(data).hexdigest()}) + "\n")
    except OSError as exc:
        out.write(json.dumps({"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
    i += 1
    time.sleep(every)
"""

OPEN_WRITER = r"""
import json, os, sys, time
path, out = sys.argv[1], open(sys.argv[2], "a", buffering=1)
chunk, written, stage = b"x" * 65536, 0, "open"
try:
    fh = open(path, "wb", buffering=0)
    stage = "write"
    for _ in range(2000):
        fh.write(chunk)
        written += len(chunk)
        out.write(json.dumps({"written": written}) + "\n")
        time.sleep(0.02)
    stage = "flush"
    os.fsync(fh.fileno())
    stage = "close"
    fh.close()
    out.write(json.dumps({"done": True, "written": written}) + "\n")
except OSError as exc:
    with __import__("contextlib").suppress(OSError):
        fh.close()
    out.write(json.dumps({"done": False, "stage": stage, "written": written, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
"""

READER = r"""
import json, os, sys, time
start = time.monotonic()
results = []
for how, path in (("stat", sys.argv[1]), ("read", sys.argv[2])):
    try:
        if how == "stat":
            os.stat(path)
        else:
            with open(path, "rb") as fh:
                fh.read()
        results.append({"how": how, "ok": True, "after": time.monotonic() - start})
    except OSError as exc:
        results.append({"how": how, "ok": False, "error": str(exc), "after": time.monotonic() - start})
print(json.dumps(results))
"""


@pytest.fixture(autouse=True)
def _fuse_and_flag(tmp_path: Path) -> None:
    if not FUSE_OK:
        skip_or_fail(f"no FUSE here: {FUSE_WHY}")
    probe = tmp_path / "flag-probe"
    probe.mkdir()
    try:
        if _guard.protect(probe).kind != "immutable":
            skip_or_fail(f"the immutable flag cannot be set on {tmp_path} here (needs root and ext4, xfs, btrfs or tmpfs)")
    finally:
        _guard.release(probe)


@pytest.fixture
def pending_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCLONE_VFS_WRITE_BACK", WRITE_BACK)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events(ws: Workspace) -> list[dict[str, Any]]:
    return lines(drive.DrivePaths(ws).events)


def assert_bare_folder_clean(ws: Workspace, *names: str) -> None:
    """After detach: ``drive/`` is the plain folder again, holds none of ``names`` and takes writes."""
    assert not os.path.ismount(ws.drive)
    beneath = sorted(p.name for p in ws.drive.iterdir())
    assert not set(beneath) & set(names), f"written beneath the mount point: {beneath}"
    assert not [n for n in beneath if n.startswith("w") and n.endswith(".bin")], beneath
    assert _guard.is_protected(ws.drive) is None
    probe = ws.drive / "writable-again.txt"
    probe.write_text("the local folder takes writes once the remote is detached")
    probe.unlink()


# --- rclone SIGKILLed ---------------------------------------------------------------------


def test_rclone_killed_under_a_writer_loses_nothing_and_writes_nothing_beneath(
    ws: Workspace, s3: S3Server, pending_env: None, tmp_path: Path
) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="set-aside")
    assert state.live and state.rclone_pid
    protection = " ".join(drive.status(ws).notices)
    (ws.drive / "a.txt").write_text("pending in the cache when rclone dies")
    time.sleep(1.0)
    assert not (backing / "a.txt").exists(), "a.txt must still be pending (long write-back)"

    report = tmp_path / "writer.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(ws.drive), "20", "0.05", str(report)])
    try:
        wait_until("the writer's first 20 writes", lambda: sum(r["ok"] for r in lines(report)) >= 20, within=15)
        old_pid = state.rclone_pid
        os.kill(old_pid, signal.SIGKILL)
        killed = time.monotonic()
        now = wait_for_remount(ws, old_pid, within=5)
        assert time.monotonic() - killed < 5
        assert now.remounts == 1
        writer.wait(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
    results = lines(report)
    ok = {r["name"]: r["md5"] for r in results if r["ok"]}
    failed = [r for r in results if not r["ok"]]
    assert failed, "some writes must have met the dead mount"
    assert len(ok) > 100, f"the writer kept writing after the remount: {len(ok)} writes landed"
    kinds = [json.loads(line)["event"] for line in (drive.DrivePaths(ws).events).read_text().splitlines()]
    assert kinds[-3:] == ["mounted", "lost", "remounted"]

    drive.detach(ws, timeout=120)
    assert_bare_folder_clean(ws, "a.txt", *ok)
    assert "immutable" in protection, "drive status says which protection is in force"
    assert (backing / "a.txt").read_text() == "pending in the cache when rclone dies"
    on_server = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in backing.glob("w*.bin")}
    missing = sorted(set(ok) - set(on_server))
    assert not missing, f"{len(missing)} writes reported OK are not on the server: {missing[:10]}"
    wrong = [n for n, h in ok.items() if on_server[n] != h]
    assert not wrong, f"wrong bytes on the server: {wrong[:10]}"
    extra = sorted(set(on_server) - set(ok))
    for name in extra:  # a write that failed may be on the server only whole
        i = int(name[1:5])
        assert (backing / name).read_bytes() == (name + ":").encode() * (50 + i % 400), f"{name} is on the server half-written"


def test_file_open_across_the_kill_is_never_published_half_written(
    ws: Workspace, s3: S3Server, pending_env: None, tmp_path: Path
) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="set-aside")
    (ws.drive / "closed.bin").write_bytes(b"c" * 200_000)  # complete, pending: it must reach the server
    report = tmp_path / "open-writer.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", OPEN_WRITER, str(ws.drive / "big.bin"), str(report)])
    try:
        wait_until("the open file's first chunks", lambda: any(r.get("written", 0) >= 5 * 65536 for r in lines(report)), within=15)
        os.kill(state.rclone_pid, signal.SIGKILL)
        writer.wait(timeout=30)
        wait_for_remount(ws, state.rclone_pid, within=5)
    finally:
        if writer.poll() is None:
            writer.kill()
    last = lines(report)[-1]
    assert last.get("done") is False, f"the writer must get an error: {last}"
    assert last["stage"] in ("write", "flush", "close")

    drive.flush(ws, timeout=60)
    drive.detach(ws, timeout=60)
    assert (backing / "closed.bin").read_bytes() == b"c" * 200_000
    assert not (backing / "big.bin").exists(), f"half-written big.bin published: {(backing / 'big.bin').stat().st_size} bytes"
    kept = [e for e in events(ws) if e["event"] == "incomplete"]
    assert kept and "big.bin" in " ".join(kept[-1]["files"]), events(ws)[-5:]
    assert list(Path(kept[-1]["kept_in"]).rglob("big.bin")), "the partial bytes are kept locally, not lost"
    assert_bare_folder_clean(ws, "big.bin", "closed.bin")


# --- rclone hung ------------------------------------------------------------------------------


def test_hung_rclone_is_replaced_and_blocked_readers_get_an_answer(
    ws: Workspace, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    hung_after = 2.0
    monkeypatch.setenv("DRIVELAB_DRIVE_HUNG_AFTER", str(hung_after))
    connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="set-aside")
    (ws.drive / "runs" / "read-me.txt").write_text("readable")
    # close() returns before FUSE delivers the release that makes rclone record the file as
    # closed; a file rclone still counts as open when it dies is kept aside, not published.
    drive.flush(ws, timeout=30)
    old_pid = state.rclone_pid
    assert old_pid
    os.kill(old_pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        reader = subprocess.run(
            [sys.executable, "-c", READER, str(ws.drive / "dataset" / "never-looked-up"), str(ws.drive / "runs" / "read-me.txt")],
            capture_output=True, text=True, timeout=60,
        )
        answered = time.monotonic() - stopped
        now = wait_for_remount(ws, old_pid, within=hung_after + 10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old_pid, signal.SIGCONT)
    assert reader.returncode == 0, reader.stderr
    assert answered < hung_after + 6, f"the reader waited {answered:.1f} s: {reader.stdout}"
    lost = [e for e in events(ws) if e["event"] == "lost"]
    assert lost and "did not answer" in lost[-1]["reason"]
    assert now.live
    assert (ws.drive / "runs" / "read-me.txt").read_text() == "readable"
    drive.detach(ws, timeout=60)
    assert_bare_folder_clean(ws, "runs")


# --- stale state ------------------------------------------------------------------------------


def test_a_killed_watchdog_leaves_no_immutable_drive_behind(ws: Workspace, s3: S3Server) -> None:
    connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="set-aside")
    assert state.watchdog_pid and state.rclone_pid
    os.kill(state.watchdog_pid, signal.SIGKILL)
    os.kill(state.rclone_pid, signal.SIGKILL)  # as after a reboot: nothing keeps the drive
    wait_until("the mount dead", lambda: mount_broken(ws.drive), within=10)
    # SIGKILL is delivered, not awaited: a watchdog blocked on the mount exits only once rclone is gone.
    wait_until("the watchdog gone", lambda: not pid_alive(state.watchdog_pid), within=10)
    now = drive.status(ws)  # notices the stale mount and the protected folder beneath it
    assert now.phase == "detached" and not os.path.ismount(ws.drive)
    assert _guard.is_protected(ws.drive) is None
    again = drive.attach(ws)
    assert again.live and "immutable" in " ".join(drive.status(ws).notices)
    drive.detach(ws)
    drive.remove_remote(ws, "box")
    assert (ws.drive / "colab" / "main.py").is_file(), "the set-aside local drive is back"
    assert_bare_folder_clean(ws)


def test_guard_protects_and_releases_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "drive"
    folder.mkdir()
    guard = _guard.protect(folder)
    assert guard.kind == "immutable" and _guard.is_protected(folder) == "immutable"
    assert "immutable" in _guard.describe(guard.kind)
    with pytest.raises(PermissionError):
        (folder / "x").write_text("refused")
    _guard.release(folder)
    _guard.release(folder)  # twice is harmless
    assert _guard.is_protected(folder) is None
    (folder / "x").write_text("taken")


def test_files_found_beneath_the_mount_point_are_kept_before_a_remount(ws: Workspace, s3: S3Server) -> None:
    from drivelab.drive._config import load_settings
    from drivelab.drive._watchdog import MountKeeper

    connect_s3(ws, s3, bucket_name())
    for child in list(ws.drive.iterdir()):  # the local drive, set aside as attach would
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    settings = load_settings(ws)
    settings.remote = "box"
    (ws.drive / "b.txt").write_text("written while the mount was down, with no protection")
    (ws.drive / "runs").mkdir()
    (ws.drive / "runs" / "c.txt").write_text("also")

    mount_over = MountKeeper(ws, settings, {"mode": "mount", "allow_non_empty": True})
    mount_over.set_aside_strays()
    assert (ws.drive / "b.txt").is_file(), "files mounted over by choice stay where they are"

    keeper = MountKeeper(ws, settings, {"mode": "mount"})
    keeper.set_aside_strays()
    assert list(ws.drive.iterdir()) == []
    kept = [e for e in events(ws) if e["event"] == "stray"][-1]
    assert kept["files"] == ["b.txt", "runs"]
    assert (Path(kept["kept_in"]) / "b.txt").read_text() == "written while the mount was down, with no protection"
    assert (Path(kept["kept_in"]) / "runs" / "c.txt").read_text() == "also"
    assert any("kept in" in n for n in keeper.state.notices)

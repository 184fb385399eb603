"""The drive against real servers on loopback: rclone's S3 and WebDAV servers, real FUSE mounts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivelab import drive
from drivelab.data import stage_dataset, staged_dataset_root
from drivelab.errors import MountError, RemoteError, StageError
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import in_ci  # noqa: E402
from rclone_servers import S3Server, WebdavServer  # noqa: E402

FUSE_OK, FUSE_WHY = drive.fuse_available()
# FUSE is optional on a user's machine (the drive falls back to sync); in CI it must be there,
# so the mount tests run and fail loudly rather than skip.
needs_fuse = pytest.mark.skipif(not FUSE_OK and not in_ci(), reason=f"no FUSE here: {FUSE_WHY}")
DRIVELAB = [sys.executable, "-m", "drivelab"]
SERVER_LISTING_CACHE = 0.7  # the test servers list their backing folder at most every 0.5 s


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cli(*args: str, check: bool = False, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*DRIVELAB, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws").workspace
    yield workspace
    leave_no_mount(workspace)


def leave_no_mount(ws: Workspace) -> None:
    """Never leave a mount or a watchdog behind, whatever the test did."""
    state = drive.status(ws)
    if state.watchdog_pid:
        try:
            drive.detach(ws, timeout=60)
        except drive.DriveError:
            os.kill(state.watchdog_pid, signal.SIGKILL)
    if os.path.ismount(ws.drive):
        subprocess.run(["fusermount3", "-uz", str(ws.drive)], check=False)
    # The VFS cache lies on this machine's disk, outside the test's folder.
    shutil.rmtree(drive.DrivePaths(ws).cache.parent, ignore_errors=True)


def bucket_name() -> str:
    return f"lab{random.randrange(10**8)}"


def wait_for_remount(ws: Workspace, old_pid: int, *, within: float) -> drive.DriveState:
    """The drive's state once the watchdog has it live on a new rclone."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        now = drive.status(ws)
        if now.live and now.rclone_pid != old_pid:
            return now
        time.sleep(0.1)
    pytest.fail(f"not remounted within {within:.0f} s: {drive.status(ws).to_dict()}")


def connect_s3(ws: Workspace, s3: S3Server, bucket: str, name: str = "box") -> Path:
    drive.connect(ws, name, "s3", s3.options(), root=bucket)
    return s3.backing / bucket


# --- connect, list, remove ---------------------------------------------------------------


def test_connect_keeps_the_secret_out_of_sight(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    assert backing.is_dir(), "the bucket is created at connect time"
    conf = ws.state / "rclone.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    listed = cli("drive", "list", "-w", str(ws.root), "--json", check=True)
    assert s3.secret_key not in listed.stdout and s3.access_key not in listed.stdout
    remotes = json.loads(listed.stdout)["remotes"]
    assert [(r["name"], r["type"], r["root"]) for r in remotes] == [("box", "s3", backing.name)]
    assert remotes[0]["details"]["endpoint"] == s3.url


def test_wrong_secret_is_refused_clearly_and_not_kept(ws: Workspace, s3: S3Server) -> None:
    done = cli(
        "drive", "connect", "box", "-t", "s3", "--endpoint", s3.url, "--access-key-id", s3.access_key,
        "--secret-access-key", "not-the-secret-at-all-0123456789", "--bucket", bucket_name(), "-w", str(ws.root),
    )
    assert done.returncode != 0
    assert "refused the credentials" in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr and "not-the-secret" not in done.stderr
    assert drive.list_remotes(ws) == []


def test_unreachable_endpoint_is_a_clear_error(ws: Workspace, s3: S3Server) -> None:
    from rclone_servers import free_port

    done = cli(
        "drive", "connect", "box", "-t", "s3", "--endpoint", f"http://127.0.0.1:{free_port()}", "--access-key-id", s3.access_key,
        "--secret-access-key", s3.secret_key, "--bucket", bucket_name(), "-w", str(ws.root),
    )
    assert done.returncode != 0
    assert "cannot be reached" in done.stderr and "Traceback" not in done.stderr
    assert drive.list_remotes(ws) == []


def test_unknown_remote_name_is_a_clear_error(ws: Workspace) -> None:
    done = cli("drive", "mount", "nowhere", "-w", str(ws.root))
    assert done.returncode != 0
    assert "no remote named 'nowhere'" in done.stderr and "drivelab drive connect" in done.stderr
    with pytest.raises(RemoteError):
        drive.remove_remote(ws, "nowhere")


def test_connect_needs_a_kind_and_valid_names(ws: Workspace) -> None:
    done = cli("drive", "connect", "box", "-w", str(ws.root))
    assert done.returncode != 0 and "--type" in done.stderr
    with pytest.raises(RemoteError, match="not a valid remote name"):
        drive.connect(ws, "-bad name", "local", root=str(ws.root))
    with pytest.raises(RemoteError, match="needs a bucket"):
        drive.connect(ws, "box", "s3", {"endpoint": "http://127.0.0.1:1"})
    with pytest.raises(RemoteError, match="sign-in"):
        drive.connect(ws, "g", "gdrive", {})


def test_connect_builds_the_remote_from_bucket_options_and_the_environment(
    ws: Workspace, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_secret = {k: v for k, v in s3.options().items() if k != "secret_access_key"}
    bucket = bucket_name()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    info = drive.connect(ws, "box", "s3", without_secret, bucket=bucket, root="lab", extra=["chunk_size=8Mi"])
    assert info.root == f"{bucket}/lab"
    assert (s3.backing / bucket).is_dir(), "the bucket is created at connect time"
    conf = (ws.state / "rclone.conf").read_text()
    assert "chunk_size = 8Mi" in conf

    with pytest.raises(RemoteError, match="not key=value"):
        drive.connect(ws, "box2", "s3", without_secret, bucket=bucket, extra=["chunk_size"])
    assert [r.name for r in drive.list_remotes(ws)] == ["box"]

    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    asked: list[str] = []
    drive.connect(ws, "box3", "s3", without_secret, bucket=bucket, ask_secret=lambda prompt: asked.append(prompt) or s3.secret_key)
    assert asked == ["S3 secret access key"]
    with pytest.raises(RemoteError, match="which kind of storage"):
        drive.connect(ws, "box4", None)


def test_webdav_remote_connects_and_lists(ws: Workspace, tmp_path: Path) -> None:
    server = WebdavServer(tmp_path / "dav").start()
    try:
        (server.backing / "hello.txt").write_text("hi")
        info = drive.connect(ws, "dav", "webdav", {"url": server.url, "user": server.user, "pass": server.password, "vendor": "other"})
        assert info.type == "webdav"
        conf = (ws.state / "rclone.conf").read_text()
        assert server.password not in conf, "rclone obscures passwords in its config"
        with pytest.raises(RemoteError, match="refused the credentials"):
            drive.connect(ws, "dav2", "webdav", {"url": server.url, "user": server.user, "pass": "wrong-password", "vendor": "other"})
    finally:
        server.close()


# --- mount ---------------------------------------------------------------------------------


@needs_fuse
def test_mount_round_trip_and_remote_changes_show_up(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="copy", dir_cache_time="1s")
    assert state.live and state.mode == "mount" and os.path.ismount(ws.drive)
    # The local drive's main.py went to the remote, and its local copy was kept aside.
    assert (backing / "colab" / "main.py").is_file()
    assert list((ws.state / "local-drive").glob("*/colab/main.py"))
    assert (ws.drive / "colab" / "main.py").read_bytes() == (backing / "colab" / "main.py").read_bytes()

    payload = os.urandom(300_000)
    (ws.drive / "runs" / "weights.bin").write_bytes(payload)
    result = drive.flush(ws)
    assert result.files >= 1 and result.bytes >= len(payload)
    assert (backing / "runs" / "weights.bin").read_bytes() == payload

    (backing / "dataset").mkdir(exist_ok=True)
    (backing / "dataset" / "placed-remotely.txt").write_text("from the server side")
    deadline = time.monotonic() + 15
    seen = ws.drive / "dataset" / "placed-remotely.txt"
    while time.monotonic() < deadline and not seen.exists():
        time.sleep(0.2)
    assert seen.read_text() == "from the server side"

    status = cli("drive", "status", "-w", str(ws.root), "--json", check=True)
    doc = json.loads(status.stdout)
    assert doc["live"] and doc["mode"] == "mount" and doc["remote"] == "box" and doc["pending_uploads"] == 0
    assert doc["last_event"]["event"] == "mounted"

    drive.detach(ws)
    assert not os.path.ismount(ws.drive)
    assert drive.status(ws).phase == "detached"


@needs_fuse
def test_unmount_right_after_500_writes_loses_nothing(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    drive.attach(ws, "box", local_files="set-aside")
    rng = random.Random(7)
    expected: dict[str, str] = {}
    folder = ws.drive / "runs" / "burst"
    folder.mkdir(parents=True)
    for i in range(500):
        size = rng.choice([0, 1, 100, 4096, 65_536, 300_000]) + rng.randrange(100)
        data = rng.randbytes(size)
        (folder / f"f{i:03d}.bin").write_bytes(data)
        expected[f"f{i:03d}.bin"] = hashlib.md5(data).hexdigest()
    done = cli("drive", "unmount", "-w", str(ws.root), "--json", check=True, timeout=300)
    flushed = json.loads(done.stdout)
    assert flushed["files"] > 0
    on_server = {p.name: md5(p) for p in (backing / "runs" / "burst").iterdir()}
    assert on_server == expected
    assert not os.path.ismount(ws.drive)


@needs_fuse
def test_watchdog_remounts_after_rclone_is_killed(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="set-aside")
    old_pid = state.rclone_pid
    assert old_pid
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    now = wait_for_remount(ws, old_pid, within=20)
    took = time.monotonic() - killed
    assert took < 15
    assert now.remounts == 1 and now.last_event["event"] == "remounted"
    (ws.drive / "runs" / "after.txt").write_text("written after the remount")
    drive.flush(ws)
    assert (backing / "runs" / "after.txt").read_text() == "written after the remount"
    events = [json.loads(line)["event"] for line in drive.DrivePaths(ws).events.read_text().splitlines()]
    assert events[-3:] == ["mounted", "lost", "remounted"]


@needs_fuse
@pytest.mark.slow
def test_watchdog_replaces_a_hung_rclone(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    state = drive.attach(ws, "box", local_files="set-aside")
    old_pid = state.rclone_pid
    assert old_pid
    os.kill(old_pid, signal.SIGSTOP)  # alive, but the mount no longer answers
    try:
        wait_for_remount(ws, old_pid, within=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old_pid, signal.SIGCONT)
    lost = [json.loads(line) for line in drive.DrivePaths(ws).events.read_text().splitlines()]
    assert [e["event"] for e in lost][-2:] == ["lost", "remounted"]
    assert "did not answer" in lost[-2]["reason"]
    (ws.drive / "runs" / "after-hang.txt").write_text("landed")
    drive.flush(ws)
    assert (backing / "runs" / "after-hang.txt").read_text() == "landed"


@needs_fuse
def test_non_empty_mount_point_is_refused_without_a_choice(ws: Workspace, s3: S3Server) -> None:
    connect_s3(ws, s3, bucket_name())
    done = cli("drive", "mount", "box", "-w", str(ws.root))
    assert done.returncode != 0
    assert "drive/ is not empty" in done.stderr and "--copy-local" in done.stderr
    assert (ws.drive / "colab" / "main.py").is_file(), "nothing was moved"
    assert not os.path.ismount(ws.drive)


def test_no_fuse_falls_back_to_sync_with_a_notice(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    done = cli("drive", "mount", "box", "--set-aside", "-w", str(ws.root), env={drive.NO_FUSE_ENV: "1"})
    assert done.returncode == 0, done.stderr
    assert "FUSE is not available" in done.stderr and "sync" in done.stderr
    assert drive.status(ws).mode == "sync" and not os.path.ismount(ws.drive)
    (ws.drive / "runs").mkdir(exist_ok=True)
    (ws.drive / "runs" / "x.txt").write_text("pushed")
    flushed = cli("drive", "unmount", "-w", str(ws.root), "--json", check=True)
    assert json.loads(flushed.stdout)["mode"] == "sync"
    assert (backing / "runs" / "x.txt").read_text() == "pushed"


# --- sync mode ---------------------------------------------------------------------------


def test_sync_round_trip_keeps_both_sides_of_a_conflict(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    (backing / "colab").mkdir(parents=True)
    (backing / "colab" / "notes.txt").write_text("v1")
    time.sleep(SERVER_LISTING_CACHE)
    state = drive.attach(ws, "box", mode="sync", local_files="set-aside")
    assert state.mode == "sync" and state.live
    local = ws.drive / "colab" / "notes.txt"
    assert local.read_text() == "v1", "the remote was pulled into drive/"

    (ws.drive / "runs" / "new.txt").write_text("made locally")
    (backing / "dataset").mkdir(exist_ok=True)
    (backing / "dataset" / "remote.txt").write_text("made remotely")
    time.sleep(SERVER_LISTING_CACHE)
    result = drive.flush(ws)
    assert result.mode == "sync" and result.conflicts == []
    assert (backing / "runs" / "new.txt").read_text() == "made locally"
    assert (ws.drive / "dataset" / "remote.txt").read_text() == "made remotely"

    # Both sides change the same file: neither version may be lost.
    local.write_text("local edit")
    time.sleep(1.1)
    (backing / "colab" / "notes.txt").write_text("remote edit, longer")
    time.sleep(SERVER_LISTING_CACHE)
    result = drive.flush(ws)
    assert sorted(result.conflicts) == ["colab/notes.local.txt", "colab/notes.remote.txt"]
    assert (ws.drive / "colab" / "notes.local.txt").read_text() == "local edit"
    assert (ws.drive / "colab" / "notes.remote.txt").read_text() == "remote edit, longer"
    assert (backing / "colab" / "notes.local.txt").read_text() == "local edit"
    assert (backing / "colab" / "notes.remote.txt").read_text() == "remote edit, longer"
    drive.detach(ws)
    assert drive.status(ws).phase == "detached"


# --- moving back, Colab-style API ---------------------------------------------------------


def test_removing_the_drive_remote_brings_the_local_drive_back(ws: Workspace, s3: S3Server) -> None:
    connect_s3(ws, s3, bucket_name())
    drive.attach(ws, "box", mode="sync", local_files="set-aside")
    assert not (ws.drive / "colab" / "main.py").exists()
    with pytest.raises(RemoteError, match="attached"):
        drive.remove_remote(ws, "box")
    drive.detach(ws)
    for child in ws.drive.iterdir():  # what sync mode pulled from the (empty) remote
        child.rmdir()
    drive.remove_remote(ws, "box")
    assert (ws.drive / "colab" / "main.py").is_file()
    assert drive.status(ws).mode == "local"


def test_colab_style_mount_on_the_local_drive(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ws.root)
    state = drive.mount("drive")
    assert state.mode == "local" and state.live
    assert drive.flush_and_unmount().files == 0
    with pytest.raises(MountError, match="not the drive folder"):
        drive.mount(str(ws.root / "drive" / "colab"))


# --- staging -----------------------------------------------------------------------------


def test_stage_copies_verifies_and_reuses(ws: Workspace, s3: S3Server) -> None:
    backing = connect_s3(ws, s3, bucket_name())
    folder = backing / "dataset" / "small"
    folder.mkdir(parents=True)
    rng = random.Random(3)
    for i in range(200):
        (folder / f"s{i:03d}.bin").write_bytes(rng.randbytes(rng.randrange(4096, 65536)))
    time.sleep(SERVER_LISTING_CACHE)
    drive.attach(ws, "box", mode="sync", local_files="set-aside")
    first = stage_dataset(ws, "dataset/small")
    assert not first.reused and first.files == 200 and first.hash == "md5"
    assert {p.name: md5(p) for p in first.path.glob("*.bin")} == {p.name: md5(p) for p in folder.iterdir()}
    again = stage_dataset(ws, "dataset/small")
    assert again.reused and again.path == first.path
    # A damaged staged copy is noticed and replaced.
    victim = first.path / "s007.bin"
    victim.write_bytes(b"garbage")
    third = stage_dataset(ws, "drive/dataset/small")
    assert not third.reused and md5(victim) == md5(folder / "s007.bin")
    # The trainer's view: a remote drive's dataset is read from the staged copy.
    root = staged_dataset_root(ws.dataset, "small")
    assert (root / "small" / "s007.bin").resolve() == victim.resolve()
    with pytest.raises(StageError, match="not a folder inside the drive"):
        stage_dataset(ws, "/etc")
    drive.detach(ws)


def test_staged_root_is_the_drive_itself_when_local(ws: Workspace) -> None:
    assert staged_dataset_root(ws.dataset, "MNIST") == ws.dataset


@needs_fuse
@pytest.mark.slow
def test_trainer_reads_mnist_from_the_staged_copy_of_a_mounted_drive(ws: Workspace, s3: S3Server, mnist_mirror) -> None:
    connect_s3(ws, s3, bucket_name())
    drive.attach(ws, "box", local_files="copy")
    done = subprocess.run(
        [sys.executable, str(ws.main_script), "--epochs", "1", "--limit-train", "2000", "--threads", "1", "--run", "staged", "--log-every", "0"],
        capture_output=True, text=True, timeout=600, cwd=ws.root, env={**os.environ, "DRIVELAB_MNIST_MIRROR": mnist_mirror.url},
    )
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout.lower()
    manifest = json.loads((ws.state / "scratch" / "dataset" / "MNIST" / ".drivelab-stage.json").read_text())
    assert manifest["hash"] == "md5" and len(manifest["files"]) == 4
    # The MNIST files reached the remote through the mount, and the staged copies match them.
    remote_raw = s3.backing / drive.list_remotes(ws)[0].root / "dataset" / "MNIST" / "raw"
    for name, entry in manifest["files"].items():
        assert md5(remote_raw / Path(name).name) == entry["md5"]
    drive.detach(ws)


def test_sftp_and_local_remotes_connect_and_check_credentials(ws: Workspace, tmp_path: Path) -> None:
    from rclone_servers import SftpServer

    server = SftpServer(tmp_path / "sftp").start()
    try:
        options = {"host": "127.0.0.1", "port": str(server.port), "user": server.user, "pass": server.password}
        info = drive.connect(ws, "box", "sftp", options, root="lab")
        assert info.details["host"] == "127.0.0.1" and (server.backing / "lab").is_dir()
        assert server.password not in (ws.state / "rclone.conf").read_text()
        with pytest.raises(RemoteError, match="refused the credentials"):
            drive.connect(ws, "box2", "sftp", {**options, "pass": "wrong-password"})
    finally:
        server.close()
    folder = tmp_path / "nas"
    info = drive.connect(ws, "nas", "local", root=str(folder))
    assert info.root == str(folder) and folder.is_dir()
    assert [r.name for r in drive.list_remotes(ws)] == ["box", "nas"]


def test_private_state_is_written_whole_and_owner_only(tmp_path: Path) -> None:
    from drivelab.drive._config import write_private_json

    target = tmp_path / "state" / "state.json"
    target.parent.mkdir()
    stale = target.with_name("state.json.incomplete")
    stale.write_text("left by a killed writer")
    stale.chmod(0o644)
    write_private_json(target, {"password": "s3cret"})
    assert json.loads(target.read_text()) == {"password": "s3cret"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not stale.exists()


def test_the_watchdogs_last_events_come_oldest_first_without_a_torn_line(tmp_path):
    from drivelab.drive._config import DrivePaths
    from drivelab.drive._status import RECENT_EVENTS, append_event, last_event, recent_events

    ws = init_workspace(tmp_path / "ws").workspace
    paths = DrivePaths(ws)
    paths.events.parent.mkdir(parents=True, exist_ok=True)
    assert recent_events(paths) == [] and last_event(paths) is None
    for i in range(RECENT_EVENTS + 5):
        append_event(paths, "remounted", n=i)
    with paths.events.open("a") as fh:
        fh.write('{"time": "2026-01-01T00:00:00Z", "event": "los')  # a write cut short by a crash
    events = recent_events(paths)
    assert [e["n"] for e in events] == list(range(5, RECENT_EVENTS + 5))
    assert last_event(paths) == events[-1]

"""One workspace, several machines: what belongs to one machine is kept per host, and judged there only.

The two-host tests run a second "host" on this machine: a process tree in its
own UTS, mount and PID namespaces (``unshare``, as root), with its own host
name, its own ``/tmp`` and its own process ids, sharing the workspace folder
(under ``/var/tmp``) and the network, so both reach one ``rclone serve s3`` on
loopback, as two cluster nodes share an NFS home and a cloud drive.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivelab import drive
from drivelab._host_id import boot_id, folder_name, host_name, is_this_host, this_host
from drivelab.drive._config import DEFAULT_CACHE_BASE, claim_legacy_cache, load_settings, prepare_cache, save_settings
from drivelab.drive._flush import pending_in_cache
from drivelab.drive._landed import apply_corrections, write_when_landed
from drivelab.errors import DriveError
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import skip_or_fail  # noqa: E402
from _waiting import wait_until  # noqa: E402
from rclone_servers import S3Server  # noqa: E402
from test_drive import leave_no_mount  # noqa: E402

DRIVELAB = [sys.executable, "-m", "drivelab"]


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws").workspace
    yield workspace
    leave_no_mount(workspace)


# --- the host identity and the layout ---------------------------------------------------------


def test_the_host_identity_is_the_host_name_and_this_boot() -> None:
    here = this_host()
    assert here.name == host_name() == os.uname().nodename
    if Path("/proc/sys/kernel/random/boot_id").exists():
        assert here.boot == boot_id() == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert is_this_host(here.to_dict())
    assert not is_this_host({"name": here.name, "boot": "an-earlier-boot"}), "a reboot is a new host instance"
    assert not is_this_host({"name": here.name + "-other", "boot": here.boot})
    assert not is_this_host(None) and not is_this_host({})
    assert folder_name("node07.cluster") == "node07.cluster" and folder_name("../x y") == "_x_y"


def test_what_belongs_to_one_machine_lives_in_its_own_folder(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(drive.CACHE_DIR_ENV, raising=False)
    paths = drive.DrivePaths(ws)
    host = ws.state / "drive" / "hosts" / folder_name(host_name())
    assert paths.host_folder == host
    for path in (paths.state, paths.events, paths.watchdog_log, paths.rclone_log, paths.stats, paths.users, paths.when_landed, paths.attach_lock, paths.bisync):
        assert path.parent == host, path
    # Shared: the settings and the remotes.
    assert paths.rclone_conf == ws.state / "rclone.conf" and paths.folder == ws.state / "drive"
    # The cache is on this machine's own disk, one per workspace and host.
    assert paths.cache.is_relative_to(Path(DEFAULT_CACHE_BASE)) and DEFAULT_CACHE_BASE == f"/var/tmp/drivelab-{os.getuid()}"
    assert paths.cache.name == folder_name(host_name()) and not paths.cache.is_relative_to(ws.root)
    other = init_workspace(ws.root.parent / "other").workspace
    assert drive.DrivePaths(other).cache != paths.cache
    assert drive.DrivePaths(ws, host="node2").cache.parent == paths.cache.parent != drive.DrivePaths(ws, host="node2").cache


def test_the_cache_folder_is_chosen_by_the_setting_or_the_environment(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(drive.CACHE_DIR_ENV, raising=False)
    config = json.loads(ws.config_file.read_text())
    config["drive"] = {"type": "remote", "remote": "box", "cache_dir": str(tmp_path / "by-setting")}
    ws.config_file.write_text(json.dumps(config))
    assert drive.DrivePaths(ws).cache.is_relative_to(tmp_path / "by-setting")
    monkeypatch.setenv(drive.CACHE_DIR_ENV, str(tmp_path / "by-env"))
    paths = drive.DrivePaths(ws)
    assert paths.cache.is_relative_to(tmp_path / "by-env")
    assert prepare_cache(paths) == paths.cache and paths.cache.is_dir()
    assert (paths.cache.stat().st_mode & 0o777) == 0o700


def test_a_cache_folder_of_another_user_is_refused(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() != 0:
        pytest.skip("making a folder of another user needs root")
    planted = tmp_path / "planted"
    planted.mkdir()
    os.chown(planted, 65534, 65534)
    monkeypatch.setenv(drive.CACHE_DIR_ENV, str(planted))
    with pytest.raises(DriveError, match="belongs to another user"):
        prepare_cache(drive.DrivePaths(ws))


def test_a_watchdog_recorded_in_an_earlier_boot_is_never_judged(ws: Workspace, s3: S3Server) -> None:
    drive.connect(ws, "box", "s3", s3.options(), root=f"lab{secrets.randbelow(10**8)}")
    settings = load_settings(ws)
    settings.remote = "box"
    save_settings(ws, settings)
    paths = drive.DrivePaths(ws)
    paths.host_folder.mkdir(parents=True, exist_ok=True)
    # Its pids are those of live processes here (this one): an earlier boot's would be someone else's now.
    record = {
        "watchdog_pid": os.getpid(), "rclone_pid": os.getpid(), "mode": "mount", "remote": "box", "phase": "live",
        "rc": {"url": "http://127.0.0.1:9/", "user": "u", "password": "p"},
        "host": {"name": host_name(), "boot": "an-earlier-boot"},
    }  # fmt: skip
    paths.state.write_text(json.dumps(record))
    state = drive.status(ws)
    assert not state.live and state.phase == "detached" and state.watchdog_pid is None and state.rclone_pid is None
    assert not drive.is_attached(ws)
    result = drive.detach(ws, timeout=5)
    assert not result.was_attached
    assert os.getpid() and Path(f"/proc/{os.getpid()}").exists(), "nothing was signalled"


def test_a_correction_waits_for_this_hosts_processes_only(ws: Workspace, tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    record = write_when_landed(ws, {target: "corrected\n"}, after=[os.getpid()])
    assert record.parent == drive.DrivePaths(ws).when_landed
    assert apply_corrections(ws, [record]) == 0 and not target.exists(), "this process still lives: it waits"
    data = json.loads(record.read_text())
    data["host"]["boot"] = "an-earlier-boot"
    record.write_text(json.dumps(data))
    assert apply_corrections(ws, [record]) == 1 and target.read_text() == "corrected\n", "a pid of an earlier boot is gone"


def test_an_earlier_versions_state_moves_into_this_hosts_folder(ws: Workspace) -> None:
    old = ws.state / "drive"
    old.mkdir(parents=True, exist_ok=True)
    (old / "state.json").write_text(json.dumps({"watchdog_pid": None, "mode": "mount", "remote": "box", "phase": "failed", "error": "old"}))
    (old / "events.jsonl").write_text('{"time": "2026-01-01T00:00:00Z", "event": "mounted"}\n')
    (old / "users").mkdir()
    (old / "users" / "1-ab.lock").write_text("{}")
    paths = drive.DrivePaths(ws)
    assert not (old / "state.json").exists() and not (old / "events.jsonl").exists() and not (old / "users").exists()
    moved = json.loads(paths.state.read_text())
    assert moved["error"] == "old" and is_this_host(moved["host"]), "taken as this host's, and said so"
    assert [e["event"] for e in json.loads("[" + paths.events.read_text().strip().replace("\n", ",") + "]")] == ["mounted"]
    assert (paths.users / "1-ab.lock").exists()
    drive.DrivePaths(ws)  # once: nothing else happens the second time
    assert json.loads(paths.state.read_text()) == moved


def _cache_item(root: Path, rel: str, data: bytes, *, dirty: bool) -> None:
    (root / "vfs" / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / "vfs" / rel).write_bytes(data)
    (root / "vfsMeta" / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / "vfsMeta" / rel).write_text(json.dumps({"Size": len(data), "Dirty": dirty}))


def test_an_earlier_versions_pending_uploads_move_to_this_hosts_cache(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(drive.CACHE_DIR_ENV, str(tmp_path / "local-disk"))
    paths = drive.DrivePaths(ws)
    _cache_item(paths.legacy_cache, "box/lab/runs/pending.txt", b"not uploaded yet", dirty=True)
    _cache_item(paths.legacy_cache, "box/lab/dataset/read.bin", b"kept from a read", dirty=False)
    assert pending_in_cache(paths) == 1, "counted where it is"
    prepare_cache(paths)
    assert claim_legacy_cache(paths) == (1, None)
    assert (paths.cache / "vfs" / "box/lab/runs/pending.txt").read_bytes() == b"not uploaded yet"
    assert json.loads((paths.cache / "vfsMeta" / "box/lab/runs/pending.txt").read_text())["Dirty"]
    assert not (paths.cache / "vfs" / "box/lab/dataset/read.bin").exists(), "a read copy is not worth moving"
    assert not paths.legacy_cache.exists() and not (paths.host_folder / "legacy-cache").exists()
    assert pending_in_cache(paths) == 1
    assert claim_legacy_cache(paths) == (0, None)


# --- two hosts sharing one workspace -----------------------------------------------------------

INIT = r"""
import os, signal, socket, subprocess, sys
subprocess.run(["hostname", sys.argv[1]], check=True)
# Folders under /tmp the host must still see (this checkout and its virtual environment, when they lie
# there): held open across the new /tmp, then bound back at their paths, as a cluster's shared home is.
# mount(2) itself: mount(8) would resolve /proc/self/fd/N to its path name, which then names the new /tmp.
import ctypes, ctypes.util
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
kept = [(path, os.open(path, os.O_PATH)) for path in sys.argv[2:]]
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/tmp"], check=True)
for path, fd in kept:
    os.makedirs(path, exist_ok=True)
    if libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, 4096, None) != 0:  # MS_BIND
        raise OSError(ctypes.get_errno(), f"cannot bind {path} back")
print("ready", socket.gethostname(), flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:  # the namespace's init: reap whatever is left to it
    try:
        os.wait()
    except ChildProcessError:
        signal.pause()
"""


def _under_tmp(*paths: Path) -> list[str]:
    """Those of ``paths`` under /tmp, outermost only (one inside another is kept with it)."""
    tmp = [p for p in paths if p.is_relative_to("/tmp")]
    return sorted({str(p) for p in tmp if not any(p != q and p.is_relative_to(q) for q in tmp)})


class Host:
    """A second machine: its own host name, /tmp, pids and mounts; the same /var/tmp, network and workspace."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            ["unshare", "--uts", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", sys.executable, "-c", INIT, name,
             *_under_tmp(Path(__file__).resolve().parents[1], Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.close()
            raise RuntimeError(f"the second host did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.init_pid = int(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()[0])

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        enter = ["nsenter", "--target", str(self.init_pid), "--uts", "--mount", "--pid", "--"]
        return subprocess.run([*enter, *argv], capture_output=True, text=True, timeout=timeout)

    def drivelab(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(*DRIVELAB, *args, timeout=timeout)

    def status(self, ws: Workspace) -> dict:
        done = self.drivelab("drive", "status", "--json", "-w", str(ws.root))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def close(self) -> None:
        # Killing the namespace's init ends every process in it (watchdog, rclone) and, with them, its mounts.
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(OSError, ValueError):
            os.kill(self.init_pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def here(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DRIVELAB, *args], capture_output=True, text=True, timeout=timeout)


def alive(pid: int | None) -> bool:
    try:
        return bool(pid) and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def shared_ws() -> Iterator[Workspace]:
    """A workspace under /var/tmp: the second host has a /tmp of its own, as a node has."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        skip_or_fail("two hosts on one machine need root, unshare and nsenter")
    ok, why = drive.fuse_available()
    if not ok:
        skip_or_fail(f"no FUSE here: {why}")
    base = Path("/var/tmp") / f"drivelab-hosts-{secrets.token_hex(4)}"
    workspace = init_workspace(base / "ws").workspace
    try:
        yield workspace
    finally:
        leave_no_mount(workspace)
        for host in ("hostb", host_name()):
            shutil.rmtree(drive.DrivePaths(workspace, host=host).cache, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_hosts_share_a_workspace_each_with_its_own_drive(shared_ws: Workspace, s3: S3Server) -> None:
    ws = shared_ws
    bucket = f"lab{secrets.randbelow(10**8)}"
    drive.connect(ws, "box", "s3", s3.options(), root=bucket)
    b = Host("hostb")
    try:
        start = time.monotonic()
        done = here("drive", "mount", "box", "--set-aside", "-w", str(ws.root))
        assert done.returncode == 0, done.stderr
        a_state = drive.status(ws)
        assert a_state.live and a_state.host == host_name()
        a_record = json.loads(drive.DrivePaths(ws).state.read_text())

        done = b.drivelab("drive", "mount", "--dir-cache-time", "1s", "-w", str(ws.root))
        assert done.returncode == 0, done.stdout + done.stderr
        b_state = b.status(ws)
        attached_both = time.monotonic() - start

        # B's attach touched nothing of A's: the same record, watchdog, rclone and mount.
        assert json.loads(drive.DrivePaths(ws).state.read_text()) == a_record
        assert alive(a_state.watchdog_pid) and alive(a_state.rclone_pid)
        again = drive.status(ws)
        assert again.live and (again.watchdog_pid, again.rclone_pid) == (a_state.watchdog_pid, a_state.rclone_pid)

        # Each host has its own watchdog, rclone, state and cache; each one's status shows its own.
        assert b_state["live"] and b_state["host"] == "hostb"
        b_folder = drive.DrivePaths(ws, host="hostb").host_folder
        b_record = json.loads((b_folder / "state.json").read_text())
        assert b_record["host"]["name"] == "hostb" and b_record["host"]["boot"] == boot_id()
        assert b_state["cache"] != a_state.cache and Path(b_state["cache"]).name == "hostb"
        assert b_state["watchdog_pid"] == b_record["watchdog_pid"]
        b_ps = b.run("ps", "-eww", "-o", "pid,args").stdout
        assert "drivelab.drive._watchdog" in b_ps and " mount box:" in b_ps, b_ps
        assert (b_folder / "rclone.log").exists() and drive.DrivePaths(ws).rclone_log.exists()

        # A file written on A lands on the remote, and B reads it once its listing cache (1 s) expires.
        (ws.drive / "runs" / "from-a.txt").write_text("written on host a\n")
        drive.flush(ws, timeout=30)
        assert (s3.backing / bucket / "runs" / "from-a.txt").read_text() == "written on host a\n"
        wait_until("B sees A's file", lambda: b.run("cat", str(ws.drive / "runs" / "from-a.txt")).stdout == "written on host a\n", 20)
        # And the other way round.
        done = b.run("sh", "-c", f"echo written on host b > {ws.drive}/runs/from-b.txt")
        assert done.returncode == 0, done.stderr
        done = b.drivelab("drive", "flush", "--timeout", "30", "-w", str(ws.root))
        assert done.returncode == 0, done.stderr
        assert (s3.backing / bucket / "runs" / "from-b.txt").read_text() == "written on host b\n"

        # Detach on B: A stays live, untouched.
        done = b.drivelab("drive", "unmount", "-w", str(ws.root))
        assert done.returncode == 0, done.stdout + done.stderr
        assert b.status(ws)["phase"] == "detached"
        after = drive.status(ws)
        assert after.live and (after.watchdog_pid, after.rclone_pid) == (a_state.watchdog_pid, a_state.rclone_pid)
        assert (ws.drive / "runs" / "from-a.txt").read_text() == "written on host a\n"
        (ws.drive / "runs" / "after-b-left.txt").write_text("still live\n")
        drive.flush(ws, timeout=30)
        assert (s3.backing / bucket / "runs" / "after-b-left.txt").read_text() == "still live\n"
        print(f"both hosts attached in {attached_both:.1f} s")
    finally:
        b.close()
    drive.detach(ws, timeout=30)
    assert not drive.status(ws).live

"""The drive when things fail: its server stops, rclone hangs, the watchdog dies, two commands share it.

Real parts only: ``rclone serve s3`` on loopback, real FUSE mounts, real
``drivelab`` processes (the lab, a detached job) and real signals.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivelab import drive
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import skip_or_fail  # noqa: E402
from _waiting import wait_until  # noqa: E402
from rclone_servers import S3Server, free_port  # noqa: E402

DRIVELAB = [sys.executable, "-m", "drivelab"]
OUTAGE = 30.0  # seconds the S3 server is down in the outage test


@pytest.fixture(autouse=True)
def _fuse() -> None:
    ok, why = drive.fuse_available()
    if not ok:
        skip_or_fail(f"no FUSE here: {why}")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``drivelab ARGS``; the finished process and how long it took."""
    started = time.monotonic()
    done = subprocess.run([*DRIVELAB, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return done, time.monotonic() - started


def mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point, from the kernel's table (never a stat into a hung mount)."""
    target = str(path)
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4]
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), point)
            if point == target:
                return True
    return False


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def raw_state(ws: Workspace) -> dict:
    try:
        return json.loads(drive.DrivePaths(ws).state.read_text())
    except (OSError, ValueError):
        return {}


def pending_in(text: str) -> int:
    found = re.search(r"(\d+) uploads? (?:still )?pending", text)
    assert found, f"no pending count in: {text}"
    return int(found[1])


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[S3Server]:
    """A server of this test alone: the test stops and restarts it."""
    server = S3Server(tmp_path / "s3" / "data").start()
    yield server
    server.close()


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws").workspace
    yield workspace
    # Never leave a mount, a watchdog or an rclone behind, whatever the test did.
    state = raw_state(workspace)
    for key in ("watchdog_pid", "rclone_pid"):
        pid = state.get(key)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
    if mounted(workspace.drive):
        subprocess.run(["fusermount3", "-uz", str(workspace.drive)], check=False, timeout=30)
    shutil.rmtree(drive.DrivePaths(workspace).cache.parent, ignore_errors=True)  # on this machine's disk, outside tmp_path


def connect(ws: Workspace, server: S3Server) -> Path:
    bucket = f"lab{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", server.options(), root=bucket)
    return server.backing / bucket


def listed_before_the_outage(ws: Workspace) -> None:
    """rclone creates a file during an outage only in a folder it has listed from the remote (within --dir-cache-time)."""
    (ws.drive / "runs" / "before.txt").write_text("written before the outage")
    drive.flush(ws, timeout=60)


# --- the server goes away ----------------------------------------------------------------


def test_writes_during_a_server_outage_are_kept_and_land_once_it_is_back(ws: Workspace, own_s3: S3Server) -> None:
    backing = connect(ws, own_s3)
    drive.attach(ws, "box", local_files="set-aside")
    folder = ws.drive / "runs" / "outage"
    folder.mkdir(parents=True)
    rng = random.Random(11)
    written: dict[str, bytes] = {}
    for i in range(3):
        written[f"before{i}.bin"] = rng.randbytes(rng.randrange(1000, 200_000))
        (folder / f"before{i}.bin").write_bytes(written[f"before{i}.bin"])
    drive.flush(ws, timeout=60)

    own_s3.stop()
    down_at = time.monotonic()
    during = {f"during{i:02d}.bin": rng.randbytes(rng.randrange(0, 300_000)) for i in range(12)}
    for name, data in during.items():
        (folder / name).write_bytes(data)  # accepted into the cache while the server is gone
    written.update(during)

    done, _ = cli("drive", "flush", "--timeout", "5", "-w", str(ws.root))
    assert done.returncode != 0, done.stderr
    assert pending_in(done.stderr) == len(during), done.stderr
    assert str(drive.DrivePaths(ws).cache) in done.stderr and "Traceback" not in done.stderr
    # Nothing was discarded: the files read back whole, and none reached the (stopped) server.
    assert all((folder / name).read_bytes() == data for name, data in during.items())
    assert not any((backing / "runs" / "outage" / name).exists() for name in during)
    assert drive.status(ws).pending_uploads == len(during)

    # A flush started during the outage waits for the server to come back.
    outcome: list[object] = []
    flusher = threading.Thread(target=lambda: outcome.append(_flush_or_error(ws)), daemon=True)
    flusher.start()
    time.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))  # the outage itself, not a synchronisation
    assert flusher.is_alive(), f"flush returned while the server was down: {outcome}"
    own_s3.restart()
    flusher.join(180)
    assert not flusher.is_alive(), "flush did not return after the server came back"
    result = outcome[0]
    assert isinstance(result, drive.FlushResult), result
    assert {Path(n).name for n in result.names} >= set(during), result.names
    for name, data in written.items():
        assert (backing / "runs" / "outage" / name).read_bytes() == data, name
    drive.detach(ws, timeout=30)
    assert not mounted(ws.drive)


def _flush_or_error(ws: Workspace) -> object:
    try:
        return drive.flush(ws, timeout=150)
    except drive.DriveError as exc:
        return exc


def test_unmount_with_the_server_gone_returns_in_time_and_the_next_mount_uploads_what_was_pending(
    ws: Workspace, own_s3: S3Server
) -> None:
    backing = connect(ws, own_s3)
    drive.attach(ws, "box", local_files="set-aside")
    listed_before_the_outage(ws)
    own_s3.stop()
    payload = os.urandom(120_000)
    (ws.drive / "runs" / "pending.bin").write_bytes(payload)
    wait_until("the file queued for upload", lambda: drive.status(ws).pending_uploads == 1, within=10)

    done, took = cli("drive", "unmount", "--timeout", "6", "-w", str(ws.root))
    out = done.stdout + done.stderr
    assert took < 6 + 5, f"unmount took {took:.1f} s:\n{out}"
    assert done.returncode != 0, out
    assert pending_in(out) == 1, out
    assert str(drive.DrivePaths(ws).cache) in out and "next mount" in out and "Traceback" not in out
    assert not mounted(ws.drive)
    state = raw_state(ws)
    assert not alive(state.get("watchdog_pid")) and not alive(state.get("rclone_pid"))
    assert drive.status(ws).phase == "detached"
    assert not (backing / "runs" / "pending.bin").exists()

    own_s3.restart()
    drive.attach(ws)
    drive.flush(ws, timeout=60)
    assert (backing / "runs" / "pending.bin").read_bytes() == payload
    drive.detach(ws, timeout=30)


# --- the drive itself is down ---------------------------------------------------------------


def test_unmount_of_a_hung_rclone_returns_within_its_timeout(ws: Workspace, s3: S3Server) -> None:
    backing = connect(ws, s3)
    state = drive.attach(ws, "box", local_files="set-aside")
    payload = os.urandom(50_000)
    (ws.drive / "runs" / "hung.bin").write_bytes(payload)
    # Queued (the write-back delay has not passed), so rclone has recorded it in its cache's metadata.
    wait_until("the file queued for upload", lambda: drive.status(ws).pending_uploads == 1, within=10)
    hung = state.rclone_pid
    os.kill(hung, signal.SIGSTOP)  # alive, but neither the mount nor its rc API answers
    try:
        done, took = cli("drive", "unmount", "--timeout", "6", "-w", str(ws.root))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGCONT)
    out = done.stdout + done.stderr
    assert took < 6 + 5, f"unmount took {took:.1f} s:\n{out}"
    assert done.returncode != 0 and "Traceback" not in out, out
    assert pending_in(out) == 1 and str(drive.DrivePaths(ws).cache) in out, out
    assert not mounted(ws.drive)
    wait_until("the hung rclone is gone", lambda: not alive(hung), within=10)

    drive.attach(ws)
    drive.flush(ws, timeout=60)
    assert (backing / "runs" / "hung.bin").read_bytes() == payload
    drive.detach(ws, timeout=30)


def test_unmount_with_the_watchdog_gone_flushes_through_the_rclone_it_left(ws: Workspace, s3: S3Server) -> None:
    backing = connect(ws, s3)
    state = drive.attach(ws, "box", local_files="set-aside")
    os.kill(state.watchdog_pid, signal.SIGKILL)
    wait_until("the watchdog is gone", lambda: not alive(state.watchdog_pid), within=10)
    assert alive(state.rclone_pid) and mounted(ws.drive)
    (ws.drive / "runs" / "orphan.txt").write_text("written after the watchdog died")

    done, took = cli("drive", "unmount", "-w", str(ws.root), "--json")
    assert done.returncode == 0, done.stderr
    assert took < 30 + 5
    assert json.loads(done.stdout)["pending"] == 0
    assert (backing / "runs" / "orphan.txt").read_text() == "written after the watchdog died"
    assert not mounted(ws.drive)
    wait_until("the rclone the watchdog left is gone", lambda: not alive(state.rclone_pid), within=10)


def test_forced_unmount_keeps_the_cache_for_the_next_mount(ws: Workspace, own_s3: S3Server) -> None:
    backing = connect(ws, own_s3)
    state = drive.attach(ws, "box", local_files="set-aside")
    listed_before_the_outage(ws)
    own_s3.stop()
    (ws.drive / "runs" / "forced.txt").write_text("kept in the cache")
    wait_until("the file queued for upload", lambda: drive.status(ws).pending_uploads == 1, within=10)
    os.kill(state.watchdog_pid, signal.SIGKILL)  # and the watchdog gone too
    wait_until("the watchdog is gone", lambda: not alive(state.watchdog_pid), within=10)

    done, took = cli("drive", "unmount", "--force", "-w", str(ws.root))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert took < 15, f"a forced unmount took {took:.1f} s"
    assert pending_in(out) == 1 and str(drive.DrivePaths(ws).cache) in out, out
    assert not mounted(ws.drive)
    wait_until("rclone is gone", lambda: not alive(state.rclone_pid), within=10)

    own_s3.restart()
    drive.attach(ws)
    drive.flush(ws, timeout=60)
    assert (backing / "runs" / "forced.txt").read_text() == "kept in the cache"
    drive.detach(ws, timeout=30)


def test_unmount_help_names_its_timeout_and_force() -> None:
    done, _ = cli("drive", "unmount", "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--timeout" in text and "30" in text and "--force" in text and "drive cache" in text
    assert "in use" in text


def test_status_is_not_wrapped_in_a_pipe(ws: Workspace, s3: S3Server) -> None:
    connect(ws, s3)
    drive.attach(ws, "box", local_files="set-aside")
    drive.detach(ws, timeout=30)
    done, _ = cli("drive", "status", "-w", str(ws.root), env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("drive: box:") and str(ws.drive) in first and first.rstrip().endswith("detached"), done.stderr
    assert len(first) > 40


# --- two commands share the drive -------------------------------------------------------------

WRITER = """\
import os, pathlib, sys, time
root = pathlib.Path(os.environ["DRIVELAB_WORKSPACE"])
out = pathlib.Path(os.environ["DRIVELAB_RUN_DIR"]) / "w"
out.mkdir(parents=True, exist_ok=True)
i = 0
while not (root / "stop-writer").exists():
    (out / f"w{i:04d}.txt").write_text(f"line {i} " * 50)
    (root / "writer.progress").write_text(str(i))
    i += 1
    time.sleep(0.1)
print("wrote", i, "files")
"""


class Lab:
    """``drivelab lab`` as a child process, as a user runs it."""

    def __init__(self, ws: Workspace, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_", "JUPYTER"))}
        env.update(
            COLUMNS="200", NO_COLOR="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
            JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
            JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        )  # fmt: skip
        self.proc = subprocess.Popen(
            [*DRIVELAB, "lab", "--no-browser", "--port", str(free_port()), "-w", str(ws.root)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if "Ctrl+C" in line:
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not ready.wait(120) or self.proc.poll() is not None:
            self.proc.kill()
            pytest.fail("drivelab lab did not start:\n" + "\n".join(self.lines))

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(90)
        finally:
            self.reader.join(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def progress(ws: Workspace) -> int:
    try:
        return int((ws.root / "writer.progress").read_text())
    except (OSError, ValueError):
        return -1


def job_status(ws: Workspace, run: str) -> dict:
    try:
        return json.loads((ws.drive / "runs" / run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.fixture
def shared(ws: Workspace, s3: S3Server, tmp_path: Path) -> Iterator[tuple[Workspace, Path, list[Lab]]]:
    """A workspace whose drive is the S3 remote, mounted (by this process, which does not count as a user),
    and the writer script; labs started are killed at the end."""
    backing = connect(ws, s3)
    drive.attach(ws, "box", local_files="set-aside")
    (ws.root / "writer.py").write_text(WRITER)
    labs: list[Lab] = []
    yield ws, backing, labs
    (ws.root / "stop-writer").touch()
    for lab in labs:
        lab.kill()
    for job in (ws.drive / "runs").glob("*/status.json") if mounted(ws.drive) else []:
        with contextlib.suppress(OSError, ValueError, ProcessLookupError, KeyError, TypeError):
            os.kill(json.loads(job.read_text())["supervisor_pid"], signal.SIGKILL)


def start_writer(ws: Workspace, run: str) -> None:
    done, _ = cli("run", "--detach", "--run", run, "-w", str(ws.root), "writer.py", timeout=90)
    assert done.returncode == 0, done.stderr
    wait_until("the job writes to the drive", lambda: progress(ws) >= 3, within=60)


def check_landed(ws: Workspace, backing: Path, run: str) -> int:
    written = sorted((ws.drive / "runs" / run / "w").iterdir()) if mounted(ws.drive) else []
    on_server = sorted((backing / "runs" / run / "w").iterdir())
    for path in on_server:
        i = int(path.stem[1:])
        assert path.read_text() == f"line {i} " * 50, path
    assert len(on_server) == progress(ws) + 1, f"{len(on_server)} files on the server, the job wrote {progress(ws) + 1}"
    assert not written or [p.name for p in written] == [p.name for p in on_server]
    return len(on_server)


def test_stopping_the_lab_leaves_the_drive_to_a_running_job(shared, tmp_path: Path) -> None:
    ws, backing, labs = shared
    labs.append(Lab(ws, tmp_path / "jupyter"))
    assert mounted(ws.drive)
    watchdog = raw_state(ws)["watchdog_pid"]
    start_writer(ws, "share")
    users = drive.status(ws).users
    assert sorted(u["what"] for u in users) == ["job share", "lab"], users

    refused, _ = cli("drive", "unmount", "-w", str(ws.root))
    assert refused.returncode != 0 and "in use" in refused.stderr and "job share" in refused.stderr, refused.stderr
    assert mounted(ws.drive)

    code = labs[0].interrupt()
    assert code == 0, "\n".join(labs[0].lines)
    assert mounted(ws.drive) and alive(watchdog), "stopping the lab detached the drive under the job"
    assert [u["what"] for u in drive.status(ws).users] == ["job share"]
    at_stop = progress(ws)
    wait_until("the job keeps writing to the drive", lambda: progress(ws) >= at_stop + 10, within=30)
    assert mounted(ws.drive) and drive.status(ws).live

    (ws.root / "stop-writer").touch()
    wait_until("the job ends", lambda: job_status(ws, "share").get("state") == "succeeded", within=60)
    wait_until("the job's supervisor exits", lambda: not alive(job_status(ws, "share").get("supervisor_pid")), within=30)
    assert check_landed(ws, backing, "share") > at_stop + 10
    assert drive.status(ws).users == []
    drive.detach(ws, timeout=30)
    assert not mounted(ws.drive)


def test_a_job_that_ends_leaves_the_drive_to_the_lab(shared, tmp_path: Path) -> None:
    ws, backing, labs = shared
    start_writer(ws, "first")
    assert mounted(ws.drive)
    labs.append(Lab(ws, tmp_path / "jupyter"))
    assert sorted(u["what"] for u in drive.status(ws).users) == ["job first", "lab"]

    (ws.root / "stop-writer").touch()
    wait_until("the job ends", lambda: job_status(ws, "first").get("state") == "succeeded", within=60)
    wait_until("the job's supervisor exits", lambda: not alive(job_status(ws, "first").get("supervisor_pid")), within=30)
    assert mounted(ws.drive) and drive.status(ws).live
    assert [u["what"] for u in drive.status(ws).users] == ["lab"]
    (ws.drive / "colab" / "after-the-job.txt").write_text("the lab still has its drive")

    code = labs[0].interrupt()
    assert code == 0, "\n".join(labs[0].lines)
    assert not mounted(ws.drive), "the lab, the last to use the drive, detaches it"
    assert (backing / "colab" / "after-the-job.txt").read_text() == "the lab still has its drive"
    check_landed(ws, backing, "first")


def test_a_user_killed_with_sigkill_is_not_counted(ws: Workspace, s3: S3Server) -> None:
    connect(ws, s3)
    drive.attach(ws, "box", local_files="set-aside")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from drivelab import drive; from drivelab.workspace import Workspace; "
         "drive.attach(Workspace(Path(sys.argv[1])), user='holder'); print('ready', flush=True); time.sleep(600)", str(ws.root)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert [u["what"] for u in drive.status(ws).users] == ["holder"]
        refused, _ = cli("drive", "unmount", "-w", str(ws.root))
        assert refused.returncode != 0 and "holder" in refused.stderr
    finally:
        holder.kill()
        holder.wait()
    assert drive.status(ws).users == []
    done, _ = cli("drive", "unmount", "-w", str(ws.root))
    assert done.returncode == 0, done.stderr
    assert not mounted(ws.drive)


def test_a_detach_on_behalf_of_a_user_does_not_count_it(ws: Workspace, s3: S3Server) -> None:
    """The lab's server unmounts for the ``drivelab lab`` that started it: that one's use is the caller's, any other refuses."""
    connect(ws, s3)
    drive.attach(ws, "box", local_files="set-aside")
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from pathlib import Path; from drivelab import drive; from drivelab.workspace import Workspace; "
             "drive.attach(Workspace(Path(sys.argv[1])), user=sys.argv[2]); print('ready', flush=True); time.sleep(600)", str(ws.root), what],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        for what in ("lab", "job other")
    ]
    try:
        for holder in holders:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        lab, job = holders
        with pytest.raises(drive.DriveInUseError, match=r"the drive is in use by job other \(pid \d+\)$") as refused:
            drive.detach(ws, timeout=30, when_used="refuse", on_behalf_of=[lab.pid])
        assert [u["what"] for u in refused.value.users] == ["job other"]
        assert mounted(ws.drive)
        job.kill()
        job.wait()
        result = drive.detach(ws, timeout=30, when_used="refuse", on_behalf_of=[lab.pid])
        assert result.detached and not result.forced and not mounted(ws.drive)
        assert [u["what"] for u in drive.users(ws)] == ["lab"]  # its lease is its own to give up
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_a_detached_job_attaches_a_remote_drive_before_writing_its_run_folder(shared) -> None:
    ws, backing, _labs = shared
    drive.detach(ws, timeout=30)  # the remote stays the drive; drive/ is the bare folder again
    assert not mounted(ws.drive) and not list(ws.drive.iterdir())
    start_writer(ws, "cold")
    assert mounted(ws.drive), "the job's run folder went beneath the mount point"
    (ws.root / "stop-writer").touch()
    wait_until("the job ends", lambda: job_status(ws, "cold").get("state") == "succeeded", within=60)
    drive.flush(ws, timeout=60)
    assert check_landed(ws, backing, "cold") >= 3

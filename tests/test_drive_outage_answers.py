"""What `drivelab jobs list`, `jobs logs` and `drive status` answer while the drive's remote does not.

Real parts only: ``rclone serve s3`` on loopback, hung with SIGSTOP (it accepts
connections and never answers: the nastier outage), a real FUSE mount, a real
detached job and the real ``drivelab`` CLI in subprocesses. Each answer must
come within a bound (generous: the point is that nothing waits for the
remote's tens of seconds) and say what it could not read.
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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivelab import drive
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _guards import skip_or_fail  # noqa: E402
from _waiting import wait_until  # noqa: E402
from rclone_servers import S3Server  # noqa: E402
from test_drive_outage import alive, mounted, raw_state  # noqa: E402

DRIVELAB = [sys.executable, "-m", "drivelab"]
ANSWER_WITHIN = 5.0
"""Seconds an answer may take during an outage (it blocked 17-42 s, once minutes, before)."""

JOB = """\
print("hello from the job", flush=True)
"""


@pytest.fixture(autouse=True)
def _fuse() -> None:
    ok, why = drive.fuse_available()
    if not ok:
        skip_or_fail(f"no FUSE here: {why}")


def cli(ws: Workspace, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    """``drivelab ARGS`` in the workspace WS: the finished process and how long it took."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "DRIVELAB_WORKSPACE": str(ws.root)}
    started = time.monotonic()
    done = subprocess.run([*DRIVELAB, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ws.root)
    return done, time.monotonic() - started


@pytest.fixture
def server(tmp_path: Path) -> Iterator[S3Server]:
    s3 = S3Server(tmp_path / "s3" / "data").start()
    try:
        yield s3
    finally:
        if s3.proc and s3.proc.poll() is None:
            os.kill(s3.proc.pid, signal.SIGCONT)
        s3.close()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    # The watchdog must not replace a stopped rclone while a test looks at it.
    monkeypatch.setenv("DRIVELAB_DRIVE_HUNG_AFTER", "120")
    workspace = init_workspace(tmp_path / "ws").workspace
    yield workspace
    state = raw_state(workspace)
    for key in ("rclone_pid", "watchdog_pid"):
        pid = state.get(key)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
    if mounted(workspace.drive):
        subprocess.run(["fusermount3", "-uz", str(workspace.drive)], check=False, timeout=30)
    shutil.rmtree(drive.DrivePaths(workspace).cache.parent, ignore_errors=True)  # on this machine's disk, outside tmp_path


def attached_with_a_finished_job(ws: Workspace, server: S3Server, run: str = "exp1") -> str:
    """Mount the drive (listings cached 1 s: a lookup soon asks the remote), run a job to its end, flush."""
    bucket = f"lab{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", server.options(), root=bucket)
    drive.attach(ws, "box", local_files="set-aside", dir_cache_time="1s")
    (ws.root / "job.py").write_text(JOB)
    done, _ = cli(ws, "run", "--detach", "--run", run, "job.py", timeout=90)
    assert done.returncode == 0, done.stderr
    wait_until("the job succeeds", lambda: '"state": "succeeded"' in _read(ws.run_dir(run) / "status.json"), within=60)
    wait_until("the job's supervisor has flushed and let go of the drive", lambda: not drive.status(ws).users, within=60)
    drive.flush(ws, timeout=60)
    return f"box:{bucket}"


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text()
    return ""


@contextlib.contextmanager
def hung(proc_pid: int) -> Iterator[None]:
    """The process stopped (its sockets accept, nothing answers); always resumed."""
    os.kill(proc_pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)  # rclone's cached listings (1 s) expire: the next lookup asks the remote
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have been stopped for good meanwhile
            os.kill(proc_pid, signal.SIGCONT)


def test_jobs_list_and_logs_answer_at_once_while_the_server_hangs(ws: Workspace, server: S3Server) -> None:
    attached_with_a_finished_job(ws, server)
    assert server.proc is not None
    with hung(server.proc.pid):
        done, took = cli(ws, "jobs", "list")
        assert done.returncode == 0, done.stderr
        assert took < ANSWER_WITHIN, f"jobs list took {took:.1f} s"
        said = done.stdout + done.stderr  # the table goes where rich's console writes
        assert "exp1" in said and "succeeded" in said, said
        assert "not answering" in said and re.search(r"as of \d\d:\d\d:\d\d", said), said

        done, took = cli(ws, "jobs", "list", "--json")
        assert took < ANSWER_WITHIN, f"jobs list --json took {took:.1f} s"
        document = json.loads(done.stdout)
        assert [j["run"] for j in document["jobs"]] == ["exp1"]
        assert "not answering" in document["unreadable"] and document["as_of"], document

        done, took = cli(ws, "jobs", "logs", "exp1")
        assert took < ANSWER_WITHIN, f"jobs logs took {took:.1f} s"
        assert done.returncode == 0, done.stderr
        assert "hello from the job" in done.stdout, done.stdout + done.stderr
        assert "not answering" in done.stderr, done.stderr

        done, took = cli(ws, "drive", "status")
        assert took < ANSWER_WITHIN, f"drive status took {took:.1f} s"
        assert done.returncode == 0, done.stderr
    # Once the server answers again, the drive's own answer is back, without the notice.
    done, _ = cli(ws, "jobs", "list", timeout=120)
    assert "exp1" in done.stdout + done.stderr and "not answering" not in done.stdout + done.stderr, done.stdout + done.stderr


def test_drive_status_says_pending_uploads_are_unknown_when_rclone_does_not_answer(ws: Workspace, server: S3Server) -> None:
    attached_with_a_finished_job(ws, server)
    assert server.proc is not None
    # Written just before the outage (a write after it would itself wait for the remote's listing); rclone's
    # write-back delay (5 s) keeps them queued until the server hangs.
    for i in range(3):
        (ws.drive / "runs" / "exp1" / f"during{i}.txt").write_text(f"written during the outage {i}")
    with hung(server.proc.pid):
        # While rclone itself answers, the count is known (and remembered).
        done, _ = cli(ws, "drive", "status", "--json")
        known = json.loads(done.stdout)
        assert known["pending_uploads"] == 3, known
        # What the cache holds is measured now, not rclone's count from its last cleaning (a minute apart).
        assert known["cache_files"] >= 3 and known["cache_bytes"] > 0, known
        rclone = raw_state(ws)["rclone_pid"]
        with hung(rclone):
            done, took = cli(ws, "drive", "status", "--json")
            assert took < ANSWER_WITHIN, f"drive status --json took {took:.1f} s"
            state = json.loads(done.stdout)
            assert state["pending_uploads"] is None and state["uploading"] is None, state
            assert state["stats_error"] and state["last_stats"]["pending_uploads"] == 3, state
            done, took = cli(ws, "drive", "status")
            assert took < ANSWER_WITHIN, f"drive status took {took:.1f} s"
            said = done.stdout + done.stderr
            assert re.search(r"pending uploads unknown \(rclone not answering; 3 as of \d+ s ago\)", said), said
    drive.flush(ws, timeout=120)


def test_jobs_list_and_logs_say_the_drive_is_not_attached(ws: Workspace, server: S3Server) -> None:
    spec = attached_with_a_finished_job(ws, server)
    result = drive.detach(ws, timeout=30)
    assert not mounted(ws.drive), result
    done, took = cli(ws, "jobs", "list")
    assert took < ANSWER_WITHIN
    said = done.stdout + done.stderr
    assert f"the drive ({spec}) is not attached" in said and "drivelab drive mount" in said, said
    assert "No jobs yet" not in said, said

    done, _ = cli(ws, "jobs", "logs", "nosuchrun")
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"the drive ({spec}) is not attached" in said and "drivelab drive mount" in said, said


ENDS_IN_AN_OUTAGE = """\
import os, signal, time
with open("drive/runs/exp2/out.bin", "wb") as fh:
    fh.write(os.urandom(300_000))
os.kill(int(os.environ["S3_PID"]), signal.SIGSTOP)  # the remote stops answering as the job ends
time.sleep(1.5)  # rclone's cached listings (1 s) expire
print("done", flush=True)
"""


def test_a_job_ending_in_an_outage_returns_within_its_bound_and_its_status_is_corrected_once_the_uploads_land(
    ws: Workspace, server: S3Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = f"lab{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", server.options(), root=bucket)
    drive.attach(ws, "box", local_files="set-aside", dir_cache_time="1s")  # stays attached after the job
    (ws.drive / "runs" / "exp2").mkdir(parents=True, exist_ok=True)
    (ws.root / "job.py").write_text(ENDS_IN_AN_OUTAGE)
    assert server.proc is not None
    monkeypatch.setenv("S3_PID", str(server.proc.pid))
    monkeypatch.setenv("DRIVELAB_JOB_FLUSH_STALL", "6")
    try:
        done, took = cli(ws, "run", "--run", "exp2", "job.py", timeout=300)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    said = done.stdout + done.stderr
    assert took < 6 + 30, f"drivelab run took {took:.1f} s with the remote hung\n{said}"
    assert done.returncode != 0, said
    assert "succeeded" in said and "not answering" in said, said
    # Where they are kept: `drivelab run` names the place in its hint (the drive's own messages name this
    # machine's cache path; test_unmount_keeps_its_timeout... checks those).
    assert re.search(r"\d+ uploads? pending", said) and "kept in" in said, said
    local = json.loads((ws.state / "jobs" / "exp2" / "status.json").read_text())
    assert local["state"] == "succeeded" and local["flush"]["pending"] >= 1, local

    # The server answers again: the uploads land, and the run's status on the remote says so.
    landed = tmp_bucket = server.backing / bucket / "runs" / "exp2"
    wait_until("out.bin lands", lambda: (landed / "out.bin").is_file() and (landed / "out.bin").stat().st_size == 300_000, within=120)

    def corrected() -> dict | None:
        with contextlib.suppress(OSError, ValueError):
            status = json.loads((tmp_bucket / "status.json").read_text())
            if (status.get("flush") or {}).get("landed"):
                return status
        return None

    wait_until("status.json on the remote says the uploads landed", lambda: corrected() is not None, within=120)
    status = corrected()
    assert status is not None and status["state"] == "succeeded" and status["flush"]["pending"] >= 1, status


def test_a_stopped_rclone_whose_watchdog_died_hangs_neither_status_nor_mount(ws: Workspace, server: S3Server) -> None:
    bucket = f"lab{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", server.options(), root=bucket)
    drive.attach(ws, "box", local_files="set-aside", dir_cache_time="1s")
    (ws.drive / "dataset" / "kept.txt").write_text("kept")
    drive.flush(ws, timeout=60)
    state = raw_state(ws)
    old_rclone = state["rclone_pid"]
    os.kill(state["watchdog_pid"], signal.SIGKILL)
    os.kill(old_rclone, signal.SIGSTOP)  # it accepts nothing now: any look into drive/ would wait forever
    time.sleep(1.5)  # the kernel's cached attributes of drive/ (1 s) expire

    done, took = cli(ws, "drive", "status")
    assert took < ANSWER_WITHIN, f"drive status took {took:.1f} s"
    said = done.stdout + done.stderr
    assert done.returncode == 0 and f"rclone (pid {old_rclone}) still serves drive/" in said and "watchdog is gone" in said, said

    done, took = cli(ws, "drive", "mount", timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert took < 30, f"drive mount took {took:.1f} s"
    assert "replaced rclone" in said, said
    assert not alive(old_rclone)
    assert (ws.drive / "dataset" / "kept.txt").read_text() == "kept"


@pytest.mark.parametrize("what_hangs", ["the remote", "rclone"])
def test_unmount_keeps_its_timeout_while_the_remote_or_rclone_hangs(ws: Workspace, server: S3Server, what_hangs: str) -> None:
    bucket = f"lab{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", server.options(), root=bucket)
    drive.attach(ws, "box", local_files="set-aside", dir_cache_time="1s")
    for i in range(4):
        (ws.drive / "dataset" / f"part{i}.bin").write_bytes(os.urandom(200_000))
    assert server.proc is not None
    with hung(server.proc.pid if what_hangs == "the remote" else raw_state(ws)["rclone_pid"]):
        done, took = cli(ws, "drive", "unmount", "--timeout", "8", timeout=120)
    said = done.stdout + done.stderr
    assert took < 8 + 2.5, f"unmount --timeout 8 took {took:.1f} s\n{said}"
    assert not mounted(ws.drive), said
    assert re.search(r"\d+ uploads? pending", said) and str(drive.DrivePaths(ws).cache) in said, said


def test_two_mounts_at_once_leave_one_live_mount_and_one_watchdog(ws: Workspace, server: S3Server) -> None:
    bucket = f"lab{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", server.options(), root=bucket)
    drive.attach(ws, "box", local_files="set-aside")
    drive.detach(ws, timeout=30)
    env = {**os.environ, "NO_COLOR": "1", "DRIVELAB_WORKSPACE": str(ws.root)}
    both = [subprocess.Popen([*DRIVELAB, "drive", "mount"], cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    said = [p.communicate(timeout=120)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], said
    state = raw_state(ws)
    assert state["phase"] == "live" and alive(state["watchdog_pid"]) and alive(state["rclone_pid"]), state
    watchdogs = subprocess.run(["pgrep", "-f", f"drivelab.drive._watchdog {ws.root} "], capture_output=True, text=True).stdout.split()
    assert watchdogs == [str(state["watchdog_pid"])], watchdogs
    (ws.drive / "dataset" / "after.txt").write_text("the mount is live")
    assert drive.flush(ws, timeout=60).files >= 1

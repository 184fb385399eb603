"""``drivelab run`` and ``drivelab jobs``: real processes, real signals.

Each job runs as the user would start it, ``python -m drivelab run ...`` in a
workspace, with a controlled environment (no ``DRIVELAB_*`` variable leaks in).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import pty
import random
import re
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
from pathlib import Path

import nbformat
import pytest

from drivelab.data import get_mnist
from drivelab.workspace import init_workspace


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(key, None)
    env.update(COLUMNS="200", NO_COLOR="1")
    env.update(extra)
    return env


def drivelab_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "drivelab", *args]


def drivelab(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(drivelab_argv(*args), cwd=cwd, env=env or child_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def status_of(ws: Path, run: str) -> dict:
    return json.loads((ws / "drive" / "runs" / run / "status.json").read_text())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


class Output:
    """A child's output, read on a thread as it comes, so that a test can wait for a line."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        wait_for(lambda: any(text in line for line in self.lines), timeout, f"{text!r} in the output")

    def finish(self, timeout: float = 30) -> str:
        """All of it, once the stream has ended (the child and whatever shared its output are gone)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the output did not end"
        return self.text


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return init_workspace(tmp_path / "lab").workspace.root


@pytest.fixture
def script(workspace: Path):
    """``script(name, source)`` writes ``drive/colab/<name>`` and returns its path from the workspace root."""

    def write(name: str, source: str) -> str:
        path = workspace / "drive" / "colab" / name
        path.write_text(textwrap.dedent(source))
        return str(path.relative_to(workspace))

    return write


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory, mnist_mirror) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    get_mnist(root, mirrors=[mnist_mirror.url])
    return root


# --- one process ---------------------------------------------------------------------


def test_run_gives_the_job_its_run_folder_environment_log_and_status(workspace, script):
    path = script(
        "env.py",
        """
        import os, sys
        from pathlib import Path
        run_dir = Path(os.environ["DRIVELAB_RUN_DIR"])
        (run_dir / "out.txt").write_text("written by the job")
        print("args", sys.argv[1:])
        print("name", os.environ["DRIVELAB_RUN_NAME"], "restart", os.environ["DRIVELAB_RESTART_COUNT"])
        print("cwd", os.getcwd())
        print("to stderr", file=sys.stderr)
        """,
    )
    proc = drivelab("run", "--run", "first", path, "--epochs", "3", "-x", cwd=workspace)
    assert proc.returncode == 0, describe(proc)
    run_dir = workspace / "drive" / "runs" / "first"
    assert (run_dir / "out.txt").read_text() == "written by the job"
    # Streamed to the console and to the log.
    for text in ("args ['--epochs', '3', '-x']", "name first restart 0", f"cwd {workspace}", "to stderr"):
        assert text in proc.stderr, describe(proc)
        assert text in (run_dir / "log").read_text()
    status = status_of(workspace, "first")
    assert status["state"] == "succeeded" and status["exit_code"] == 0 and status["restarts"] == 0
    assert status["command"] == [sys.executable, str(workspace / path), "--epochs", "3", "-x"]
    assert status["started"] <= status["ended"]
    assert set(status["flush"]) == {"files", "bytes", "seconds"}
    assert [a["exit_code"] for a in status["attempts"]] == [0]

    listed = drivelab("jobs", "list", "--json", cwd=workspace)
    assert listed.returncode == 0, describe(listed)
    assert [(j["run"], j["state"]) for j in json.loads(listed.stdout)["jobs"]] == [("first", "succeeded")]
    shown = drivelab("jobs", "status", "first", "--json", cwd=workspace)
    assert shown.returncode == 0 and json.loads(shown.stdout)["attempts"][0]["pid"] == status["attempts"][0]["pid"], describe(shown)


def test_always_failing_script_stops_after_n_restarts_with_a_summary(workspace, script):
    path = script(
        "fails.py",
        """
        import os
        print("attempt", os.environ["DRIVELAB_RESTART_COUNT"], flush=True)
        raise RuntimeError("the data folder is not there (attempt " + os.environ["DRIVELAB_RESTART_COUNT"] + ")")
        """,
    )  # a failure that differs each time: restarted up to --restarts (the same one twice is not)
    started = time.monotonic()
    proc = drivelab("run", "--run", "bad", "--restarts", "2", "--backoff", "0.2", path, cwd=workspace)
    took = time.monotonic() - started
    assert proc.returncode == 1, describe(proc)
    assert "error: job 'bad' gave up after 3 attempt(s)" in proc.stderr, describe(proc)
    assert "exit code 1 each time" in proc.stderr
    assert "RuntimeError: the data folder is not there" in proc.stderr  # the script's last lines
    assert "hint:" in proc.stderr
    status = status_of(workspace, "bad")
    assert status["state"] == "failed" and status["restarts"] == 2
    assert [a["exit_code"] for a in status["attempts"]] == [1, 1, 1]
    log = (workspace / "drive" / "runs" / "bad" / "log").read_text()
    assert [line for line in log.splitlines() if line.startswith("attempt ")] == ["attempt 0", "attempt 1", "attempt 2"]
    assert took >= 0.2 + 0.8  # backoff 0.2 s, then four times longer
    waits = [line.split("restarting in ")[1].split(" s ")[0] for line in log.splitlines() if "restarting in " in line]
    assert waits == ["0.2", "0.8"], log
    # Each attempt ended differently ("attempt N"): each is shown, under its number.
    assert [t["attempts"] for t in status["failure_tail"]] == [[0], [1], [2]]
    error = error_part(proc.stderr, "bad")
    assert error.count("RuntimeError: the data folder is not there") == 3 and "attempt 2:" in error, describe(proc)


def error_part(stderr: str, run: str) -> str:
    """The error ``drivelab run`` ended with, without the job's output streamed before it."""
    return stderr[stderr.index(f"error: job {run!r}") :]


def test_a_failure_every_attempt_repeats_is_shown_once_with_its_count(workspace, script):
    path = script("same.py", 'raise RuntimeError("the data folder is not there")\n')
    proc = drivelab("run", "--run", "same", "--restarts", "3", "--backoff", "0", path, cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    error = error_part(proc.stderr, "same")
    # The same failure twice without a new checkpoint: a restart cannot fix it, none is tried again.
    assert "the same failure twice in a row without a new checkpoint" in error and "not restarted again" in error and "(2 times)" in error, describe(proc)
    assert error.count("RuntimeError: the data folder is not there") == 2, describe(proc)  # named in the reason, and its tail once
    assert proc.stderr.count("RuntimeError: the data folder is not there") == 2 + 1 + 2  # as each attempt wrote it, the supervisor's last line, the summary
    status = status_of(workspace, "same")
    [tail] = status["failure_tail"]
    assert tail["attempts"] == [0, 1] and tail["lines"][-1] == "RuntimeError: the data folder is not there"
    shown = drivelab("jobs", "status", "same", cwd=workspace)
    assert shown.returncode == 0 and "(2 times)" in shown.stderr and shown.stderr.count("RuntimeError: the data folder is not there") == 3, describe(shown)  # its state line, the reason, the tail once


def test_a_usage_error_exit_code_2_is_not_restarted(workspace, script):
    path = script(
        "usage.py",
        """
        import sys
        print("usage: usage.py [-h] [--epochs N]", file=sys.stderr)
        print("usage.py: error: argument --epochs: must be at least 1, not 0", file=sys.stderr)
        sys.exit(2)
        """,
    )
    started = time.monotonic()
    proc = drivelab("run", "--run", "usage", "--backoff", "30", path, "--epochs", "0", cwd=workspace)
    assert time.monotonic() - started < 30, describe(proc)  # no restart was waited for
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "usage")
    assert status["state"] == "failed" and [a["exit_code"] for a in status["attempts"]] == [2] and status["restarts"] == 0
    assert "usage error" in status["summary"] and "not restarted" in status["summary"]
    assert "restarting" not in proc.stderr, describe(proc)
    error = error_part(proc.stderr, "usage")
    assert error.count("must be at least 1, not 0") == 1 and proc.stderr.count("must be at least 1, not 0") == 2, describe(proc)
    assert "--help" in error and "hint:" in error  # what to do: fix the arguments
    assert [t["attempts"] for t in status["failure_tail"]] == [[0]]


def test_main_py_with_a_bad_argument_ends_at_once(workspace, dataset_root):
    proc = drivelab("run", "--run", "zero", "drive/colab/main.py", "--epochs", "0", "--data-dir", str(dataset_root), "--device", "cpu", cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "zero")
    assert status["state"] == "failed" and [a["exit_code"] for a in status["attempts"]] == [2], describe(proc)
    last = status["failure_tail"][0]["lines"][-1]  # main.py's own error
    assert "epochs" in last, describe(proc)
    assert error_part(proc.stderr, "zero").count(last) == 1 and proc.stderr.count(last) == 2, describe(proc)


def test_failure_report_shows_the_newest_differing_tails(tmp_path):
    from drivelab.jobs import JobStatus, OutputTail

    status = JobStatus(run="r", run_dir=str(tmp_path), kind="python", command=[], cwd=str(tmp_path), state="failed", started="", summary="gave up")
    status.failure_tail = [OutputTail([f"error {i}"], [i]) for i in range(3)] + [OutputTail(["boom"], [3, 4])]
    report = JobStatus.from_dict(json.loads(json.dumps(status.to_dict()))).failure_report()
    assert report.splitlines() == [
        "job 'r' gave up; the last lines of its attempts:",
        "(1 earlier attempt(s) not shown: see the log)",
        "attempt 1:", "  error 1",
        "attempt 2:", "  error 2",
        "attempts 3 to 4 (2 times):", "  boom",
    ]  # fmt: skip


def test_restarts_zero_means_no_restart_and_bad_input_is_a_clear_error(workspace, script):
    path = script("exit3.py", "raise SystemExit(3)\n")
    proc = drivelab("run", "--run", "once", "--restarts", "0", path, cwd=workspace)
    assert proc.returncode == 1 and "not restarted" in proc.stderr, describe(proc)
    assert len(status_of(workspace, "once")["attempts"]) == 1

    for args, message in [
        (["nope.py"], "no such script"),
        (["-p", "a", "1", path], "-p NAME VALUE sets a notebook's parameters"),
        (["--run", "../x", path], "not a usable run name"),
        (["--nnodes", "2", path], "need a rendezvous point"),
    ]:
        proc = drivelab("run", *args, cwd=workspace)
        assert proc.returncode == 1, describe(proc)
        assert message in proc.stderr and "Traceback" not in proc.stderr, describe(proc)
    proc = drivelab("jobs", "logs", "missing", cwd=workspace)
    assert proc.returncode == 1 and "no job named 'missing'" in proc.stderr, describe(proc)


def test_ctrl_c_stops_a_foreground_job_and_its_processes(workspace, script):
    path = script(
        "loop.py",
        """
        import time
        print("ready", flush=True)
        try:
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            print("interrupted cleanly", flush=True)
            raise SystemExit(130)
        """,
    )
    proc = subprocess.Popen(drivelab_argv("run", "--run", "fg", path), cwd=workspace, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = workspace / "drive" / "runs" / "fg" / "log"
        wait_for(lambda: log.exists() and "ready" in log.read_text(), 60, "the job to start")
        child = status_of(workspace, "fg")["attempts"][-1]["pid"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted cleanly" in err
    status = status_of(workspace, "fg")
    assert status["state"] == "stopped" and len(status["attempts"]) == 1
    assert not pid_alive(child)


# --- restart and resume --------------------------------------------------------------------

TRAIN = ["--limit-train", "2000", "--epochs", "8", "--threads", "1", "--device", "cpu", "--log-every", "0"]
PROGRESS = re.compile(r"epoch (\d+) \[(\d+)/(\d+)")


def _state_dicts_equal(a: Path, b: Path) -> bool:
    import torch

    x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.name[10:14]) for p in run_dir.glob("ckpt-epoch*.pt.sha256"))


def _attempt_output(log: Path, number: int) -> str:
    """What attempt ``number`` has written to the job's log so far (it follows the supervisor's line announcing it)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    announced = "[drivelab] starting:" if number == 0 else f"[drivelab] restart {number}:"
    return text[text.index(announced) :] if announced in text else ""


@pytest.mark.slow
def test_sigkilled_five_times_the_job_resumes_to_the_same_weights(workspace, dataset_root):
    """SIGKILL at random moments (start-up, mid-epoch, an epoch's end: evaluating, checkpointing),
    each found in the job's own output or files, never by the clock; the final weights are bitwise
    those of an uninterrupted run, and a torn checkpoint is never loaded."""
    seed = int(os.environ.get("DRIVELAB_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    main = "drive/colab/main.py"
    data = ["--data-dir", str(dataset_root)]
    whole = subprocess.run(
        [sys.executable, main, "--run", "whole", *data, *TRAIN], cwd=workspace, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert whole.returncode == 0, whole.stdout + whole.stderr

    run_dir = workspace / "drive" / "runs" / "killed"
    log = run_dir / "log"
    every_step = [*TRAIN, "--log-every", "1e-9"]  # a progress line at each step, to kill at
    proc = subprocess.Popen(
        drivelab_argv("run", "--run", "killed", "--restarts", "10", "--backoff", "0.2", main, *data, *every_step),
        cwd=workspace, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    killed: list[int] = []
    plan: list[str] = []
    torn = None
    try:
        for k in range(5):
            def running_attempt():
                try:
                    attempt = status_of(workspace, "killed")["attempts"][-1]
                except (FileNotFoundError, ValueError, IndexError):
                    return None
                return attempt["pid"] if attempt["ended"] is None and attempt["pid"] not in killed else None

            def reached(epoch: int | None, step: int | None, k=k) -> bool:
                """Attempt ``k`` is at ``step`` (``None``: the last) of ``epoch`` (``None``: its first), or past it."""
                done = [tuple(map(int, found)) for found in PROGRESS.findall(_attempt_output(log, k))]
                return any((epoch is None or e == epoch) and s >= (step or steps) for e, s, steps in done)

            pid = wait_for(running_attempt, 120, f"attempt {k}")
            # Each kill comes at the latest one epoch into its attempt: the job cannot end first.
            where = "mid-training" if k % 2 else rng.choice(["start-up", "mid-epoch", "epoch end"])
            step = rng.randint(1, 12)  # of 15 or 16
            if where == "mid-training":
                # After this attempt's first new checkpoint, at a random step of the next epoch.
                at_start = _checkpoints(run_dir)
                wait_for(lambda: _checkpoints(run_dir) != at_start, 120, "a new checkpoint")
                epoch = max(_checkpoints(run_dir)) + 1
                wait_for(lambda: reached(epoch, step), 120, f"epoch {epoch}, step {step}")
                where += f" (epoch {epoch}, step {step})"
            elif where == "mid-epoch":
                wait_for(lambda: reached(None, step), 120, f"step {step}")
                where += f" (step {step})"
            elif where == "epoch end":
                # Its last step done: evaluating, then writing the checkpoint.
                wait_for(lambda: reached(None, None), 120, "an epoch's last step")
            plan.append(where)
            assert proc.poll() is None, f"seed {seed}: the job ended before kill {k} ({plan})"
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            wait_for(lambda: not pid_alive(pid), 30, "the kill")
            if k == 3:
                # What a kill mid-write leaves on storage without atomic rename:
                # half a checkpoint, newer than any complete one, with no digest.
                newest = max(_checkpoints(run_dir))
                torn = run_dir / f"ckpt-epoch{newest + 1:04d}.pt"
                torn.write_bytes((run_dir / f"ckpt-epoch{newest:04d}.pt").read_bytes()[:5000])
                (run_dir / f"ckpt-epoch{newest + 1:04d}.pt.sha256").unlink(missing_ok=True)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    context = f"seed {seed}, kills: {plan}\n{output}"
    assert proc.returncode == 0, context
    status = status_of(workspace, "killed")
    assert status["state"] == "succeeded" and status["restarts"] == 5, context
    assert [a["exit_code"] for a in status["attempts"]] == [-9] * 5 + [0], context
    assert output.count("resuming after epoch") >= 2, context
    assert f"skipping checkpoint {torn.name}" in output, context
    assert [m["epoch"] for m in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())] == list(range(1, 9))
    assert status["last_checkpoint"] == "ckpt-epoch0008.pt"
    assert _state_dicts_equal(workspace / "drive" / "runs" / "whole" / "model.pt", run_dir / "model.pt"), context


# --- several processes ---------------------------------------------------------------------


@pytest.mark.slow
def test_two_gloo_processes_train_like_one(workspace, dataset_root):
    args = ["drive/colab/main.py", "--data-dir", str(dataset_root), "--limit-train", "12000", "--epochs", "2", "--threads", "1", "--device", "cpu", "--log-every", "0"]
    one = drivelab("run", "--run", "one", *args, cwd=workspace, timeout=600)
    assert one.returncode == 0, describe(one)
    two = drivelab("run", "--run", "two", "--nproc-per-node", "2", *args, cwd=workspace, timeout=600)
    assert two.returncode == 0, describe(two)
    assert "torch.distributed.run" in " ".join(status_of(workspace, "two")["command"])
    assert "device cpu" in two.stderr

    run_dir = workspace / "drive" / "runs" / "two"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]  # rank 0 alone writes
    assert _checkpoints(run_dir) == [1, 2]
    assert two.stderr.count("Epoch  2") == 1
    import torch

    state = torch.load(run_dir / "ckpt-epoch0002.pt", weights_only=True)
    assert len(state["rng_ranks"]) == 2
    assert not any(k.startswith("module.") for k in state["model"])  # same format as one process
    acc_one = json.loads((workspace / "drive" / "runs" / "one" / "metrics.jsonl").read_text().splitlines()[-1])["test_accuracy"]
    assert abs(metrics[-1]["test_accuracy"] - acc_one) <= 0.3, (metrics[-1]["test_accuracy"], acc_one)

    # Resumes the same way: without its last checkpoint, the rerun redoes epoch 2 to the same weights.
    (run_dir / "model.pt").rename(run_dir / "uninterrupted.pt")
    for name in ("ckpt-epoch0002.pt", "ckpt-epoch0002.pt.sha256"):
        (run_dir / name).unlink()
    again = drivelab("run", "--run", "two", "--nproc-per-node", "2", *args, cwd=workspace, timeout=600)
    assert again.returncode == 0, describe(again)
    assert "resuming after epoch 1" in again.stderr and "Epoch  1" not in again.stderr, describe(again)
    assert _state_dicts_equal(run_dir / "uninterrupted.pt", run_dir / "model.pt")


# --- in the background ---------------------------------------------------------------------


def test_detached_job_survives_its_launcher_and_jobs_logs_and_stop_work(workspace, script):
    path = script(
        "ticks.py",
        """
        import signal, sys, time
        def on_term(signum, frame):
            print("got SIGTERM", flush=True)
            sys.exit(143)
        signal.signal(signal.SIGTERM, on_term)
        i = 0
        while True:
            print("tick", i, flush=True)
            i += 1
            time.sleep(0.1)
        """,
    )
    launch = drivelab("run", "--detach", "--run", "bg", "--json", path, cwd=workspace, timeout=60)
    assert launch.returncode == 0, describe(launch)
    started = json.loads(launch.stdout)
    supervisor = started["supervisor_pid"]
    try:
        # The launcher has exited; the job goes on, in a session of its own.
        assert pid_alive(supervisor) and os.getsid(supervisor) != os.getsid(0)
        log = workspace / "drive" / "runs" / "bg" / "log"
        wait_for(lambda: "tick 5" in log.read_text(), 60, "ticks")
        job = status_of(workspace, "bg")
        assert job["state"] == "running" and job["detached"]
        child = job["attempts"][-1]["pid"]

        listed = json.loads(drivelab("jobs", "list", "--json", cwd=workspace).stdout)["jobs"]
        assert [(j["run"], j["state"]) for j in listed] == [("bg", "running")]
        again = drivelab("run", "--run", "bg", path, cwd=workspace)
        assert again.returncode == 1 and "already running" in again.stderr, describe(again)

        logs = drivelab("jobs", "logs", "bg", "--tail", "3", cwd=workspace)
        assert logs.returncode == 0 and len(logs.stdout.splitlines()) == 3 and "tick" in logs.stdout, describe(logs)

        follow = subprocess.Popen(drivelab_argv("jobs", "logs", "bg", "-f"), cwd=workspace, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        following = Output(follow.stdout)
        following.wait_for("tick", 60)  # it has printed the log so far, and follows it
        stop = drivelab("jobs", "stop", "bg", cwd=workspace, timeout=60)
        assert stop.returncode == 0, describe(stop)
        # It says how to go on: the same run name and script, from the workspace.
        assert f"resume it from its last checkpoint: drivelab run --run bg {path}" in stop.stderr, describe(stop)  # the console writes to stderr
        assert follow.wait(30) == 0, following.text  # -f ends with the job
        followed = following.finish()
        assert "tick 1" in followed and "got SIGTERM" in followed and "job bg: stopped" in followed
        assert not pid_alive(child) and not pid_alive(supervisor)
        final = status_of(workspace, "bg")
        assert final["state"] == "stopped" and final["exit_code"] == 143 and final["ended"]
        assert drivelab("jobs", "stop", "bg", cwd=workspace).returncode == 1  # not running any more
    finally:
        if pid_alive(supervisor):
            os.kill(supervisor, signal.SIGKILL)


# --- jobs list ------------------------------------------------------------------------------

LONG_ARGS = ("--epochs", "4", "--data-dir", "/a/rather/long/path/to/the/dataset/folder")
RUNS = ("main-20261130-142501", "exp1")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def record_job(ws: Path, run: str, *args: str) -> str:
    """A finished job's status.json, as its supervisor writes it; returns the command ``jobs list`` shows."""
    from drivelab.jobs._status import JobStatus, write_status

    run_dir = ws / "drive" / "runs" / run
    run_dir.mkdir(parents=True)
    script = str(ws / "drive" / "colab" / "main.py")
    write_status(
        JobStatus(
            run=run, run_dir=str(run_dir), kind="python", command=[sys.executable, script, *args], cwd=str(ws), state="succeeded",
            started="2026-11-30T14:25:01.000+01:00", ended="2026-11-30T14:26:01.000+01:00", last_checkpoint="ckpt-epoch0008.pt",
            spec={"script": script, "args": list(args)},
        )
    )  # fmt: skip
    return " ".join([script, *args])


def assert_rows_whole(text: str, commands: dict[str, str]) -> None:
    """Each job's row starts with its whole run name, and its command column holds the whole command."""
    assert "\u2026" not in text and "..." not in text, text  # nothing ellipsized
    lines = ANSI.sub("", text).splitlines()
    starts = [i for i, line in enumerate(lines) if line.split(" ")[0] in commands]
    assert [lines[i].split(" ")[0] for i in starts] == list(commands), text
    for i, end in zip(starts, [*starts[1:], len(lines)]):
        column = lines[i].index("/")  # the command is the only value with a slash
        folded = "".join(line[column:].rstrip() for line in lines[i:end])
        assert folded.replace(" ", "") == commands[lines[i].split(" ")[0]].replace(" ", ""), text


@pytest.mark.parametrize("width", [60, 30])
def test_jobs_table_on_a_narrow_terminal_keeps_identifiers_whole(workspace, width):
    from rich.console import Console

    from drivelab.cli.commands.jobs import print_jobs_table
    from drivelab.jobs import list_jobs
    from drivelab.workspace import Workspace

    commands = {run: record_job(workspace, run, *LONG_ARGS) for run in RUNS}
    out = io.StringIO()
    print_jobs_table(Console(file=out, width=width, force_terminal=True, color_system=None), list_jobs(Workspace(workspace)))
    assert_rows_whole(out.getvalue(), commands)
    if width == 60:  # room enough for whole run names: the other columns wrap and fold within it
        assert max(map(len, out.getvalue().splitlines())) <= width, out.getvalue()


def on_terminal(*args: str, cwd: Path, columns: int) -> str:
    """``drivelab ARGS`` with its stderr on a pseudo-terminal ``columns`` wide: what it showed there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        drivelab_argv(*args), cwd=cwd, env=child_env(COLUMNS=str(columns)), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave
    )
    os.close(slave)
    shown = bytearray()
    with contextlib.suppress(OSError):  # EIO once the other side is closed
        while data := os.read(master, 65536):
            shown += data
    os.close(master)
    assert proc.wait(60) == 0, shown.decode(errors="replace")
    return shown.decode().replace("\r\n", "\n")


def test_jobs_list_wraps_nothing_off_a_terminal_and_cuts_nothing_on_one(workspace):
    commands = {run: record_job(workspace, run, *LONG_ARGS) for run in RUNS}
    piped = drivelab("jobs", "list", cwd=workspace, env=child_env(COLUMNS="60"))
    assert piped.returncode == 0, describe(piped)
    rows = [line for line in piped.stderr.splitlines() if line.split(" ")[0] in commands]
    assert len(rows) == 2 and all(commands[row.split(" ")[0]] in row for row in rows), describe(piped)  # one line a job
    shown = on_terminal("jobs", "list", cwd=workspace, columns=60)
    assert_rows_whole(shown, commands)
    assert max(len(line) for line in ANSI.sub("", shown).splitlines()) <= 60, shown


# --- notebooks -------------------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_job_with_a_parameter_saves_its_output_notebook(workspace):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("greeting = 'hello'\ntimes = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, pathlib\n"
            "print(greeting * times)\n"
            "pathlib.Path(os.environ['DRIVELAB_RUN_DIR'], 'from-notebook.txt').write_text(os.getcwd())"
        ),
    ]
    path = workspace / "drive" / "colab" / "greet.ipynb"
    nbformat.write(nb, path)

    proc = drivelab("run", "--run", "nb", "-p", "greeting", "hi", "-p", "times", "3", "drive/colab/greet.ipynb", cwd=workspace, timeout=300)
    assert proc.returncode == 0, describe(proc)
    run_dir = workspace / "drive" / "runs" / "nb"
    out = nbformat.read(run_dir / "greet.ipynb", as_version=4)
    injected = [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'greeting = "hi"' in injected[0].source and "times = 3" in injected[0].source
    outputs = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.outputs)
    assert "hihihi" in outputs
    assert (run_dir / "from-notebook.txt").read_text() == str(workspace)  # ran in the workspace
    assert "hihihi" in (run_dir / "log").read_text()
    status = status_of(workspace, "nb")
    assert status["kind"] == "notebook" and status["state"] == "succeeded" and status["output"] == str(run_dir / "greet.ipynb")

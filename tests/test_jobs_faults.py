"""Faults a job cannot recover from by being restarted: each ends at once, with one clean error.

- a full disk while the training code writes a file of its run (checkpoint,
  metrics, curves, final weights): :class:`DiskFullError`, exit code
  :data:`NO_RETRY_EXIT_CODE`, not restarted;
- the same failure twice in a row with no new checkpoint between: not restarted again;
- a rerun with other settings than the run it would resume: exit code 2, naming both values;
- a notebook cell that raises: one short summary an attempt (cell, exception, executed copy).

Real processes (``python -m drivelab run``) in a fresh workspace, as in ``test_jobs.py``;
the full disk is a real small tmpfs (tests run as root in CI; elsewhere, skipped).
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from _guards import skip_or_fail
from drivelab.errors import NO_RETRY_EXIT_CODE, DiskFullError
from test_jobs import dataset_root, describe, drivelab, error_part, script, status_of, workspace  # noqa: F401 -- fixtures too


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` bytes at ``where``: writing past it fails with ENOSPC."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _main_py(dataset_root: Path, *extra: str) -> list[str]:
    return ["drive/colab/main.py", "--data-dir", str(dataset_root), "--limit-train", "500", "--device", "cpu", "--threads", "1", "--log-every", "0", *extra]


# --- a full disk ------------------------------------------------------------------------------


def test_disk_full_while_a_checkpoint_is_written_is_one_clean_error_not_retried(workspace, dataset_root):
    # Room for the log, status.json and metrics.jsonl; not for a checkpoint (about 500 kB).
    with small_tmpfs(workspace / "drive" / "runs" / "full", "256k"):
        proc = drivelab("run", "--run", "full", *_main_py(dataset_root, "--epochs", "1"), cwd=workspace)
        status = status_of(workspace, "full")
    assert proc.returncode == 1, describe(proc)
    assert [a["exit_code"] for a in status["attempts"]] == [NO_RETRY_EXIT_CODE], describe(proc)
    assert "Traceback" not in proc.stderr and "unexpected pos" not in proc.stderr, describe(proc)
    error = error_part(proc.stderr, "full")
    assert "no space left on device" in error and "ckpt-epoch0001.pt" in error and " free" in error, describe(proc)
    assert "not restarted" in status["summary"] and "restarting" not in proc.stderr, describe(proc)


def test_a_status_that_cannot_be_written_on_a_full_disk_is_said_once_and_the_job_goes_on(workspace, script):
    path = script("hello.py", "print('hello from the job', flush=True)\n")
    with small_tmpfs(workspace / "drive" / "runs" / "nospace", "64k") as run_dir:
        with contextlib.suppress(OSError), open(run_dir / "filler", "wb") as fh:
            while True:
                fh.write(b"x" * 4096)  # until the file system is full
        proc = drivelab("run", "--run", "nospace", path, cwd=workspace)
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said, describe(proc)
    assert "hello from the job" in said, describe(proc)
    assert said.count("status.json could not be written: No space left on device") == 1, describe(proc)
    assert proc.returncode == 0, describe(proc)


def test_every_write_of_the_training_code_on_a_full_disk_raises_disk_full_error(tmp_path):
    import torch

    from drivelab.train import EpochMetrics, plot_curves, save_checkpoint, save_model, write_metrics

    history = [EpochMetrics(1, 0.5, 0.4, 98.0, 1.0, 1.0, 0.1)] * 2000  # about 300 kB of lines
    big = {"w": torch.zeros(100_000)}
    with small_tmpfs(tmp_path / "full", "64k") as full:
        writes = {
            "ckpt-epoch0001.pt": lambda: save_checkpoint(full, 1, {"model": big}),
            "model.pt": lambda: save_model(full / "model.pt", big),
            "metrics.jsonl": lambda: write_metrics(full / "metrics.jsonl", history),
            "curves.png": lambda: plot_curves(full / "curves.png", history[:3]),
        }
        (full / "filler").write_bytes(b"\0" * (60 * 1024))  # curves.png (about 40 kB) does not fit either
        for name, write in writes.items():
            with pytest.raises(DiskFullError) as info:
                write()
            error = info.value
            assert error.path == full / name and error.exit_code == NO_RETRY_EXIT_CODE
            assert f"cannot write {full / name}: no space left on device" in str(error) and "free" in str(error), str(error)
            assert "free" in error.hint and isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.ENOSPC
            assert sorted(p.name for p in full.iterdir()) == ["filler"]  # nothing half-written left behind


# --- failures a restart cannot fix ------------------------------------------------------------


def test_the_same_failure_twice_without_a_new_checkpoint_is_not_retried_again(workspace, script):
    path = script(
        "same.py",
        """
        import os
        print("attempt", os.environ["DRIVELAB_RESTART_COUNT"], flush=True)
        raise RuntimeError("the data folder is not there")
        """,
    )
    proc = drivelab("run", "--run", "same", "--backoff", "0", path, cwd=workspace)  # 3 restarts allowed
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "same")
    assert [a["exit_code"] for a in status["attempts"]] == [1, 1], describe(proc)
    assert "the same failure twice in a row without a new checkpoint" in status["summary"], status["summary"]
    assert "RuntimeError: the data folder is not there" in status["summary"]
    error = error_part(proc.stderr, "same")
    assert "not restarted again" in error and "hint:" in error, describe(proc)


def test_a_failure_that_changes_each_time_is_still_retried(workspace, script):
    path = script("differs.py", 'import os\nraise RuntimeError("attempt " + os.environ["DRIVELAB_RESTART_COUNT"])\n')
    proc = drivelab("run", "--run", "differs", "--restarts", "2", "--backoff", "0", path, cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "differs")
    assert len(status["attempts"]) == 3 and "gave up after 3 attempt(s)" in status["summary"], describe(proc)


@pytest.mark.parametrize(
    "source, why",
    [
        (f"raise SystemExit({NO_RETRY_EXIT_CODE})\n", f"exit code {NO_RETRY_EXIT_CODE}"),
        ("import errno, os\nraise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), 'out.bin')\n", "no space left on device"),
    ],
    ids=["no-retry-exit-code", "enospc-in-its-output"],
)
def test_a_no_retry_exit_code_or_a_full_disk_in_the_output_is_not_restarted(workspace, script, source, why):
    path = script("stop.py", source)
    proc = drivelab("run", "--run", "stop", "--backoff", "30", path, cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "stop")
    assert len(status["attempts"]) == 1 and "restarting" not in proc.stderr, describe(proc)
    assert why in status["summary"] and "not restarted" in status["summary"], status["summary"]


def test_rerunning_a_run_with_other_settings_is_a_usage_error_naming_both_values(workspace, dataset_root):
    first = drivelab("run", "--run", "exp", *_main_py(dataset_root, "--epochs", "1"), cwd=workspace)
    assert first.returncode == 0, describe(first)
    proc = drivelab("run", "--run", "exp", *_main_py(dataset_root, "--epochs", "2"), cwd=workspace)
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "exp")
    assert [a["exit_code"] for a in status["attempts"]] == [2] and "usage error" in status["summary"], describe(proc)
    error = error_part(proc.stderr, "exp")
    assert "epochs: the run holds 1, asked 2" in error and "--epochs 1" in error and "another --run name" in error, describe(proc)
    assert "Traceback" not in proc.stderr


# --- notebooks ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_notebook_cell_that_raises_is_one_short_summary_and_not_retried_again(workspace):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("print('loading')"),
        nbformat.v4.new_markdown_cell("## the model"),
        nbformat.v4.new_code_cell("size = int('large')  # the form's value\nprint(size)"),
        nbformat.v4.new_code_cell("print('never')"),
    ]
    nbformat.write(nb, workspace / "drive" / "colab" / "bad.ipynb")
    proc = drivelab("run", "--run", "nb", "--backoff", "0", "drive/colab/bad.ipynb", cwd=workspace, timeout=300)
    assert proc.returncode == 1, describe(proc)
    status = status_of(workspace, "nb")
    assert len(status["attempts"]) == 2 and "the same failure twice" in status["summary"], describe(proc)
    out = workspace / "drive" / "runs" / "nb" / "bad.ipynb"
    cell = "notebook failed in cell 3: size = int('large')  # the form's value"
    for text in (cell, f"executed copy: {out}"):
        assert proc.stderr.count(text) == 3, describe(proc)  # once per attempt, once in the error
    exception = "ValueError: invalid literal for int() with base 10: 'large'"
    assert exception in status["summary"] and error_part(proc.stderr, "nb").splitlines()[-2] == exception, describe(proc)
    assert "Traceback" not in proc.stderr and "click" not in proc.stderr and "PapermillExecutionError" not in proc.stderr, describe(proc)
    assert len(proc.stderr.splitlines()) < 60, describe(proc)  # 235 lines before: 4 attempts of about 50

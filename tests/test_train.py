"""Training: it learns, checkpoints are atomic and verified, resume is exact."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from drivelab.data import get_mnist
from drivelab.errors import CheckpointError, DataError, RecipeError, RunSettingsError, TrainError, TrainOptionError
from drivelab.train import (
    CheckpointSkipped,
    EpochEnd,
    EpochMetrics,
    RunStarted,
    TrainConfig,
    check_run_name,
    curves_figure,
    list_checkpoints,
    load_latest_checkpoint,
    read_metrics,
    train,
)
from drivelab.workspace import init_workspace

# Small runs on the CPU: a subset of the training set, the full 10,000-image test set.
SMALL = dict(limit_train=4000, epochs=2, device="cpu")


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory, mnist_mirror) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    get_mnist(root, mirrors=[mnist_mirror.url])
    return root


def _config(dataset_root: Path, run_dir: Path, **overrides) -> TrainConfig:
    return TrainConfig(**{"dataset_root": dataset_root, "run_dir": run_dir, **SMALL, **overrides})


def _state_dicts_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_short_run_learns_and_writes_its_run_folder(dataset_root, tmp_path):
    events = []
    result = train(_config(dataset_root, tmp_path / "run"), progress=events.append)
    assert result.final_accuracy is not None and result.final_accuracy > 90.0  # chance is 10%
    assert [m.epoch for m in result.history] == [1, 2]
    assert isinstance(events[0], RunStarted) and events[0].start_epoch == 0
    assert [e.metrics.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]

    run = tmp_path / "run"
    assert [m.epoch for m in read_metrics(run / "metrics.jsonl")] == [1, 2]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [epoch for epoch, _ in list_checkpoints(run)] == [2, 1]
    assert not list(run.glob("*.incomplete"))
    state = torch.load(run / "model.pt", weights_only=True)
    assert any(k.endswith("weight") for k in state)


def test_reference_recipe_runs_its_dataloader_pipeline(dataset_root, tmp_path):
    result = train(_config(dataset_root, tmp_path / "ref", recipe="reference", limit_train=1280, epochs=1))
    assert result.recipe == "reference"
    assert result.final_accuracy is not None and result.final_accuracy > 50.0


def test_resume_after_a_finished_epoch_matches_an_uninterrupted_run(dataset_root, tmp_path):
    whole = train(_config(dataset_root, tmp_path / "whole"))

    first = train(_config(dataset_root, tmp_path / "split", epochs=2), progress=None)
    assert first.resumed_from is None
    # Throw away the last checkpoint: the next call must redo epoch 2 from epoch 1.
    for suffix in ("", ".sha256"):
        (tmp_path / "split" / f"ckpt-epoch0002.pt{suffix}").unlink()
    again = train(_config(dataset_root, tmp_path / "split"))
    assert again.resumed_from == 1
    assert [m.epoch for m in again.history] == [1, 2]
    assert again.final_accuracy == whole.final_accuracy
    assert _state_dicts_equal(
        torch.load(tmp_path / "whole" / "model.pt", weights_only=True),
        torch.load(tmp_path / "split" / "model.pt", weights_only=True),
    )


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-digest"])
def test_damaged_checkpoint_is_skipped_never_loaded(dataset_root, tmp_path, damage):
    run = tmp_path / "run"
    train(_config(dataset_root, run))
    newest = run / "ckpt-epoch0002.pt"
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        middle = len(data) // 2
        newest.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    else:
        (run / "ckpt-epoch0002.pt.sha256").unlink()

    loaded = load_latest_checkpoint(run)
    assert loaded.path == run / "ckpt-epoch0001.pt"
    assert [p for p, _ in loaded.skipped] == [newest]

    events = []
    result = train(_config(dataset_root, run), progress=events.append)
    skipped = [e for e in events if isinstance(e, CheckpointSkipped)]
    assert [e.path for e in skipped] == [newest]
    assert result.resumed_from == 1
    assert [m.epoch for m in result.history] == [1, 2]


def test_resume_refuses_a_run_with_other_settings(dataset_root, tmp_path):
    run = tmp_path / "run"
    train(_config(dataset_root, run, epochs=1))
    with pytest.raises(RunSettingsError) as info:
        train(_config(dataset_root, run, epochs=1, batch_size=64))
    error = info.value
    assert isinstance(error, CheckpointError) and error.exit_code == 2  # a usage error: `drivelab run` does not retry it
    assert "batch_size: the run holds None, asked 64" in str(error) and error.differing == {"batch_size": (None, 64)}
    assert "another --run name" in error.hint


def test_no_resume_starts_over(dataset_root, tmp_path):
    run = tmp_path / "run"
    train(_config(dataset_root, run, epochs=1))
    result = train(_config(dataset_root, run, epochs=1, resume=False))
    assert result.resumed_from is None
    assert [m.epoch for m in read_metrics(run / "metrics.jsonl")] == [1]


def test_bad_recipe_device_and_data_are_clear_errors(dataset_root, tmp_path):
    with pytest.raises(RecipeError, match="--recipe 'nope'.*fast, fast-long, reference"):
        train(_config(dataset_root, tmp_path / "a", recipe="nope"))
    with pytest.raises(TrainError, match="not available") as info:
        train(_config(dataset_root, tmp_path / "b", device="cuda:7" if not torch.cuda.is_available() else "mps"))
    assert info.value.hint
    with pytest.raises(DataError, match="MNIST file missing") as info:
        train(_config(tmp_path / "empty", tmp_path / "c"))
    assert "drivelab data get mnist" in info.value.hint


def _main_py(workspace: Path, dataset_root: Path, run: str, *extra: str) -> list[str]:
    return [
        sys.executable, str(workspace / "drive" / "colab" / "main.py"),
        "--data-dir", str(dataset_root), "--run", run,
        "--limit-train", "6000", "--epochs", "3", "--threads", "1", "--device", "cpu", "--log-every", "0", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_resumes_exactly(dataset_root, tmp_path):
    """A run killed with SIGKILL during epoch 2 resumes after epoch 1 and ends bitwise-equal."""
    ws = init_workspace(tmp_path / "ws").workspace
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}

    subprocess.run(_main_py(ws.root, dataset_root, "whole"), check=True, env=env, capture_output=True, timeout=300)

    run = ws.runs / "killed"
    # Progress lines within an epoch say when epoch 2 is under way: killed on its first one, past its first step.
    argv = _main_py(ws.root, dataset_root, "killed")
    argv[argv.index("--log-every") + 1] = "0.05"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the process's own output paces this loop; pytest's timeout bounds it
            said.append(line)
            if re.match(r"\s*epoch 2 \[\d*[1-9]\d*/", line):
                break
        else:
            raise AssertionError("the run ended before epoch 2 was under way:\n" + "".join(said))
        assert (run / "ckpt-epoch0001.pt.sha256").exists(), "".join(said)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [e for e, _ in list_checkpoints(run)] == [1]
    assert not (run / "model.pt").exists()

    rerun = subprocess.run(_main_py(ws.root, dataset_root, "killed"), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming after epoch 1" in rerun.stdout
    assert "Epoch  1" not in rerun.stdout and "Epoch  3" in rerun.stdout
    assert [m.epoch for m in read_metrics(run / "metrics.jsonl")] == [1, 2, 3]
    assert _state_dicts_equal(
        torch.load(ws.runs / "whole" / "model.pt", weights_only=True),
        torch.load(run / "model.pt", weights_only=True),
    )


def test_recipe_names_match_the_registry():
    from drivelab.train import RECIPE_NAMES, RECIPES

    assert set(RECIPE_NAMES) == set(RECIPES) and RECIPE_NAMES[0] == "fast"


BAD_CONFIG = [
    ("lr", -1.0, "--lr"),
    ("lr", 0.0, "--lr"),
    ("lr", float("inf"), "--lr"),
    ("batch_size", 0, "--batch-size"),
    ("epochs", 0, "--epochs"),
    ("epochs", 1.5, "--epochs"),
    ("threads", 0, "--threads"),
    ("limit_train", 0, "--limit-train"),
    ("seed", -1, "--seed"),
    ("seed", 2**32, "--seed"),
    ("device", "gpu", "--device"),
    ("device", "cuda:x", "--device"),
    ("recipe", "nope", "--recipe"),
    ("keep_checkpoints", 0, "keep_checkpoints"),
    ("stop_at_accuracy", 101.0, "stop_at_accuracy"),
]


@pytest.mark.parametrize(("field", "value", "option"), BAD_CONFIG, ids=[f"{f}={v}" for f, v, _ in BAD_CONFIG])
def test_config_refuses_a_bad_value_naming_option_value_and_rule(tmp_path, field, value, option):
    with pytest.raises(TrainOptionError) as info:
        TrainConfig(dataset_root=tmp_path, run_dir=tmp_path / "run", **{field: value})
    err = info.value
    assert isinstance(err, RecipeError) and err.exit_code == 2  # a usage error
    assert err.option == option and err.value == value
    assert str(err).startswith(f"{option} {value!r}") and "must be" in str(err) and err.allowed in str(err)


def test_bad_lr_creates_no_run_folder(dataset_root, tmp_path):
    # It used to reach the optimizer: a ValueError from torch, and an empty run folder left behind.
    with pytest.raises(TrainOptionError, match="--lr -1.0"):
        train(_config(dataset_root, tmp_path / "run", lr=-1.0))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../up", "a/b", ".hidden", "-flag", "x" * 129, "a b"])
def test_unsafe_run_names_are_refused(name):
    with pytest.raises(TrainOptionError) as info:
        check_run_name(name)
    assert info.value.option == "--run" and repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["r1", "mnist-fast-20250101-120000", "exp_2.b", "x" * 128])
def test_safe_run_names_pass(name):
    assert check_run_name(name) == name


def test_curves_label_the_99_percent_line():
    history = [EpochMetrics(1, 0.40, 0.10, 97.5, 2.0, 2.0, 0.2), EpochMetrics(2, 0.08, 0.04, 99.1, 2.0, 4.0, 0.1)]
    fig = curves_figure(history, title="MNIST")
    accuracy = fig.axes[1]
    (target,) = [line for line in accuracy.get_lines() if set(line.get_ydata()) == {99.0}]
    assert "99" in target.get_label() and not target.get_label().startswith("_")  # a legend entry, not hidden
    legend = accuracy.get_legend()
    assert legend is not None and target.get_label() in [t.get_text() for t in legend.get_texts()]


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5])
def test_fast_recipe_schedules_a_run_of_a_few_batches(steps):
    # OneCycleLR divided by zero for 4 steps or fewer (e.g. --limit-train 500 --epochs 1).
    from drivelab.train import get_recipe

    model = torch.nn.Linear(2, 2)
    optimizer, scheduler, per_batch = get_recipe("fast").build_optimizer(model, steps, 1, None)
    assert per_batch
    for _ in range(steps):
        assert 0 < optimizer.param_groups[0]["lr"] <= 0.2
        optimizer.step()
        scheduler.step()


class _KilledAfterCheckpoint(BaseException):
    """Stands for a SIGKILL that lands just after an epoch's checkpoint is written."""


def test_a_kill_right_after_a_checkpoint_loses_no_metrics_line(dataset_root, tmp_path, monkeypatch):
    import drivelab.train._loop as loop

    real_save = loop.save_checkpoint

    def save_then_die(run_dir, epoch, state, **kwargs):
        path = real_save(run_dir, epoch, state, **kwargs)
        if epoch == 2:
            raise _KilledAfterCheckpoint
        return path

    run = tmp_path / "run"
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(_KilledAfterCheckpoint):
        train(_config(dataset_root, run, epochs=3, limit_train=1000))
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    result = train(_config(dataset_root, run, epochs=3, limit_train=1000))
    assert result.resumed_from == 2
    assert [m.epoch for m in read_metrics(run / "metrics.jsonl")] == [1, 2, 3]

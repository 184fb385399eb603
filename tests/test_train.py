"""Training: it learns, checkpoints are atomic and verified, resume is exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from drivelab.data import get_mnist
from drivelab.errors import CheckpointError, DataError, RecipeError, TrainError
from drivelab.train import (
    CheckpointSkipped,
    EpochEnd,
    RunStarted,
    TrainConfig,
    list_checkpoints,
    load_latest_checkpoint,
    read_metrics,
    train,
)
from drivelab.workspace import init_workspace

# Small runs: a subset of the training set, the full 10,000-image test set.
SMALL = dict(limit_train=4000, epochs=2)


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
    with pytest.raises(CheckpointError) as info:
        train(_config(dataset_root, run, epochs=1, batch_size=64))
    assert "batch_size" in str(info.value) and info.value.hint


def test_no_resume_starts_over(dataset_root, tmp_path):
    run = tmp_path / "run"
    train(_config(dataset_root, run, epochs=1))
    result = train(_config(dataset_root, run, epochs=1, resume=False))
    assert result.resumed_from is None
    assert [m.epoch for m in read_metrics(run / "metrics.jsonl")] == [1]


def test_bad_recipe_device_and_data_are_clear_errors(dataset_root, tmp_path):
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
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
        "--limit-train", "6000", "--epochs", "3", "--threads", "1", "--log-every", "0", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_resumes_exactly(dataset_root, tmp_path):
    """A run killed with SIGKILL during epoch 2 resumes after epoch 1 and ends bitwise-equal."""
    ws = init_workspace(tmp_path / "ws").workspace
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}

    subprocess.run(_main_py(ws.root, dataset_root, "whole"), check=True, env=env, capture_output=True, timeout=300)

    run = ws.runs / "killed"
    proc = subprocess.Popen(_main_py(ws.root, dataset_root, "killed"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not (run / "ckpt-epoch0001.pt.sha256").exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no checkpoint of epoch 1 in time"
            time.sleep(0.02)
        time.sleep(0.3)  # well inside epoch 2
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

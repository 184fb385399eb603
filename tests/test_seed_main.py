"""drive/colab/main.py run as a user runs it: options checked before anything is made, PyTorch missing said in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mirror_server import DEFAULT_DIRECTORY, closed_port_url

from drivelab.data import get_mnist
from drivelab.workspace import init_workspace

NO_TORCH = 'raise ModuleNotFoundError("No module named \'torch\'", name="torch")\n'


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return init_workspace(tmp_path_factory.mktemp("seed") / "lab").workspace.root


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    get_mnist(root, mirrors=[DEFAULT_DIRECTORY.as_uri()])
    return root


@pytest.fixture
def no_torch(tmp_path) -> Path:
    """A folder that, first on PYTHONPATH, makes ``import torch`` fail as if PyTorch were not installed."""
    (tmp_path / "no-torch" / "torch").mkdir(parents=True)
    (tmp_path / "no-torch" / "torch" / "__init__.py").write_text(NO_TORCH)
    return tmp_path / "no-torch"


def run_main(workspace: Path, dataset_root: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """main.py on a small, CPU-only run: a dead mirror, so that nothing could be downloaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    base = ["--data-dir", str(dataset_root), "--mirror", closed_port_url(), "--device", "cpu",
            "--epochs", "1", "--limit-train", "500", "--log-every", "0"]  # fmt: skip
    return subprocess.run(
        [sys.executable, str(workspace / "drive" / "colab" / "main.py"), *base, *args],
        cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def runs(workspace: Path) -> list[str]:
    return sorted(p.name for p in (workspace / "drive" / "runs").iterdir())


# (arguments, what stderr must name: the option and the value given)
BAD = {
    "lr-negative": (["--lr", "-1"], ["--lr", "-1"]),
    "lr-zero": (["--lr", "0"], ["--lr", "0"]),
    "lr-nan": (["--lr", "nan"], ["--lr", "nan"]),
    "batch-size": (["--batch-size", "0"], ["--batch-size", "0"]),
    "epochs": (["--epochs", "0"], ["--epochs", "0"]),
    "threads": (["--threads", "0"], ["--threads", "0"]),
    "limit-train": (["--limit-train", "0"], ["--limit-train", "0"]),
    "limit-train-negative": (["--limit-train", "-5"], ["--limit-train", "-5"]),
    "seed-negative": (["--seed", "-1"], ["--seed", "-1"]),
    "seed-huge": (["--seed", str(2**64)], ["--seed", str(2**64)]),
    "run-parent": (["--run", "../escape"], ["--run", "../escape"]),
    "run-slash": (["--run", "a/b"], ["--run", "a/b"]),
    "run-hidden": (["--run", ".hidden"], ["--run", ".hidden"]),
    "run-empty": (["--run", ""], ["--run", "''"]),
    "device": (["--device", "gpu"], ["--device", "gpu"]),
    "mirror": (["--mirror", "http://"], ["mirror", "http://"]),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_option_exits_2_before_anything_is_made(workspace, dataset_root, case):
    args, named = case
    before = runs(workspace)
    proc = run_main(workspace, dataset_root, *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    for text in named:
        assert text in proc.stderr, output
    assert "must be" in proc.stderr or "an http://, https:// or file:// URL" in proc.stderr, output  # what is allowed
    assert runs(workspace) == before
    assert not (workspace / "drive" / "dataset" / "MNIST").exists()


def test_good_options_train(workspace, dataset_root):
    proc = run_main(workspace, dataset_root, "--run", "ok-1", "--threads", "1", "--lr", "0.05", "--seed", "7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Test accuracy" in proc.stdout
    assert (workspace / "drive" / "runs" / "ok-1" / "model.pt").is_file()


def test_without_torch_main_says_so_in_one_line(workspace, dataset_root, no_torch):
    before = runs(workspace)
    proc = run_main(workspace, dataset_root, "--run", "no-torch", pythonpath=no_torch)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    error, hint = proc.stderr.strip().splitlines()  # what is wrong, and what to do: nothing else
    assert error.startswith("error: PyTorch is not installed") and hint.startswith("hint: run `drivelab setup torch`")
    assert runs(workspace) == before


def test_without_torch_the_train_package_raises_torch_missing(tmp_path, no_torch):
    code = """
import json, drivelab.train as t
from drivelab.errors import TorchMissingError
seen = {}
for name in t.__all__:
    try:
        getattr(t, name)
        seen[name] = "ok"
    except TorchMissingError as exc:
        seen[name] = f"{exc} | {exc.hint}"
print(json.dumps(seen))
"""
    env = {**os.environ, "PYTHONPATH": str(no_torch)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = json.loads(proc.stdout)
    # What describes a run needs no PyTorch; what trains says it is missing.
    for name in ("TrainConfig", "check_run_name", "EpochMetrics", "read_metrics", "list_checkpoints", "latest_complete_checkpoint",
                 "RunStarted", "EpochEnd", "BatchProgress", "CheckpointSkipped", "recipe_names"):  # fmt: skip
        assert seen[name] == "ok", name
    for name in ("train", "join_world", "pick_device", "load_mnist", "RECIPES"):
        assert seen[name].startswith("PyTorch is not installed") and "drivelab setup torch" in seen[name], name

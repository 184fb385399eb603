"""``drivelab data get`` as a user sees it, output to a pipe: what was wrong, what was done, and no needless bars."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mirror_server import DEFAULT_DIRECTORY, closed_port_url

from drivelab.data import get_mnist, mnist_raw_dir
from drivelab.workspace import init_workspace

LABELS = "t10k-labels-idx1-ubyte"
LABELS_MD5 = "27ae3e4e09519cfbb04c329615203637"
ACCEPTED = "http://, https:// or file://"


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A workspace holding all of MNIST, verified."""
    root = init_workspace(tmp_path / "lab").workspace.root
    get_mnist(root / "drive" / "dataset", mirrors=[DEFAULT_DIRECTORY.as_uri()])
    return root


def raw(workspace: Path) -> Path:
    return mnist_raw_dir(workspace / "drive" / "dataset")


def data_get(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_") and k not in ("FORCE_COLOR", "COLUMNS")}
    child.update(NO_COLOR="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", **env)
    return subprocess.run(
        [sys.executable, "-m", "drivelab", "data", "get", "mnist", "-w", str(workspace), *args],
        env=child, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_corrupt_file_is_named_and_replaced_then_present_files_show_no_bar(workspace, make_mirror):
    (raw(workspace) / LABELS).write_bytes(b"damaged on disk\n")
    damaged = hashlib.md5(b"damaged on disk\n").hexdigest()
    server = make_mirror()

    proc = data_get(workspace, "--mirror", server.url)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    line = next(line for line in err.splitlines() if damaged in line)
    assert LABELS in line and LABELS_MD5 in line  # which file, what it should be, what it is
    assert f"{server.url}{LABELS}.gz" in err and "replaced" in err  # and where the good copy came from
    assert "1 replaced" in err
    assert hashlib.md5((raw(workspace) / LABELS).read_bytes()).hexdigest() == LABELS_MD5

    again = data_get(workspace, "--mirror", server.url)
    assert again.returncode == 0, again.stderr
    assert "bytes" not in again.stderr and "━" not in again.stderr, again.stderr
    assert again.stderr.count("already present") == 4
    assert "replaced" not in again.stderr and damaged not in again.stderr


def test_retry_message_counts_the_mirrors_left(workspace, make_mirror):
    (raw(workspace) / LABELS).unlink()
    missing = make_mirror(missing={f"{LABELS}.gz"})
    corrupt = make_mirror(corrupt={f"{LABELS}.gz"})
    good = make_mirror()
    proc = data_get(workspace, "--mirror", missing.url, "--mirror", corrupt.url, "--mirror", good.url)
    assert proc.returncode == 0, proc.stderr
    assert "trying the next mirror (2 left)" in proc.stderr
    assert "trying the next mirror (1 left)" in proc.stderr


def test_last_mirror_failing_says_no_mirror_is_left(workspace):
    (raw(workspace) / LABELS).unlink()
    dead = closed_port_url()
    proc = data_get(workspace, "--mirror", dead)
    assert proc.returncode == 1, proc.stderr
    assert "no mirror left" in proc.stderr
    assert "trying the next mirror" not in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("mirror", ["notaurl", "ftp://example.org/mnist/", "http://", "file://otherhost/srv/mnist/"])
def test_bad_mirror_is_refused_with_nothing_to_fetch(workspace, mirror):
    for proc, source in (
        (data_get(workspace, "--mirror", mirror), "--mirror"),
        (data_get(workspace, DRIVELAB_MNIST_MIRROR=mirror), "DRIVELAB_MNIST_MIRROR"),
    ):
        assert proc.returncode == 2, (source, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert repr(mirror) in proc.stderr and ACCEPTED in proc.stderr, (source, proc.stderr)
        assert "verified" not in proc.stderr  # nothing else was done
    assert "DRIVELAB_MNIST_MIRROR" in proc.stderr  # says where the bad value came from


def test_a_failed_get_leaves_no_empty_dataset_folder(tmp_path):
    ws = init_workspace(tmp_path / "lab").workspace.root
    dataset = ws / "drive" / "dataset"
    before = sorted(p.relative_to(ws) for p in dataset.rglob("*"))
    proc = data_get(ws, "--mirror", closed_port_url())
    assert proc.returncode == 1, proc.stderr
    assert "could not download" in proc.stderr
    assert not (dataset / "MNIST").exists()  # no empty MNIST/raw left half-made
    assert sorted(p.relative_to(ws) for p in dataset.rglob("*")) == before


def test_a_failed_stage_leaves_no_empty_scratch_folder(tmp_path):
    from drivelab.data import stage_dataset
    from drivelab.errors import StageError
    from drivelab.workspace import Workspace

    ws = Workspace(init_workspace(tmp_path / "lab").workspace.root)
    (ws.drive / "dataset" / "empty").mkdir(parents=True)
    for folder in ("dataset/missing", "dataset/empty"):
        with pytest.raises(StageError):
            stage_dataset(ws, folder)
        assert not (ws.state / "scratch").exists(), folder

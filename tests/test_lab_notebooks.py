"""Notebooks run headless (nbclient) on the lab's real kernel: the getting-started
notebook trains for a moment; a notebook written for Colab mounts the drive
with ``google.colab.drive`` unchanged. MNIST comes from the loopback mirror.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from _notebooks import lab_kernel_workspace, text_of

from drivelab.workspace import init_workspace

TRAIN_CELL = "!python drive/colab/main.py"
SHORT_RUN = " --limit-train 2000 --threads 1 --device cpu --log-every 0"


@pytest.fixture
def lab_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh workspace with the lab's kernelspec, found by Jupyter as the lab finds it."""
    monkeypatch.setenv("COLUMNS", "120")
    return lab_kernel_workspace(tmp_path, monkeypatch)


def execute(nb, ws, timeout: int = 600):
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        startup_timeout=120,
        resources={"metadata": {"path": str(ws.colab)}},  # where the lab starts a notebook's kernel
    )
    client.execute()
    return nb


@pytest.mark.slow
def test_getting_started_notebook_runs_the_recipe(lab_kernel, mnist_mirror, monkeypatch):
    ws = lab_kernel
    monkeypatch.setenv("DRIVELAB_MNIST_MIRROR", mnist_mirror.url)
    nb = nbformat.read(ws.colab / "getting-started.ipynb", as_version=4)
    train = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(TRAIN_CELL)]
    assert len(train) == 1
    train[0].source += SHORT_RUN  # the one change: a short run for the test

    execute(nb, ws)
    code = [c for c in nb.cells if c.cell_type == "code"]

    runtime = next(c for c in code if "runtime.info()" in c.source)
    html = "".join(o["data"].get("text/html", "") for o in runtime.outputs if "data" in o)
    assert "drivelab-runtime" in html and "<th" in html
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in html  # the kernel's Python
    assert "PyTorch" in html

    plan = text_of(next(c for c in code if "%drivelab setup torch --dry-run" in c.source))
    assert "torch" in plan.lower() and "exited with code" not in plan

    mounted = text_of(next(c for c in code if "drive.mount(" in c.source))
    assert f"at {ws.drive}" in mounted and "live: True" in mounted

    trained = text_of(train[0])
    match = re.search(r"Test accuracy (\d+\.\d+)%", trained)
    assert match, trained
    assert 15.0 < float(match[1]) <= 100.0, trained  # 2000 images, one epoch: above chance (10%)
    curves = list(ws.runs.glob("*/curves.png"))
    assert len(curves) == 1 and curves[0].stat().st_size > 0
    assert (ws.dataset / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()

    shown = next(c for c in code if "curves.png" in c.source)
    assert str(curves[0].relative_to(ws.root)) in text_of(shown)
    assert any("image/png" in o.get("data", {}) for o in shown.outputs)


def colab_notebook(content: Path):
    """A notebook as Colab users write it; its files go through ``content``, the folder that is Colab's ``/content``."""
    cells = [
        "from google.colab import drive\ndrive.mount('/content/drive')",
        "import os\n"
        f"os.makedirs('{content}/drive/MyDrive/colab-check', exist_ok=True)\n"
        f"with open('{content}/drive/MyDrive/colab-check/hello.txt', 'w') as f:\n"
        "    f.write('written from a Colab notebook')\n"
        f"print(open('{content}/drive/MyDrive/colab-check/hello.txt').read())",
        "drive.mount('/content/drive')",
        "import google.colab\nprint(google.colab.__file__)",
        f"drive.flush_and_unmount()\nprint(os.path.exists('{content}/drive/MyDrive'))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}  # as Colab writes it
    return nb


def check_colab_notebook(nb, ws, content: Path) -> None:
    mount, write, again, where, unmount = nb.cells
    assert text_of(mount).strip() == "Mounted at /content/drive"
    assert text_of(write).strip() == "written from a Colab notebook"
    # The file is in the workspace's drive.
    assert (ws.drive / "colab-check" / "hello.txt").read_text() == "written from a Colab notebook"
    assert "Drive already mounted at /content/drive" in text_of(again)
    shim = Path(__file__).resolve().parents[1] / "src" / "drivelab" / "colab" / "_shim"
    assert Path(text_of(where).strip()).is_relative_to(shim)
    assert "All changes made in this colab session should now be visible in Drive." in text_of(unmount)
    assert text_of(unmount).strip().endswith("False")  # MyDrive is gone after the unmount
    assert not os.path.lexists(content / "drive" / "MyDrive")
    assert (ws.drive / "colab-check" / "hello.txt").is_file()  # and the file stays in the drive


@pytest.mark.slow
def test_colab_notebook_runs_unchanged(lab_kernel, tmp_path, monkeypatch):
    """The whole path a Colab notebook takes, as any user: ``/content`` is a folder of the test's."""
    ws = lab_kernel
    content = tmp_path / "content"
    monkeypatch.setenv("DRIVELAB_COLAB_CONTENT", str(content))  # the kernel inherits it
    real_before = os.path.lexists("/content/drive/MyDrive")
    nb = colab_notebook(content)
    nb.cells.insert(2, nbformat.v4.new_code_cell("import os\nprint(os.readlink(os.environ['DRIVELAB_COLAB_CONTENT'] + '/drive/MyDrive'))"))
    execute(nb, ws)
    link = nb.cells.pop(2)
    # drive.mount('/content/drive') made <content>/drive/MyDrive, a link to the workspace's drive/.
    assert Path(text_of(link).strip()) == ws.drive.resolve()
    check_colab_notebook(nb, ws, content)
    assert os.path.lexists("/content/drive/MyDrive") == real_before  # the real /content is left alone


@pytest.mark.slow
def test_a_content_folder_that_cannot_be_made_says_how_to_allow_it(lab_kernel, monkeypatch):
    """What a user sees in the notebook when the folder standing for ``/content`` cannot be made, as any
    user: sysfs refuses a new folder even to root. (The real ``/content``: tests/test_colab_content.py.)"""
    monkeypatch.setenv("DRIVELAB_COLAB_CONTENT", "/sys/content")
    assert not os.path.exists("/sys/content"), "this test needs /sys to be sysfs, which refuses new folders"
    with pytest.raises(nbclient.exceptions.CellExecutionError) as failure:
        execute(colab_notebook(Path("/sys/content")), lab_kernel)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", str(failure.value))  # the traceback's colours
    assert "ColabError: cannot create /sys/content/drive" in shown
    # The hint is in the message: a notebook shows nothing else of an exception.
    assert "hint: mount under /content (the workspace, in the lab and in jobs) or at a folder you own" in shown


def test_colab_content_is_read_at_each_call(tmp_path, monkeypatch):
    from drivelab.colab import colab_content, colab_mount

    ws = init_workspace(tmp_path / "ws").workspace
    monkeypatch.delenv("DRIVELAB_COLAB_CONTENT", raising=False)
    assert colab_content() == Path("/content")
    monkeypatch.setenv("DRIVELAB_COLAB_CONTENT", str(tmp_path / "c"))
    assert colab_content() == tmp_path / "c"
    mount = colab_mount("/content/drive", workspace=ws)
    assert mount.link == tmp_path / "c" / "drive" / "MyDrive" and mount.link.resolve() == ws.drive.resolve()
    assert colab_mount(tmp_path / "elsewhere", workspace=ws).link == tmp_path / "elsewhere" / "MyDrive"  # other paths as given


def test_mount_refuses_a_mountpoint_with_files_and_inside_the_drive(tmp_path):
    from drivelab.errors import LabError
    from drivelab.colab import colab_mount

    ws = init_workspace(tmp_path / "ws").workspace
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("x")
    with pytest.raises(LabError, match="must not already contain files"):
        colab_mount(busy, workspace=ws)
    with pytest.raises(LabError, match="inside the workspace's drive"):
        colab_mount(ws.drive / "sub", workspace=ws)
    # A folder of one's own works as a mountpoint too; a second mount changes nothing.
    mount = colab_mount(tmp_path / "content" / "drive", workspace=ws)
    assert mount.link.is_symlink() and mount.link.resolve() == ws.drive.resolve() and not mount.already
    assert colab_mount(tmp_path / "content" / "drive", workspace=ws).already


def test_the_shim_never_hides_a_real_google_colab(tmp_path):
    """Kernels get drivelab's google.colab only when no other can be imported."""
    real = tmp_path / "site" / "google" / "colab"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    probe = (
        "import sys; from drivelab.colab._kernel import prepare_environment; done = prepare_environment();"
        "import google.colab; print(getattr(google.colab, 'REAL', False), 'google.colab shim' in done)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    with_real = subprocess.run([sys.executable, "-c", probe], env={**env, "PYTHONPATH": str(tmp_path / "site")},
                               capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert with_real.stdout.split() == ["True", "False"], with_real.stderr
    without = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert without.stdout.split() == ["False", "True"], without.stderr

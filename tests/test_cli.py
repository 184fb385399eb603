"""The ``drivelab`` command and ``drive/colab/main.py``, run as real subprocesses.

Every run gets a controlled environment: no ``DRIVELAB_*`` variable unless a
test sets it, no colour, and loopback exempt from any proxy. Output goes to a
pipe, where drivelab never wraps it. Mirrors are loopback servers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mirror_server import DEFAULT_DIRECTORY, closed_port_url

import drivelab
from drivelab.workspace import init_workspace

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
FIRST_FILE = "train-images-idx3-ubyte"  # fetched first, so the one a dead mirror fails on


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(key, None)
    env.pop("COLUMNS", None)
    env.update(NO_COLOR="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(extra)
    return env


def drivelab_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drivelab", *args],
        cwd=cwd,
        env=child_env(**(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python_script(script: Path | str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh, initialised workspace (its root, resolved)."""
    return init_workspace(tmp_path / "lab").workspace.root


# -- help and version --------------------------------------------------------------


def test_root_help_lists_the_commands(tmp_path):
    proc = drivelab_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    out = proc.stdout
    assert "Usage: drivelab" in out
    assert "Colab-style deep-learning workspace" in out
    for command in ("init", "demo", "data", "--version", "--debug"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["init", "--help"], ["Usage: drivelab init", "Create a workspace", "--force", "--json"]),
        (["demo", "-h"], ["Usage: drivelab demo", "fetch MNIST, train the ConvNet", "--recipe", "reference", "fast", "--epochs", "--threads", "--mirror"]),
        (["data", "--help"], ["Usage: drivelab data", "Datasets in drive/dataset", "get"]),
        (["data", "get", "--help"], ["Usage: drivelab data get", "Download a dataset", "mnist", "--mirror", "--workspace", "--json"]),
    ],
    ids=["init", "demo", "data", "data-get"],
)
def test_command_help(tmp_path, args, expected):
    proc = drivelab_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    for text in expected:
        assert text in proc.stdout, text
    assert not list(tmp_path.iterdir())  # help creates nothing


def test_version(tmp_path):
    proc = drivelab_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    # Printed on stderr today (see the report); accept either stream.
    assert f"drivelab {drivelab.__version__}" in proc.stdout + proc.stderr


def test_cli_does_not_import_torch_until_needed(tmp_path):
    code = "import sys, drivelab.cli.main; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.strip() == "False"


# -- init ----------------------------------------------------------------------------


def test_init_json_then_rerun_keep_and_force(tmp_path):
    root = (tmp_path / "lab").resolve()
    proc = drivelab_cli("init", "lab", "--json", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)  # stdout holds the JSON document and nothing else
    assert doc["kind"] == "init"
    assert doc["version"] == 1
    assert doc["workspace"] == str(root)
    assert sorted(doc["created"]) == sorted(["drive/colab/main.py", "drive/colab/getting-started.ipynb", ".drivelab/config.json"])
    assert doc["updated"] == [] and doc["kept"] == []
    for rel in ("drive/colab/main.py", "drive/dataset", "drive/runs", ".drivelab/config.json"):
        assert (root / rel).exists(), rel

    # Human output goes to stderr; an edited main.py is kept and says how to replace it.
    main = root / "drive" / "colab" / "main.py"
    main.write_text("print('mine')\n")
    proc = drivelab_cli("init", "lab", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == ""
    assert "Workspace ready" in proc.stderr and str(root) in proc.stderr
    assert "kept" in proc.stderr and "--force" in proc.stderr
    assert main.read_text() == "print('mine')\n"

    proc = drivelab_cli("init", str(root), "--force", "--json", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["updated"] == ["drive/colab/main.py"]
    assert doc["created"] == [] and doc["kept"] == []
    assert main.read_text() != "print('mine')\n"
    assert "def main(" in main.read_text()


def test_output_to_a_pipe_keeps_paths_and_commands_on_one_line(tmp_path):
    deep = tmp_path.joinpath(*(f"folder-{i:02d}-with-a-long-name" for i in range(6)))
    done = drivelab_cli("init", str(deep), cwd=tmp_path, env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert f"Workspace ready at {deep}" in lines
    next_line = next(line for line in lines if line.startswith("Next:"))
    assert f"python {deep / 'drive' / 'colab' / 'main.py'}" in next_line


def test_errors_print_brackets_and_rules_fit_a_log(tmp_path):
    done = drivelab_cli("demo", str(tmp_path / "lab"), "--mirror", "http://[bad", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "http://[bad" in done.stderr, "an error quoting user input keeps its brackets"
    assert not (tmp_path / "lab").exists(), "a bad mirror is refused before the workspace is made"
    done = drivelab_cli("demo", str(tmp_path / "lab"), "--mirror", closed_port_url(), cwd=tmp_path)
    assert f"Workspace  {tmp_path / 'lab'}" in done.stderr and "…" not in done.stderr, "a rule's title is never cut"
    done = drivelab_cli("demo", "lab", "--mirror", closed_port_url(), cwd=tmp_path)
    rules = [line for line in done.stderr.splitlines() if line.count("─") > 10]
    assert rules and all(len(line) <= 80 for line in rules), done.stderr


def test_init_on_a_file_fails_cleanly(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = drivelab_cli("init", "afile", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert_no_traceback(proc)
    assert "error:" in proc.stderr and "not a directory" in proc.stderr
    assert str((tmp_path / "afile").resolve()) in proc.stderr
    assert "hint:" in proc.stderr
    assert (tmp_path / "afile").read_text() == "x"


# -- errors a user can cause -------------------------------------------------------------


def test_data_get_outside_a_workspace(tmp_path):
    proc = drivelab_cli("data", "get", "mnist", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert_no_traceback(proc)
    assert "no drivelab workspace" in proc.stderr
    assert str(tmp_path.resolve()) in proc.stderr
    assert "hint:" in proc.stderr and "drivelab init" in proc.stderr
    assert proc.stdout == ""
    assert not list(tmp_path.iterdir())  # nothing created, nothing downloaded


def test_debug_switch_shows_the_traceback(tmp_path):
    proc = drivelab_cli("--debug", "data", "get", "mnist", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert "Traceback" in proc.stderr
    assert "no drivelab workspace" in proc.stderr


def test_demo_with_an_unknown_recipe(tmp_path):
    proc = drivelab_cli("demo", "--recipe", "nope", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)  # a usage error
    assert_no_traceback(proc)
    assert "nope" in proc.stderr
    assert "reference" in proc.stderr and "fast" in proc.stderr
    assert not (tmp_path / "drivelab-demo").exists()  # rejected before any work


def test_dead_mirror_is_reported_and_leaves_nothing(workspace):
    dead = closed_port_url()
    # Run from inside drive/colab, with no -w: the workspace is found by walking up.
    proc = drivelab_cli("data", "get", "mnist", "--mirror", dead, cwd=workspace / "drive" / "colab")
    assert proc.returncode == 1, describe(proc)
    assert_no_traceback(proc)
    assert "no drivelab workspace" not in proc.stderr
    assert f"could not download {FIRST_FILE}" in proc.stderr
    assert f"{dead}{FIRST_FILE}.gz: connection refused" in proc.stderr
    assert "hint:" in proc.stderr and "--mirror" in proc.stderr
    raw = workspace / "drive" / "dataset" / "MNIST" / "raw"
    assert not (raw / FIRST_FILE).exists()
    leftovers = sorted(p.name for p in raw.iterdir()) if raw.exists() else []
    assert not [n for n in leftovers if n in MNIST_MD5], leftovers


def test_environment_picks_workspace_and_mirror(workspace, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dead = closed_port_url()
    proc = drivelab_cli(
        "data", "get", "mnist", "-q",
        cwd=elsewhere,
        env={"DRIVELAB_WORKSPACE": str(workspace), "DRIVELAB_MNIST_MIRROR": dead},
    )
    assert proc.returncode == 1, describe(proc)
    assert_no_traceback(proc)
    assert "no drivelab workspace" not in proc.stderr  # found through DRIVELAB_WORKSPACE
    assert f"{dead}{FIRST_FILE}.gz" in proc.stderr  # tried the mirror from DRIVELAB_MNIST_MIRROR
    assert "ossci-datasets" not in proc.stderr  # and not the public defaults


def test_unknown_dataset_names_the_known_ones(workspace):
    proc = drivelab_cli("data", "get", "imagenet", "-w", str(workspace), cwd=workspace.parent)
    assert proc.returncode == 2, describe(proc)  # a usage error, as an unknown recipe
    assert_no_traceback(proc)
    assert "unknown dataset 'imagenet'" in proc.stderr
    assert "known datasets: mnist" in proc.stderr
    assert not (workspace / "drive" / "dataset" / "imagenet").exists()


def test_demo_hands_threads_to_the_training_script(tmp_path, monkeypatch):
    """`drivelab demo --threads N` runs drive/colab/main.py with --threads N (as the README recommends on a shared CPU)."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import drivelab.jobs
    from drivelab.cli.main import app

    calls = []
    monkeypatch.setattr(drivelab.jobs, "run_demo", lambda root, **kw: calls.append(kw) or SimpleNamespace(final_accuracy=None))
    done = CliRunner().invoke(app, ["demo", str(tmp_path / "lab"), "--threads", "1"])
    assert done.exit_code == 0, done.output
    assert calls and calls[0]["extra_args"] == ["--threads", "1"]
    zero = drivelab_cli("demo", "--threads", "0", cwd=tmp_path)
    assert zero.returncode == 2 and "--threads" in zero.stderr, describe(zero)
    assert not (tmp_path / "drivelab-demo").exists()


def test_an_unknown_drive_mode_is_a_usage_error(workspace):
    proc = drivelab_cli("drive", "mount", "--mode", "bogus", "-w", str(workspace), cwd=workspace.parent)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc)
    assert "unknown drive mode 'bogus'" in proc.stderr and "mount, sync" in proc.stderr


def test_choices_for_local_files_that_exclude_each_other_are_a_usage_error(workspace):
    proc = drivelab_cli("drive", "mount", "--copy-local", "--set-aside", "-w", str(workspace), cwd=workspace.parent)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc)
    assert "exclude each other" in proc.stderr and "pass one of them" in proc.stderr


def test_an_unknown_pytorch_backend_is_a_usage_error(tmp_path):
    proc = drivelab_cli("setup", "torch", "--dry-run", "--backend", "cu999", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc)
    assert "unknown PyTorch backend 'cu999'" in proc.stderr and "hint:" in proc.stderr


def test_an_unknown_or_unusable_secret_name_is_a_usage_error(workspace):
    gone = drivelab_cli("secrets", "remove", "GONE", "-w", str(workspace), cwd=workspace.parent)
    assert gone.returncode == 2, describe(gone)
    assert "no secret named 'GONE'" in gone.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "drivelab", "secrets", "set", "not a name", "-w", str(workspace)],
        cwd=workspace.parent, env=child_env(), input="x", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2, describe(bad)
    assert "not a usable secret name" in bad.stderr
    assert_no_traceback(gone)
    assert_no_traceback(bad)


def test_an_unknown_command_is_suggested_once(workspace):
    proc = drivelab_cli("secrets", "get", "-w", str(workspace), cwd=workspace.parent)
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.count("Did you mean") == 1 and "'set'" in proc.stderr, proc.stderr
    top = drivelab_cli("dta", cwd=workspace.parent)
    assert top.returncode == 2 and top.stderr.count("Did you mean") == 1 and "'data'" in top.stderr, top.stderr


def test_connect_with_an_unknown_type_names_the_known_ones(workspace):
    proc = drivelab_cli("drive", "connect", "x", "-t", "nosuchtype", "-w", str(workspace), cwd=workspace.parent)
    assert proc.returncode == 2, describe(proc)  # a usage error, found before rclone is asked to make it
    assert_no_traceback(proc)
    assert "unknown remote type 'nosuchtype'" in proc.stderr
    assert "rclone rejected" not in proc.stderr
    hint = proc.stderr[proc.stderr.index("hint:"):]
    assert "gdrive, s3, gcs, webdav, sftp, local" in hint and "dropbox" in hint  # drivelab's names, then rclone's backends
    assert drivelab_cli("drive", "list", "--json", "-w", str(workspace), cwd=workspace.parent).stdout.count('"name"') == 0
    known = drivelab_cli("drive", "connect", "y", "-t", "memory", "-w", str(workspace), cwd=workspace.parent)
    assert known.returncode == 0, describe(known)  # any rclone backend is still a type


def _drive_is_remote(workspace: Path, name: str) -> None:
    """The workspace's drive set to remote ``name``, as a mount and unmount leave it, with nothing attached."""
    config = workspace / ".drivelab" / "config.json"
    data = json.loads(config.read_text())
    data["drive"] = {"type": "remote", "remote": name, "mode": "mount"}
    data["remotes"] = {name: {"type": "local", "root": str(workspace.parent / "remote")}}
    config.write_text(json.dumps(data))


def test_unmount_and_flush_with_nothing_attached_say_so(workspace):
    said = {}
    for drive in ("local", "remote"):
        if drive == "remote":
            _drive_is_remote(workspace, "box")
        for command in ("flush", "unmount"):
            proc = drivelab_cli("drive", command, "-w", str(workspace), cwd=workspace.parent)
            assert proc.returncode == 0, describe(proc)
            out = proc.stdout + proc.stderr
            assert "flushed" not in out and "unmounted" not in out, out
            said[drive, command] = out.strip()
    assert said["local", "flush"] == "drive/ is a local folder: nothing to upload"
    assert said["local", "unmount"] == "drive/ is a local folder: nothing to unmount"
    assert said["remote", "flush"] == "the drive is not attached: nothing to flush"
    assert said["remote", "unmount"] == "the drive is not attached: nothing to unmount"
    doc = json.loads(drivelab_cli("drive", "unmount", "--json", "-w", str(workspace), cwd=workspace.parent).stdout)
    assert doc["was_attached"] is False and doc["detached"] is True


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_demo_script_makes_a_relative_workspace_where_it_is_run(tmp_path):
    """``scripts/demo.sh relws`` from another folder: the workspace is ./relws there, not in the clone."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    (clone / "scripts" / "demo.sh").write_bytes((SCRIPTS / "demo.sh").read_bytes())
    (clone / "scripts" / "bootstrap.sh").write_text('#!/usr/bin/env bash\ncd "$(dirname "$0")/.." && touch bootstrapped\n')
    (clone / ".venv" / "bin").mkdir(parents=True)
    (clone / ".venv" / "bin" / "drivelab").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$PWD" "$@"\n')
    for script in (clone / "scripts" / "demo.sh", clone / "scripts" / "bootstrap.sh", clone / ".venv" / "bin" / "drivelab"):
        script.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(["bash", str(clone / "scripts" / "demo.sh"), "relws", "--epochs", "1"], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, describe(proc)
    assert (clone / "bootstrapped").is_file()  # the set-up ran in the clone
    assert proc.stdout.splitlines() == [str(elsewhere), "demo", "relws", "--epochs", "1"]  # the demo where it was run


# -- data get ------------------------------------------------------------------------------


def test_data_get_json_downloads_then_finds_present(workspace, mnist_mirror):
    args = ("data", "get", "mnist", "-w", str(workspace), "--mirror", mnist_mirror.url, "--json")
    raw = workspace / "drive" / "dataset" / "MNIST" / "raw"

    proc = drivelab_cli(*args, cwd=workspace.parent)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "data.get" and doc["version"] == 1
    assert doc["dataset"] == "mnist"
    assert doc["raw_dir"] == str(raw)
    assert sorted(f["name"] for f in doc["files"]) == sorted(MNIST_MD5)
    for f in doc["files"]:
        assert f["status"] == "downloaded", f
        assert f["source"] == f"{mnist_mirror.url}{f['name']}.gz"
        assert f["bytes_downloaded"] == (DEFAULT_DIRECTORY / f"{f['name']}.gz").stat().st_size
        assert f["failed_attempts"] == []
    for name, digest in MNIST_MD5.items():
        assert md5(raw / name) == digest, name
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_MD5)  # no temporary files left

    again = drivelab_cli(*args, cwd=workspace.parent)
    assert again.returncode == 0, describe(again)
    doc = json.loads(again.stdout)
    assert [f["status"] for f in doc["files"]] == ["present"] * 4
    assert all(f["source"] is None and f["bytes_downloaded"] == 0 for f in doc["files"])


# -- drive/colab/main.py, run as a user would -------------------------------------------------


def test_seed_script_rejects_an_unknown_recipe(workspace):
    proc = python_script(workspace / "drive" / "colab" / "main.py", "--recipe", "nope", cwd=workspace)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc)
    assert "invalid choice: 'nope'" in proc.stderr
    assert "reference" in proc.stderr and "fast" in proc.stderr
    assert not (workspace / "drive" / "dataset" / "MNIST").exists()  # nothing fetched


def test_seed_script_reports_a_dead_mirror(workspace):
    dead = closed_port_url()
    proc = python_script(workspace / "drive" / "colab" / "main.py", "--mirror", dead, "--run", "r1", cwd=workspace)
    assert proc.returncode == 1, describe(proc)  # not a usage error: `drivelab run` may retry it
    assert_no_traceback(proc)
    assert "error: could not download" in proc.stderr
    assert f"{dead}{FIRST_FILE}.gz: connection refused" in proc.stderr
    assert "hint:" in proc.stderr
    assert not (workspace / "drive" / "runs" / "r1" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_seed_script_downloads_and_trains(tmp_path, mnist_mirror):
    init_workspace(tmp_path / "lab")
    proc = python_script(
        "lab/drive/colab/main.py", "--epochs", "1", "--limit-train", "3000", "--run", "r1", "--mirror", mnist_mirror.url,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    assert "Test accuracy" in proc.stdout
    drive = tmp_path / "lab" / "drive"
    raw = drive / "dataset" / "MNIST" / "raw"
    for name, digest in MNIST_MD5.items():
        assert md5(raw / name) == digest, name
    run = drive / "runs" / "r1"
    assert (run / "ckpt-epoch0001.pt").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    # Paths come from the script's place on the drive, not from the cwd.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab"]


# -- the demo, end to end -------------------------------------------------------------------


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, mnist_mirror):
    proc = drivelab_cli("demo", "lab", "--epochs", "1", "--mirror", mnist_mirror.url, "--json", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, describe(proc)
    assert_no_traceback(proc)
    doc = json.loads(proc.stdout)  # the script's own lines went to stderr, not here
    root = (tmp_path / "lab").resolve()
    assert doc["kind"] == "demo" and doc["version"] == 1
    assert doc["workspace"] == str(root)
    assert doc["recipe"] == "fast"
    assert doc["epochs"] == 1 and len(doc["history"]) == 1
    assert doc["final_accuracy"] >= 97.0
    assert "Test accuracy" in proc.stderr

    run = Path(doc["run_dir"])
    assert run.parent == root / "drive" / "runs"
    assert Path(doc["curves"]) == run / "curves.png"
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and metrics[0]["epoch"] == 1
    assert metrics[0]["test_accuracy"] == doc["final_accuracy"]
    assert (run / "ckpt-epoch0001.pt").is_file()
    assert (root / "drive" / "colab" / "main.py").is_file()

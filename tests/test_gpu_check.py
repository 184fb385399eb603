"""benchmarks/gpu_check.sh, run in its CPU mode: every part runs, and lands in one JSON file and a table."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _guards import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory, mnist_mirror) -> Path:
    from drivelab.data import get_mnist

    root = tmp_path_factory.mktemp("dataset")
    get_mnist(root, mirrors=[mnist_mirror.url])
    return root


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    env["PYTHON"] = sys.executable
    return subprocess.run(["bash", str(SCRIPT), *args], check=False, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def test_dry_run_runs_every_part_on_the_cpu_into_one_json(tmp_path, dataset_root):
    if shutil.which("timeout") is None:
        skip_or_fail("benchmarks/gpu_check.sh needs coreutils' timeout")
    proc = _run(tmp_path, "--dry-run", "--out", "check.json", "--data-dir", str(dataset_root))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-5000:]

    doc = json.loads((tmp_path / "check.json").read_text())
    assert doc["ok"] is True and doc["mode"].startswith("dry-run")
    parts = doc["parts"]
    assert parts["nvidia-smi"]["status"] == ("skipped" if doc["gpus"] == 0 else "ok")
    for name in ("runtime", "setup", "doctor", "fast", "reference", "torchrun"):
        part = parts[name]
        assert part["status"] == "ok" and part["exit_code"] == 0 and not part["timed_out"], (name, part.get("stderr_tail"))
        assert part["seconds"] < part["limit_s"] and part["command"], name
    # What each part reported, parsed.
    assert parts["runtime"]["json"]["system"]["cpu_cores"] >= 1
    assert isinstance(parts["setup"]["json"], dict) and isinstance(parts["doctor"]["json"], dict)
    fast = doc["figures"]["fast"]
    assert len(fast["seeds"]) == 2 and fast["fast_seeds_reaching_target"] == 2
    assert all(s["train_s_to_target"] > 0 and s["epoch_to_target"] == 1 for s in fast["seeds"])
    assert fast["process_mean_wall_s"] > 0 and fast["precision"].startswith(("fp32 (auto: ", "bf16 (auto: "))
    assert doc["figures"]["reference_epoch"]["seconds"] > 0
    assert doc["figures"]["torchrun"]["epochs"] == 1 and len(parts["torchrun"]["metrics"]) == 1  # rank 0 alone wrote it
    assert "--nproc-per-node" in parts["torchrun"]["command"]

    table = (tmp_path / "check.txt").read_text()
    assert table == proc.stdout
    for name in ("runtime", "setup", "doctor", "fast", "reference", "torchrun"):
        assert f"\n{name} " in table
    assert "all parts that ran passed" in table


def test_a_part_that_hangs_or_fails_costs_only_itself(tmp_path):
    """The part() runner: a time limit per part, the exit code and the output kept, the next part still run."""
    script = SCRIPT.read_text()
    start, end = script.index("part() {"), script.index("\n}\n", script.index("part() {")) + 3
    runner = tmp_path / "runner.sh"
    runner.write_text(
        "set -uo pipefail\nPARTS=$1\nPYTHON=" + sys.executable + "\n" + script[start:end]
        + "part hang 1 sleep 30\npart fail 10 bash -c 'echo out; echo err >&2; exit 3'\npart after 10 echo still-here\n"
    )
    parts = tmp_path / "parts"
    parts.mkdir()
    proc = subprocess.run(["bash", str(runner), str(parts)], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (parts / "hang.rc").read_text().strip() == "124" and float((parts / "hang.seconds").read_text()) < 10
    assert (parts / "fail.rc").read_text().strip() == "3"
    assert (parts / "fail.out").read_text() == "out\n" and (parts / "fail.err").read_text() == "err\n"
    assert (parts / "after.out").read_text() == "still-here\n"


def test_one_gpu_runs_under_eight_minutes_even_when_every_part_hangs():
    """Each part's limit plus timeout's 10 s grace, over the parts one GPU runs (torchrun needs two)."""
    limits = dict(re.findall(r"^\s*part ([a-z-]+) (\d+) ", SCRIPT.read_text(), flags=re.MULTILINE))
    assert set(limits) == {"data", "nvidia-smi", "runtime", "setup", "doctor", "fast", "reference", "torchrun"}
    one_gpu = sum(int(limit) + 10 for name, limit in limits.items() if name != "torchrun")
    assert one_gpu < 8 * 60, limits
    assert "--kill-after=10" in SCRIPT.read_text()


def test_unknown_option_is_a_usage_error(tmp_path):
    proc = _run(tmp_path, "--nope")
    assert proc.returncode == 2 and "unknown option --nope" in proc.stderr

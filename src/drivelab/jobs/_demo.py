"""The main job in one call: init the workspace, fetch MNIST, run main.py, report."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drivelab import _subprocess, drive
from drivelab.data import ProgressCallback, get_mnist, resolve_mirrors
from drivelab.errors import JobError
from drivelab.runtime import require_torch
from drivelab.train import EpochMetrics, TrainConfig, check_run_name, read_metrics
from drivelab.workspace import InitResult, Workspace, init_workspace

__all__ = ["run_demo", "DemoResult", "DemoStage"]


@dataclass(frozen=True)
class DemoStage:
    """Announces a stage: ``"init"``, ``"data"`` or ``"train"``."""

    name: str
    detail: str


@dataclass
class DemoResult:
    workspace: Path
    run_dir: Path
    recipe: str
    history: list[EpochMetrics] = field(default_factory=list)
    init: InitResult | None = None
    seconds: float = 0.0
    """Wall time of the whole demo."""

    @property
    def final_accuracy(self) -> float | None:
        return self.history[-1].test_accuracy if self.history else None

    def to_dict(self) -> dict:
        return {
            "workspace": str(self.workspace),
            "run_dir": str(self.run_dir),
            "recipe": self.recipe,
            "final_accuracy": self.final_accuracy,
            "epochs": len(self.history),
            "training_seconds": self.history[-1].elapsed if self.history else None,
            "seconds": round(self.seconds, 2),
            "curves": str(self.run_dir / "curves.png"),
            "history": [m.to_dict() for m in self.history],
        }


def run_demo(
    root: Path,
    *,
    recipe: str = "fast",
    epochs: int | None = None,
    run_name: str | None = None,
    mirrors: list[str] | None = None,
    extra_args: list[str] | None = None,
    on_stage: Callable[[DemoStage], None] | None = None,
    on_download: ProgressCallback | None = None,
    on_line: Callable[[str], None] | None = None,
) -> DemoResult:
    """Init ``root``, fetch MNIST into its drive, then run ``drive/colab/main.py``.

    The script runs as a child process, exactly as a user would run it; its
    output goes line by line to ``on_line``. Raises :class:`JobError`
    with the script's last lines when it fails, and :class:`TorchMissingError`
    before anything is created or downloaded when this Python has no torch.
    """
    # The script trains with torch in this interpreter: without it, say so now,
    # not after the workspace is made and MNIST is downloaded.
    require_torch("drivelab demo (it trains with PyTorch)")
    # Bad options and mirrors are usage errors: refused before a folder exists.
    TrainConfig(dataset_root=root, run_dir=root / check_run_name(run_name or "demo"), recipe=recipe, epochs=epochs)
    resolve_mirrors(mirrors)
    started = time.perf_counter()
    if on_stage:
        on_stage(DemoStage("init", str(root)))
    init = init_workspace(root)
    ws = init.workspace

    drive.attach(ws, user="demo")  # the workspace's drive, local or remote (a no-op for the local default)
    try:
        return _fetch_and_train(ws, init, started, recipe, epochs, run_name, mirrors, extra_args, on_stage, on_download, on_line)
    finally:
        # On success, failure or Ctrl+C: what the run wrote lands on the remote before we return.
        try:
            drive.flush(ws)
        finally:
            drive.release(ws)


def _fetch_and_train(
    ws: Workspace,
    init: InitResult,
    started: float,
    recipe: str,
    epochs: int | None,
    run_name: str | None,
    mirrors: list[str] | None,
    extra_args: list[str] | None,
    on_stage: Callable[[DemoStage], None] | None,
    on_download: ProgressCallback | None,
    on_line: Callable[[str], None] | None,
) -> DemoResult:
    if on_stage:
        on_stage(DemoStage("data", str(ws.dataset)))
    get_mnist(ws.dataset, mirrors=mirrors, progress=on_download)

    name = run_name or f"demo-{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
    argv = [sys.executable, str(ws.main_script), "--recipe", recipe, "--run", name]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    for mirror in mirrors or []:
        argv += ["--mirror", mirror]
    argv += extra_args or []
    if on_stage:
        on_stage(DemoStage("train", f"python {ws.main_script.relative_to(ws.root)} --recipe {recipe} --run {name}"))
    done = _subprocess.stream(argv, cwd=ws.root, on_line=on_line)
    if done.returncode != 0:
        last = "\n".join(done.tail[-15:])
        raise JobError(
            f"{ws.main_script} exited with code {done.returncode}; its last lines:\n{last}",
            hint="fix what it reports, then rerun; with the same run name training resumes from its last checkpoint",
        )
    run_dir = ws.run_dir(name)
    return DemoResult(
        workspace=ws.root,
        run_dir=run_dir,
        recipe=recipe,
        history=read_metrics(run_dir / "metrics.jsonl"),
        init=init,
        seconds=time.perf_counter() - started,
    )

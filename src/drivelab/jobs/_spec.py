"""What a job runs: :class:`JobSpec`, and the command line it becomes.

A ``.py`` script runs as ``python SCRIPT ARGS``, or under torchrun
(``python -m torch.distributed.run``) when several processes are asked for; a
``.ipynb`` notebook runs headlessly under papermill, its output notebook
(every cell's outputs) saved in the run folder as it goes.

A spec's ``env`` is part of what is recorded (``status.json``), so every
restart and a detached supervisor start the command in the same environment;
:func:`merge_environment` says how it combines with the inherited one.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drivelab.errors import JobError
from drivelab.workspace import Workspace

__all__ = ["PATH_LISTS", "JobSpec", "check_run_name", "default_run_name", "merge_environment"]

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

PATH_LISTS = frozenset({"PATH", "PYTHONPATH", "JUPYTER_PATH", "LD_LIBRARY_PATH"})
"""Variables that hold lists of folders: a job's entries are added after the inherited ones."""


def merge_environment(inherited: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a job runs in: ``inherited`` (the supervisor's) with ``extra`` (the spec's) applied.

    - a variable of :data:`PATH_LISTS` gets the spec's folders appended to the
      inherited ones, those already there not repeated: what the user's own
      environment provides comes first and is never hidden (a real
      ``google.colab`` before drivelab's stand-in, a user's kernelspec before
      the workspace's);
    - an empty value removes the variable (a job started from the lab's
      terminal does not inherit what only the lab's kernels may use);
    - any other value replaces the inherited one.
    """
    env = dict(inherited)
    for name, value in extra.items():
        if value == "":
            env.pop(name, None)
        elif name in PATH_LISTS:
            have = [p for p in env.get(name, "").split(os.pathsep) if p]
            added = [p for p in value.split(os.pathsep) if p and p not in have]
            env[name] = os.pathsep.join([*have, *dict.fromkeys(added)])
        else:
            env[name] = value
    return env


def check_run_name(name: str) -> str:
    if not _RUN_NAME.fullmatch(name):
        raise JobError(
            f"not a usable run name: {name!r}",
            hint="use letters, digits, '.', '_' and '-' (a folder name under drive/runs/), at most 128 characters",
        )
    return name


def default_run_name(script: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", script.stem).strip("-.") or "job"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass
class JobSpec:
    """A job: the script, its arguments, and how to keep it running."""

    script: Path
    args: list[str] = field(default_factory=list)
    run: str = ""
    """Run name: the folder ``drive/runs/<run>/``. Empty: the script's name and the time."""
    restarts: int = 3
    """Restarts in a row without progress before giving up (a new checkpoint resets the count)."""
    backoff: float = 1.0
    """Seconds before the first restart; doubled for each further restart in a row (at most 60)."""
    parameters: list[tuple[str, str]] = field(default_factory=list)
    """Notebook parameters, papermill's ``-p NAME VALUE``."""
    nproc_per_node: int | None = None
    """Processes on this machine under torchrun; ``None``: one plain process."""
    nnodes: str = "1"
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    stop_grace: float = 10.0
    """Seconds a stopped job gets to exit after SIGTERM/SIGINT before SIGKILL."""
    python: str = field(default_factory=lambda: sys.executable)
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables for the command, applied by :func:`merge_environment` to the supervisor's
    (e.g. :func:`drivelab.lab.job_environment`: the ``google.colab`` stand-in, the workspace's kernel).
    Recorded in ``status.json``: never put a secret here."""

    @property
    def kind(self) -> str:
        return "notebook" if self.script.suffix == ".ipynb" else "python"

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node is not None or self.nnodes not in ("1", "")

    def validate(self) -> None:
        """Raise :class:`JobError` for a spec that cannot run, before anything starts."""
        check_run_name(self.run)
        if not self.script.is_file():
            raise JobError(f"no such script: {self.script}", hint="give the path of a .py or .ipynb file (relative to here or to the workspace)")
        if self.script.suffix not in (".py", ".ipynb"):
            raise JobError(f"{self.script.name} is neither a .py script nor a .ipynb notebook", hint="drivelab run takes a .py or .ipynb file")
        if self.restarts < 0:
            raise JobError(f"restarts must be 0 or more, not {self.restarts}")
        if self.backoff < 0:
            raise JobError(f"backoff must be 0 or more seconds, not {self.backoff}")
        if self.kind == "notebook":
            try:
                json.loads(self.script.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise JobError(f"{self.script} is not a readable notebook: {exc}", hint="open it in Jupyter and save it again") from exc
            if self.args:
                raise JobError(
                    f"a notebook takes parameters, not arguments: {' '.join(self.args)}",
                    hint="pass -p NAME VALUE (before the notebook's path) for each variable of its `parameters` cell",
                )
            if self.distributed:
                raise JobError("a notebook runs as one process", hint="drop --nproc-per-node/--nnodes, or run a .py script")
        elif self.parameters:
            raise JobError("-p NAME VALUE sets a notebook's parameters; a .py script takes arguments", hint="pass them after the script's path")
        for name, value in self.env.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or not isinstance(value, str) or "\0" in value:
                raise JobError(f"not a usable environment variable for the job: {name!r}", hint="names are letters, digits and '_'; values are text")
        if self.nproc_per_node is not None and self.nproc_per_node < 1:
            raise JobError(f"--nproc-per-node must be at least 1, not {self.nproc_per_node}")
        if self.nnodes not in ("1", "") and not self.rdzv_endpoint:
            raise JobError(
                f"{self.nnodes} nodes need a rendezvous point",
                hint="pass --rdzv-endpoint HOST:PORT (the same on every node; HOST is the machine of --node-rank 0)",
            )

    def output_notebook(self, run_dir: Path) -> Path:
        return run_dir / self.script.name

    def command(self, ws: Workspace, run_dir: Path) -> list[str]:
        """The argv the job runs (the same on every restart)."""
        if self.kind == "notebook":
            argv = [self.python, "-m", "papermill", str(self.script), str(self.output_notebook(run_dir))]
            for name, value in self.parameters:
                argv += ["-p", name, value]
            if not _has_kernelspec(self.script):
                argv += ["--kernel", "python3"]
            return [*argv, "--cwd", str(ws.root), "--log-output", "--no-progress-bar"]
        if not self.distributed:
            return [self.python, str(self.script), *self.args]
        argv = [self.python, "-m", "torch.distributed.run", "--nproc-per-node", str(self.nproc_per_node or 1)]
        if self.nnodes in ("1", "") and not self.rdzv_endpoint:
            argv += ["--standalone"]
        else:
            argv += ["--nnodes", self.nnodes, "--node-rank", str(self.node_rank), "--rdzv-endpoint", str(self.rdzv_endpoint)]
        # drivelab restarts the whole job itself, resuming from its checkpoint;
        # "--" keeps the script's own options (--run, ...) away from torchrun's.
        return [*argv, "--max-restarts", "0", "--", str(self.script), *self.args]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["script"] = str(self.script)
        data["parameters"] = [list(p) for p in self.parameters]
        data["env"] = dict(self.env)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> JobSpec:
        data = dict(data)
        data["script"] = Path(data["script"])
        data["parameters"] = [tuple(p) for p in data.get("parameters", [])]
        data["env"] = {str(k): str(v) for k, v in (data.get("env") or {}).items()}  # none in a spec recorded before it existed
        return cls(**data)


def _has_kernelspec(notebook: Path) -> bool:
    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False
    return bool(isinstance(meta, dict) and isinstance(meta.get("kernelspec"), dict) and meta["kernelspec"].get("name"))

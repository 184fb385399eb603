"""What a job runs: :class:`JobSpec`, and the command line it becomes.

A ``.py`` script runs as ``python SCRIPT ARGS``, or under torchrun
(``python -m torch.distributed.run``) when several processes are asked for; a
``.ipynb`` notebook runs headlessly under papermill, its output notebook
(every cell's outputs) saved in the run folder as it goes. papermill is run
through :func:`run_papermill` (``python -m drivelab.jobs._spec``), so that a
cell that raises ends the attempt with a short summary (the cell, its first
line, the exception, the executed copy) rather than papermill's and click's stack.

Several machines (``nnodes`` above 1) form their group through torchrun's
c10d rendezvous at ``rdzv_endpoint``, under the id ``rdzv_id`` (by default
the run name, which every machine is given), watched by
:mod:`drivelab.jobs._torchrun`; torchrun restarts the group itself after a
failure inside it (``max_restarts``). Given a ``node_rank``, they use
torchrun's static rendezvous instead, each machine told its rank, and are
never restarted by torchrun (a static group cannot re-form). Each machine
writes its own ``status.<node>.json`` and ``log.<node>`` into the shared run
folder, ``<node>`` being :func:`node_name`.

A spec's ``env`` is part of what is recorded (``status.json``), so every
restart and a detached supervisor start the command in the same environment;
:func:`merge_environment` says how it combines with the inherited one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drivelab.colab import bind_form_parameters
from drivelab.errors import JobError
from drivelab.workspace import Workspace

__all__ = ["PATH_LISTS", "DEFAULT_GROUP_RESTARTS", "NODE_NAME_VARIABLE", "JobSpec", "check_run_name", "default_run_name", "merge_environment", "node_name"]

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NNODES = re.compile(r"([0-9]+)(?::([0-9]+))?")
_ENDPOINT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")

NODE_NAME_VARIABLE = "DRIVELAB_NODE_NAME"
"""Names this machine in a group of several (see :func:`node_name`)."""
DEFAULT_GROUP_RESTARTS = 3
"""torchrun's restarts of a group of several machines, when none is asked for."""

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


def node_name() -> str:
    """This machine's name among a group's: ``$DRIVELAB_NODE_NAME``, else its host name (first label).

    It names the files this machine writes into a run folder that several
    share (``status.<name>.json``, ``log.<name>``), so it must differ between
    the machines of one group; an environment variable rather than an option,
    so that every command on the machine (``drivelab jobs list``) agrees.
    """
    name = os.environ.get(NODE_NAME_VARIABLE) or socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:64] or "node"


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
    backoff: float = 0.1
    """Seconds before the first restart; four times longer for each further restart in a row (at most 60).

    Small, because a killed or crashed attempt that had made progress is best restarted at once (its checkpoint is
    there); a command that keeps failing soon waits seconds, and gives up after ``restarts`` in a row anyway."""
    parameters: list[tuple[str, str]] = field(default_factory=list)
    """Notebook parameters, papermill's ``-p NAME VALUE``."""
    nproc_per_node: int | None = None
    """Processes on this machine under torchrun; ``None``: one plain process (or one per machine when several take part)."""
    nnodes: str = "1"
    """Machines taking part: ``N``, or ``MIN:MAX`` for a group that may shrink or grow (torchrun's ``--nnodes``)."""
    node_rank: int | None = None
    """This machine's rank, for torchrun's static rendezvous; ``None``: the c10d rendezvous hands ranks out."""
    rdzv_endpoint: str | None = None
    """``HOST:PORT`` of the rendezvous, the same on every machine; the machine HOST names hosts it."""
    rdzv_id: str | None = None
    """The group's id at the rendezvous; ``None``: the run name (the same on every machine)."""
    rdzv_timeout: int | None = None
    """Seconds the c10d rendezvous waits for every machine before giving up (its ``join_timeout``); ``None``: torchrun's 600."""
    max_restarts: int | None = None
    """torchrun's restarts of the whole group after a failure within it; ``None``: :data:`DEFAULT_GROUP_RESTARTS`
    across machines (c10d), 0 on one machine (the supervisor restarts it)."""
    node: str = ""
    """This machine's name in a group of several (:func:`node_name`, filled in by :meth:`prepare`); empty on one machine."""
    stop_grace: float = 10.0
    """Seconds a stopped job gets to exit after SIGTERM/SIGINT before SIGKILL."""
    python: str = field(default_factory=lambda: sys.executable)
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables for the command, applied by :func:`merge_environment` to the supervisor's.
    Recorded in ``status.json``: never put a secret here."""
    colab: bool = True
    """Run it as Colab code runs in the lab: :func:`drivelab.colab.job_environment` merged into :attr:`env`
    (the ``google.colab`` stand-in; a notebook on the workspace's kernel) and the command run with the
    workspace at ``/content`` (:func:`drivelab.colab.content_command`)."""

    @property
    def kind(self) -> str:
        return "notebook" if self.script.suffix == ".ipynb" else "python"

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node is not None or self.nnodes not in ("1", "")

    @property
    def multi_node(self) -> bool:
        """More than one machine may take part (``nnodes`` ``N`` or ``MIN:MAX`` with a maximum above 1)."""
        match = _NNODES.fullmatch(self.nnodes or "1")
        return bool(match) and int(match.group(2) or match.group(1)) > 1

    @property
    def rendezvous(self) -> str | None:
        """``"c10d"`` or ``"static"`` for a group of several machines, ``None`` on one."""
        if not self.multi_node:
            return None
        return "static" if self.node_rank is not None else "c10d"

    @property
    def group_id(self) -> str:
        return self.rdzv_id or self.run

    @property
    def group_restarts(self) -> int:
        """The ``--max-restarts`` torchrun is given."""
        if self.max_restarts is not None:
            return self.max_restarts
        return DEFAULT_GROUP_RESTARTS if self.rendezvous == "c10d" else 0

    def prepare(self) -> None:
        """Fill in the run name (the script's name and the time) and this machine's node name, then :meth:`validate`.

        Machines of one group must share the run name, and names made from the
        clock would differ: several machines need ``run`` given.
        """
        if not self.run:
            if self.multi_node:
                self._require_endpoint()
                raise JobError(
                    f"{self.nnodes} machines need a run name, the same on each",
                    hint="pass --run NAME on every machine: the run folder they share, and the rendezvous id unless --rdzv-id is given",
                )
            self.run = default_run_name(self.script)
        if self.multi_node and not self.node:
            self.node = node_name()
        self.validate()

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
                    hint="pass -p NAME VALUE (before the notebook's path) for each variable of its `parameters` cell or Colab form",
                )
            if self.distributed:
                raise JobError("a notebook runs as one process", hint="drop --nproc-per-node/--nnodes, or run a .py script")
            # No `parameters` cell but Colab forms: each -p must be a form field, with a value its form allows.
            bind_form_parameters(self.script, self.parameters, None)
        elif self.parameters:
            raise JobError("-p NAME VALUE sets a notebook's parameters; a .py script takes arguments", hint="pass them after the script's path")
        for name, value in self.env.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or not isinstance(value, str) or "\0" in value:
                raise JobError(f"not a usable environment variable for the job: {name!r}", hint="names are letters, digits and '_'; values are text")
        if self.nproc_per_node is not None and self.nproc_per_node < 1:
            raise JobError(f"--nproc-per-node must be at least 1, not {self.nproc_per_node}")
        self._validate_group()

    def _validate_group(self) -> None:
        nnodes = _NNODES.fullmatch(self.nnodes or "1")
        if not nnodes or int(nnodes.group(1)) < 1 or int(nnodes.group(2) or nnodes.group(1)) < int(nnodes.group(1)):
            raise JobError(f"--nnodes must be N or MIN:MAX machines (1 <= MIN <= MAX), not {self.nnodes!r}")
        most = int(nnodes.group(2) or nnodes.group(1))
        if self.max_restarts is not None and (self.max_restarts < 0 or not self.distributed):
            raise JobError(
                f"--max-restarts {self.max_restarts}: torchrun's restarts need 0 or more, and a job under torchrun",
                hint="pass --nproc-per-node or --nnodes; drivelab's own restarts are --restarts",
            )
        if self.rdzv_endpoint and not _ENDPOINT.fullmatch(self.rdzv_endpoint):
            raise JobError(f"not a rendezvous endpoint: {self.rdzv_endpoint!r}", hint="give HOST:PORT, e.g. 10.0.0.1:29400")
        if not self.multi_node:
            return
        self._require_endpoint()
        if not _RUN_NAME.fullmatch(self.group_id):
            raise JobError(f"not a usable rendezvous id: {self.group_id!r}", hint="use letters, digits, '.', '_' and '-', at most 128 characters")
        if self.node and not _RUN_NAME.fullmatch(self.node):
            raise JobError(f"not a usable node name: {self.node!r}", hint=f"set {NODE_NAME_VARIABLE} to letters, digits, '.', '_' and '-'")
        if self.rendezvous == "static":
            if self.node_rank is None or not 0 <= self.node_rank < most or nnodes.group(2):
                raise JobError(
                    f"--node-rank {self.node_rank} with --nnodes {self.nnodes}: the static rendezvous needs a fixed number of machines N and ranks 0 to N-1",
                    hint="or leave --node-rank out: the c10d rendezvous hands ranks out itself",
                )
            c10d_only = (("--rdzv-id", self.rdzv_id), ("--rdzv-timeout", self.rdzv_timeout), ("--max-restarts", self.max_restarts))
            given = [name for name, value in c10d_only if value]
            if given:
                raise JobError(
                    f"{', '.join(given)} apply to the c10d rendezvous, not to the static one that --node-rank asks for",
                    hint="leave --node-rank out to use c10d: it hands ranks out and can re-form the group after a failure",
                )
        if self.rdzv_timeout is not None and self.rdzv_timeout < 1:
            raise JobError(f"--rdzv-timeout must be at least 1 second, not {self.rdzv_timeout}")

    def _require_endpoint(self) -> None:
        if not self.rdzv_endpoint:
            raise JobError(
                f"{self.nnodes} nodes need a rendezvous point",
                hint="pass --rdzv-endpoint HOST:PORT, the same on every machine; HOST is one of them, which hosts the rendezvous",
            )

    def output_notebook(self, run_dir: Path) -> Path:
        return run_dir / self.script.name

    def command(self, ws: Workspace, run_dir: Path) -> list[str]:
        """The argv the job runs (the same on every restart)."""
        if self.kind == "notebook":
            # Parameters bound to Colab forms (a notebook without a `parameters` cell) are written
            # on the forms' lines of a copy in the run folder, which papermill then runs.
            bound = run_dir / f".bound-{self.script.name}"
            formed = bind_form_parameters(self.script, self.parameters, bound)
            argv = [self.python, "-m", "drivelab.jobs._spec", str(bound if formed else self.script), str(self.output_notebook(run_dir))]
            for name, value in [] if formed else self.parameters:
                argv += ["-p", name, value]
            if not _has_kernelspec(self.script):
                argv += ["--kernel", "python3"]
            return [*argv, "--cwd", str(ws.root), "--log-output", "--no-progress-bar"]
        if not self.distributed:
            return [self.python, str(self.script), *self.args]
        nproc = ["--nproc-per-node", str(self.nproc_per_node or 1)]
        if self.rendezvous == "c10d":
            # Watched torchrun: it reports the group's rounds and a rendezvous that timed out (see _torchrun).
            argv = [self.python, "-m", "drivelab.jobs._torchrun", *nproc, "--nnodes", self.nnodes, "--rdzv-backend", "c10d"]
            argv += ["--rdzv-endpoint", str(self.rdzv_endpoint), "--rdzv-id", self.group_id]
            if self.rdzv_timeout is not None:
                argv += ["--rdzv-conf", f"join_timeout={self.rdzv_timeout}"]
        elif self.nnodes in ("1", "") and not self.rdzv_endpoint:
            argv = [self.python, "-m", "torch.distributed.run", *nproc, "--standalone"]
        else:
            argv = [self.python, "-m", "torch.distributed.run", *nproc, "--nnodes", self.nnodes, "--node-rank", str(self.node_rank or 0)]
            argv += ["--rdzv-endpoint", str(self.rdzv_endpoint)]
        # On one machine drivelab restarts the whole job itself, resuming from its checkpoint;
        # "--" keeps the script's own options (--run, ...) away from torchrun's.
        return [*argv, "--max-restarts", str(self.group_restarts), "--", str(self.script), *self.args]

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
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _has_kernelspec(notebook: Path) -> bool:
    try:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False
    return bool(isinstance(meta, dict) and isinstance(meta.get("kernelspec"), dict) and meta["kernelspec"].get("name"))


def _cell_failure(error, output: str) -> str:
    """A papermill ``PapermillExecutionError`` in three lines: the cell (its number in the executed copy, its
    first line), the executed copy, the exception last (where a failure's line is looked for)."""
    first = next((line for line in error.source.splitlines() if line.strip()), "")
    exception = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
    return f"notebook failed in cell {error.cell_index + 1}: {first}\nexecuted copy: {output}\n{exception}"


def run_papermill(argv: list[str]) -> int:
    """``python -m drivelab.jobs._spec`` + papermill's arguments: papermill, a failing cell told in three lines.

    Exit code 1 for a cell that raised (the supervisor restarts it once: the same failure twice stops it),
    papermill's own otherwise.
    """
    from papermill.cli import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.main(args=argv, prog_name="papermill", standalone_mode=False)
    except PapermillExecutionError as error:
        output = argv[1] if len(argv) > 1 else "(standard output)"
        print(_cell_failure(error, output), file=sys.stderr, flush=True)
        return 1
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(run_papermill(sys.argv[1:]))

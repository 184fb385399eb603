from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from typer.core import TyperCommand

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from
from drivelab.errors import JobError

# Everything after SCRIPT belongs to the script, options included.
CONTEXT = {"allow_interspersed_args": False, "ignore_unknown_options": True}


class RunCommand(TyperCommand):
    """``-p NAME VALUE`` takes two values, as in papermill; typer cannot declare that, click can."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for i, param in enumerate(self.params):
            if param.name == "parameter":
                self.params[i] = click.Option(
                    ["--parameter", "-p"],
                    nargs=2,
                    multiple=True,
                    type=(str, str),
                    metavar="NAME VALUE",
                    help=param.help,  # type: ignore[attr-defined]
                )


_EVENT_STYLE = {"restarting": "yellow", "stopping": "yellow", "ended": "bold"}


def _script_path(script: Path, root: Path) -> Path:
    """``script`` as given (relative to here), else relative to the workspace."""
    script = script.expanduser()
    if script.is_file() or script.is_absolute():
        return script.resolve()
    inside = root / script
    return inside.resolve() if inside.is_file() else script.resolve()


def run(
    script: Annotated[Path, typer.Argument(help="A .py script or a .ipynb notebook (path from here or from the workspace).", show_default=False)],
    args: Annotated[Optional[list[str]], typer.Argument(help="Arguments for the script.", show_default=False)] = None,
    run_name: Annotated[Optional[str], typer.Option("--run", help="Run name: the folder drive/runs/<run>/ (default: the script's name and the time). Reuse it to resume.", show_default=False)] = None,
    restarts: Annotated[int, typer.Option("--restarts", min=0, help="Restarts in a row without a new checkpoint before giving up.")] = 3,
    backoff: Annotated[float, typer.Option("--backoff", min=0, help="Seconds before the first restart; doubled for each further one in a row.")] = 1.0,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background, surviving this terminal; see `drivelab jobs`.")] = False,
    parameter: Annotated[
        Optional[list[str]],
        typer.Option("--parameter", "-p", metavar="NAME VALUE", help="Notebook parameter (papermill's convention: the cell tagged `parameters`); repeatable.", show_default=False),
    ] = None,
    nproc_per_node: Annotated[Optional[int], typer.Option("--nproc-per-node", min=1, help="Processes on this machine, under torchrun (data-parallel).", show_default=False)] = None,
    nnodes: Annotated[str, typer.Option("--nnodes", help="Machines taking part (torchrun).")] = "1",
    node_rank: Annotated[int, typer.Option("--node-rank", min=0, help="This machine's rank among them.")] = 0,
    rdzv_endpoint: Annotated[Optional[str], typer.Option("--rdzv-endpoint", help="HOST:PORT of rank 0's machine, when several take part.", show_default=False)] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a script or notebook from the drive as a job that survives: logged, restarted, resumed.

    The job runs in the workspace with the drive attached and gets the run
    folder drive/runs/<run>/ (in $DRIVELAB_RUN_DIR), where its log and
    status.json are kept. After a crash or a kill it is restarted and resumes
    from its last complete checkpoint; the drive is flushed when it ends.
    Colab code runs unchanged: google.colab (drive, files, userdata) is
    provided, and a notebook runs on the lab's kernel.

    Examples:
      drivelab run drive/colab/main.py --epochs 4
      drivelab run --detach --run exp1 drive/colab/main.py
      drivelab run --nproc-per-node 2 drive/colab/main.py
      drivelab run -p lr 0.1 drive/colab/notebook.ipynb
    """
    from drivelab.jobs import JobSpec, run_job, start_detached
    from drivelab.lab import job_environment

    ws = workspace_from(workspace)
    spec = JobSpec(
        script=_script_path(script, ws.root),
        args=list(args or []),
        run=run_name or "",
        restarts=restarts,
        backoff=backoff,
        parameters=[(str(n), str(v)) for n, v in (parameter or [])],
        nproc_per_node=nproc_per_node,
        nnodes=nnodes,
        node_rank=node_rank,
        rdzv_endpoint=rdzv_endpoint,
    )
    # Colab notebooks and scripts run unchanged: the google.colab stand-in, and for a notebook the lab's kernel.
    spec.env = job_environment(ws, notebook=spec.kind == "notebook")
    if detach:
        status = start_detached(ws, spec)
        if json_output:
            emit_json("run", status.to_dict())
            return
        console.print(f"Started job [bold]{escape(status.run)}[/] in the background (supervisor pid {status.supervisor_pid}).")
        console.print(f"  follow: drivelab jobs logs {status.run} -f\n  stop:   drivelab jobs stop {status.run}", markup=False)
        return

    def on_event(event) -> None:
        style = _EVENT_STYLE.get(event.kind, "dim")
        console.print(f"[{style}]drivelab: {escape(event.message)}[/]", soft_wrap=True)

    status = run_job(
        ws,
        spec,
        on_line=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
        on_event=on_event,
    )
    if json_output:
        emit_json("run", status.to_dict())
    if status.state == "stopped":
        raise typer.Exit(130)
    failure = status.failure_error()
    if failure is not None:
        raise failure
    if status.flush and "error" in status.flush:
        raise JobError(f"job {status.run!r} succeeded but the drive could not be flushed: {status.flush['error']}", hint="see `drivelab drive status`")
    if not json_output:
        console.print(f"Run folder: {status.run_dir}")


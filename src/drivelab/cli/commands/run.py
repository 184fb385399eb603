from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from typer.core import TyperCommand

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from
from drivelab.cli.commands._slurm import PLACES, run_on_slurm, slurm_options
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
    backoff: Annotated[float, typer.Option("--backoff", min=0, help="Seconds before the first restart; four times longer for each further one in a row without a new checkpoint (at most 60).")] = 0.1,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background, surviving this terminal; see `drivelab jobs`.")] = False,
    parameter: Annotated[
        Optional[list[str]],
        typer.Option("--parameter", "-p", metavar="NAME VALUE", help="Notebook parameter: a variable of the cell tagged `parameters` (papermill's convention), else a Colab form field (NAME = ...  #@param), checked against its type; repeatable.", show_default=False),
    ] = None,
    nproc_per_node: Annotated[Optional[int], typer.Option("--nproc-per-node", min=1, help="Processes on this machine, under torchrun (data-parallel).", show_default=False)] = None,
    nnodes: Annotated[str, typer.Option("--nnodes", help="Machines taking part, N or MIN:MAX (torchrun; the c10d rendezvous hands ranks out).")] = "1",
    rdzv_endpoint: Annotated[
        Optional[str], typer.Option("--rdzv-endpoint", help="HOST:PORT of the rendezvous, the same on every machine; HOST is one of them.", show_default=False)
    ] = None,
    rdzv_id: Annotated[Optional[str], typer.Option("--rdzv-id", help="The group's id at the rendezvous (default: the run name).", show_default=False)] = None,
    rdzv_timeout: Annotated[
        Optional[int], typer.Option("--rdzv-timeout", min=1, help="Seconds to wait for every machine to join (default: torchrun's 600).", show_default=False)
    ] = None,
    max_restarts: Annotated[
        Optional[int],
        typer.Option("--max-restarts", min=0, help="torchrun's restarts of the whole group after a failure in it (default: 3 across machines, 0 on one).", show_default=False),
    ] = None,
    node_rank: Annotated[
        Optional[int],
        typer.Option("--node-rank", min=0, help="This machine's rank: only for torchrun's static rendezvous, which it selects (no group restarts).", show_default=False),
    ] = None,
    on: Annotated[str, typer.Option("--on", click_type=click.Choice(PLACES), help="Where it runs: here, or handed to Slurm (sbatch; from a cluster's login node).")] = "here",
    nodes: Annotated[Optional[int], typer.Option("--nodes", min=1, help="Slurm: nodes (machines), each running it under torchrun.", show_default=False)] = None,
    gpus_per_node: Annotated[Optional[int], typer.Option("--gpus-per-node", min=0, help="Slurm: GPUs on each node, one process each.", show_default=False)] = None,
    cpus_per_task: Annotated[Optional[int], typer.Option("--cpus-per-task", min=1, help="Slurm: CPUs on each node.", show_default=False)] = None,
    time_limit: Annotated[Optional[str], typer.Option("--time", help="Slurm: time limit (minutes, HH:MM:SS, D-HH:MM:SS); it requeues itself before.", show_default=False)] = None,
    partition: Annotated[Optional[str], typer.Option("--partition", help="Slurm: partition (default: the cluster's).", show_default=False)] = None,
    account: Annotated[Optional[str], typer.Option("--account", help="Slurm: account to charge.", show_default=False)] = None,
    warn_before: Annotated[
        Optional[int],
        typer.Option(
            "--warn-before",
            metavar="SECONDS",
            help="Slurm: seconds before the time limit that the job is warned (USR2), stops, flushes the drive and requeues itself (default: 120, or a third of a shorter limit).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a script or notebook from the drive as a job that survives: logged, restarted, resumed.

    The job runs in the workspace with the drive attached and gets the run
    folder drive/runs/<run>/ (in $DRIVELAB_RUN_DIR), where its log and
    status.json are kept. After a crash or a kill it is restarted and resumes
    from its last complete checkpoint; the drive is flushed when it ends.
    Colab code runs unchanged: google.colab is provided, the workspace is
    seen at /content (after `sudo drivelab setup colab`, once per machine),
    a notebook runs on the lab's kernel, and -p binds to a notebook's
    #@param form fields when it has no papermill parameters cell.

    On several machines, type the same command on each, with the same --run
    and a drive they all attach: they meet at --rdzv-endpoint (torchrun's
    c10d rendezvous), torchrun restarts the group after a failure in it, and
    each machine keeps its own status.<node>.json and log.<node> in the run
    folder (<node>: $DRIVELAB_NODE_NAME, else the host name).

    Examples:
      drivelab run drive/colab/main.py --epochs 4
      drivelab run --detach --run exp1 drive/colab/main.py
      drivelab run --nproc-per-node 2 drive/colab/main.py
      drivelab run --run exp2 --nnodes 2 --rdzv-endpoint 10.0.0.1:29400 drive/colab/main.py   # on each machine
      drivelab run -p lr 0.1 drive/colab/notebook.ipynb
      drivelab run --on slurm --nodes 2 --gpus-per-node 4 --time 4:00:00 --run exp3 drive/colab/main.py

    With --on slurm the job is submitted to Slurm (sbatch) with a batch
    script kept in the run folder: each node runs drivelab run, and before
    its time limit the job requeues itself and resumes from its last
    checkpoint. It waits for the job to end (--detach: it returns once
    submitted); drivelab jobs list, logs and stop cover it.
    """
    from drivelab.jobs import JobSpec, run_job, start_detached

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
        rdzv_id=rdzv_id,
        rdzv_timeout=rdzv_timeout,
        max_restarts=max_restarts,
    )
    slurm = slurm_options(
        on, spec, nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, time_limit=time_limit, partition=partition, account=account,
        warn_before=warn_before,
    )
    if slurm is not None:
        run_on_slurm(ws, spec, slurm, detach=detach, json_output=json_output)
        return
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
        pending = status.flush.get("pending")
        if pending:
            raise JobError(
                f"job {status.run!r} succeeded, but not all its files are on the remote yet: {status.flush['error']}",
                hint=f"nothing was lost: they are kept in {status.flush.get('cache') or 'the drive cache'} and land when the remote answers "
                "(or at the next `drivelab drive mount`); its status.json on the drive is corrected then",
            )
        raise JobError(f"job {status.run!r} succeeded but the drive could not be flushed: {status.flush['error']}", hint="see `drivelab drive status`")
    if not json_output:
        console.print(f"Run folder: {status.run_dir}")


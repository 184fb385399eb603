from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from

app = typer.Typer(help="Jobs started with `drivelab run`: list, logs, stop.", no_args_is_help=True)

RunArgument = Annotated[str, typer.Argument(help="The job's run name (see `drivelab jobs list`).", show_default=False)]
_STATE_STYLE = {"running": "green", "restarting": "yellow", "starting": "green", "stopping": "yellow", "succeeded": "bold green", "failed": "red", "lost": "red", "stopped": "yellow"}


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """The workspace's jobs: state, restarts, last checkpoint, start time.

    A job shown as "lost" was running when its supervisor disappeared (the
    machine restarted, or it was killed); rerun it with the same --run to resume.
    """
    from drivelab.jobs import list_jobs

    jobs = list_jobs(workspace_from(workspace))
    if json_output:
        emit_json("jobs.list", {"jobs": [j.to_dict() for j in jobs]})
        return
    if not jobs:
        console.print("No jobs yet. Start one with `drivelab run SCRIPT`.", markup=False)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("run", "state", "restarts", "last checkpoint", "started", "command"):
        table.add_column(column)
    for job in jobs:
        style = _STATE_STYLE.get(job.state, "")
        command = " ".join(job.spec.get("args", [])) if job.spec else ""
        script = job.spec.get("script", "") if job.spec else ""
        table.add_row(
            escape(job.run),
            f"[{style}]{job.state}[/]" if style else job.state,
            str(job.restarts),
            escape(job.last_checkpoint or "-"),
            job.started[:19].replace("T", " "),
            escape(f"{script} {command}".strip()),
        )
    console.print(table)


@app.command("logs")
def logs(
    run: RunArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing what the job writes until it ends.")] = False,
    tail: Annotated[Optional[int], typer.Option("--tail", "-n", min=0, help="Only the last N lines.", show_default=False)] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Print a job's log (drive/runs/<run>/log) on stdout; -f follows it."""
    from drivelab.jobs import follow_log, read_log

    ws = workspace_from(workspace)
    if not follow:
        sys.stdout.write(read_log(ws, run, tail=tail))
        sys.stdout.flush()
        return
    try:
        for chunk in follow_log(ws, run, tail=tail):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command("stop")
def stop(
    run: RunArgument,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for it to stop before killing it.")] = 60.0,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop a running job: SIGTERM to all its processes, SIGKILL after a grace period; the drive is flushed."""
    from drivelab.jobs import stop_job

    status = stop_job(workspace_from(workspace), run, timeout=timeout)
    if json_output:
        emit_json("jobs.stop", status.to_dict())
        return
    console.print(f"Job [bold]{escape(status.run)}[/]: {escape(status.summary or status.state)}")


@app.command("status")
def status(run: RunArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """One job's status.json: state, attempts, exit codes, last checkpoint, flush."""
    from drivelab.jobs import read_status

    job = read_status(workspace_from(workspace), run)
    if json_output:
        emit_json("jobs.status", job.to_dict())
        return
    console.print(f"[bold]{escape(job.run)}[/]  {job.state}  ({escape(job.summary or '')})")
    console.print(f"  command: {' '.join(job.command)}", markup=False, soft_wrap=True)
    console.print(f"  started {job.started}, ended {job.ended or '-'}; restarts {job.restarts}; last checkpoint {job.last_checkpoint or '-'}", markup=False)
    for a in job.attempts:
        code = "running" if a.exit_code is None else f"exit {a.exit_code}"
        console.print(f"  attempt {a.number}: pid {a.pid}, {code}, {a.seconds or 0:.1f} s, checkpoint {a.checkpoint or '-'}", markup=False)
    console.print(f"  log: {job.log}", markup=False)

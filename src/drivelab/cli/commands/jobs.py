from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from drivelab.cli._output import console, emit_json, escape, rich_console
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from

if TYPE_CHECKING:
    from drivelab.jobs import JobStatus

app = typer.Typer(help="Jobs started with `drivelab run`: list, logs, stop.", no_args_is_help=True)

RunArgument = Annotated[str, typer.Argument(help="The job's run name (see `drivelab jobs list`).", show_default=False)]
_STATE_STYLE = {
    "running": "green", "restarting": "yellow", "starting": "green", "stopping": "yellow", "succeeded": "bold green", "failed": "red",
    "lost": "red", "stopped": "yellow", "queued": "yellow", "unknown": "red",
}  # fmt: skip


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """The workspace's jobs: state, restarts, last checkpoint, start time.

    A job shown as "lost" was running when its supervisor disappeared (the
    machine restarted, or it was killed); rerun it with the same --run to resume.
    """
    from drivelab.jobs import jobs_listing

    listing = jobs_listing(workspace_from(workspace))
    jobs = listing.jobs
    if json_output:
        emit_json("jobs.list", {"jobs": [j.to_dict() for j in jobs], "unreadable": listing.unreadable, "as_of": listing.as_of})
        return
    notice = listing.notice()
    if notice:
        console.print(f"[yellow]notice:[/] {escape(notice)}", highlight=False, soft_wrap=True)
    if not jobs:
        if not notice:
            console.print("No jobs yet. Start one with `drivelab run SCRIPT`.", markup=False)
        return
    print_jobs_table(rich_console(), jobs)
    for job in jobs:  # a run on several machines: this machine's part in it
        if job.group_text():
            console.print(f"{job.run}: {job.group_text()}", markup=False, highlight=False, soft_wrap=True)
    for job in jobs:  # a run handed to Slurm: its job id, its nodes, why it waits
        if job.slurm:
            console.print(f"{job.run}: {job.summary}", markup=False, highlight=False, soft_wrap=True)


_HEADINGS = ("run", "state", "restarts", "last checkpoint", "started", "command")
_WHOLE = 3
"""The first columns (run name, state, restarts) are never narrower than their values: none holds a space."""
_FOLDED_MIN = 6
"""Narrowest one of the other columns gets on a narrow terminal (they wrap, then fold)."""


def print_jobs_table(out: Any, jobs: list[JobStatus]) -> None:
    """The jobs as a table on the rich console ``out``; identifiers (run names, paths, commands) are never cut.

    Output that is not a terminal gets the table at its natural width, one
    line a job. A terminal too narrow for it keeps run names, states and
    restart counts whole on one line and wraps and folds the other columns
    into the room left; one too narrow even for that gets lines longer than
    itself (which it wraps) rather than less text.
    """
    from rich.cells import cell_len
    from rich.segment import Segments
    from rich.table import Table

    rows = [
        (
            job.run,
            job.shown_state(),
            str(job.restarts),
            job.last_checkpoint or "-",
            job.started[:19].replace("T", " "),
            " ".join([job.spec.get("script", ""), *job.spec.get("args", [])]).strip() if job.spec else " ".join(job.command),
        )
        for job in jobs
    ]
    natural = [max(cell_len(heading), *(cell_len(row[i]) for row in rows)) for i, heading in enumerate(_HEADINGS)]
    gaps = 2 * (len(_HEADINGS) - 1)
    widths = natural
    if out.is_terminal and sum(natural) + gaps > out.width:
        # Headings too, where that leaves the others room; else the values only (a heading wraps).
        for whole in (natural[:_WHOLE], [max(cell_len(row[i]) for row in rows) for i in range(_WHOLE)]):
            room = out.width - gaps - sum(whole)
            if room >= _FOLDED_MIN * (len(_HEADINGS) - _WHOLE):
                break
        widths = whole + _share(room, natural[_WHOLE:], _FOLDED_MIN)
    table = Table(box=None, pad_edge=False)
    for heading, width in zip(_HEADINGS, widths):
        table.add_column(heading, width=width, overflow="fold")
    for run, state, *rest in rows:
        style = _STATE_STYLE.get(state.split(" (")[0], "")  # "succeeded (Slurm COMPLETED)": by drivelab's word
        table.add_row(escape(run), f"[{style}]{state}[/]" if style else state, *map(escape, rest))
    # Laid out at its own width and printed as it is: the console crops nothing.
    layout = out.options.update_width(sum(widths) + gaps)
    out.print(Segments(out.render(table, layout)), crop=False, soft_wrap=True)


def _share(room: int, wants: list[int], least: int) -> list[int]:
    """``room`` columns shared out: none gets more than it wants, nor less than ``least`` (or its want)."""
    given = list(wants)
    pending = sorted(range(len(wants)), key=wants.__getitem__)
    while pending:
        i = pending.pop(0)
        fair = room // (len(pending) + 1)
        given[i] = min(wants[i], max(least, fair))
        room -= given[i]
    return given


@app.command("logs")
def logs(
    run: RunArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing what the job writes until it ends.")] = False,
    tail: Annotated[Optional[int], typer.Option("--tail", "-n", min=0, help="Only the last N lines.", show_default=False)] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Print a job's log (drive/runs/<run>/log) on stdout; -f follows it."""
    from drivelab.jobs import follow_log, log_answer

    ws = workspace_from(workspace)
    if not follow:
        answer = log_answer(ws, run, tail=tail)
        notice = answer.notice()
        if notice:
            console.print(f"[yellow]notice:[/] {escape(notice)}", highlight=False, soft_wrap=True)
        sys.stdout.write(answer.text)
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
    if status.state in ("stopped", "lost", "failed"):
        console.print(f"  resume it from its last checkpoint: {status.resume_command()}", markup=False, soft_wrap=True)


@app.command("status")
def status(run: RunArgument, workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """One job's status.json: state, attempts, exit codes, last checkpoint, flush (and Slurm's state, for a run handed to it)."""
    from drivelab.jobs import job_status

    job = job_status(workspace_from(workspace), run)
    if json_output:
        emit_json("jobs.status", job.to_dict())
        return
    console.print(f"[bold]{escape(job.run)}[/]  {job.state}  ({escape(job.summary or '')})")
    console.print(f"  command: {' '.join(job.command)}", markup=False, soft_wrap=True)
    console.print(f"  started {job.started}, ended {job.ended or '-'}; restarts {job.restarts}; last checkpoint {job.last_checkpoint or '-'}", markup=False)
    for a in job.attempts:
        code = "running" if a.exit_code is None else f"exit {a.exit_code}"
        console.print(f"  attempt {a.number}: pid {a.pid}, {code}, {a.seconds or 0:.1f} s, checkpoint {a.checkpoint or '-'}", markup=False)
    if job.group_text():
        console.print(f"  {job.group_text()}", markup=False)
    if job.slurm:
        console.print(f"  batch script: {job.slurm.get('batch_script')}; Slurm's output: {job.slurm.get('output')}", markup=False, soft_wrap=True)
    console.print(f"  log: {job.log}", markup=False)
    if job.failure_tail:
        console.print(job.failure_report(), markup=False, highlight=False, soft_wrap=True)

"""``drivelab run --on slurm``: its options, the submission, and following the job until it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from drivelab.cli._output import console, emit_json, escape

if TYPE_CHECKING:
    from drivelab.jobs import JobSpec, SlurmOptions
    from drivelab.workspace import Workspace

PLACES = ("here", "slurm")


def slurm_options(on: str, spec: JobSpec, **given: Any) -> SlurmOptions | None:
    """The Slurm options of ``drivelab run`` (``--nodes`` ... ``--warn-before`` in ``given``); ``None`` for a job run here.

    Usage errors (exit code 2): a Slurm option without ``--on slurm``, a torchrun group
    option with it (on Slurm, the nodes and their rendezvous come from ``--nodes``), a value
    Slurm could not take.
    """
    from drivelab.errors import SlurmError
    from drivelab.jobs import SlurmOptions

    flags = {name: f"--{name.replace('_', '-')}" for name in given}
    flags["time_limit"] = "--time"
    asked = [flags[name] for name, value in given.items() if value is not None]
    if on != "slurm":
        if asked:
            raise typer.BadParameter(f"{', '.join(asked)} ask Slurm for resources: add --on slurm", param_hint="--on")
        return None
    group = [
        flag
        for flag, value in (
            ("--nnodes", spec.nnodes not in ("1", "")),
            ("--rdzv-endpoint", spec.rdzv_endpoint),
            ("--rdzv-id", spec.rdzv_id),
            ("--node-rank", spec.node_rank is not None),
        )
        if value
    ]
    if group:
        raise typer.BadParameter(
            f"{', '.join(group)}: on Slurm, drivelab sets the machines and their rendezvous itself; ask for them with --nodes", param_hint="--on slurm"
        )
    options = SlurmOptions(
        nodes=given.get("nodes") or 1,
        gpus_per_node=given.get("gpus_per_node"),
        cpus_per_task=given.get("cpus_per_task"),
        time=given.get("time_limit"),
        partition=given.get("partition"),
        account=given.get("account"),
        warn_before=given.get("warn_before"),
    )
    try:
        options.validate()
    except SlurmError as exc:
        raise typer.BadParameter(exc.message + (f" ({exc.hint})" if exc.hint else ""), param_hint="--on slurm") from None
    return options


def run_on_slurm(ws: Workspace, spec: JobSpec, options: SlurmOptions, *, detach: bool, json_output: bool) -> None:
    """Submit; with ``detach`` return at once, else print the run's log and Slurm's state until the job ends.

    Ends with the run folder for a job that COMPLETED, else with the :class:`SlurmError` saying
    where it failed; Ctrl-C stops the waiting only (exit code 130), the job goes on.
    """
    from drivelab.jobs import SlurmJobState, follow_slurm_run, job_status, slurm_failure, submit_to_slurm

    status = submit_to_slurm(ws, spec, options)
    info = status.slurm or {}
    for warning in info.get("warnings", []):
        console.print(f"[yellow]sbatch: {escape(warning)}[/]", soft_wrap=True)
    if detach and json_output:
        emit_json("run", status.to_dict())
        return
    where = f" (partition {options.partition})" if options.partition else ""
    console.print(f"Submitted run [bold]{escape(status.run)}[/] to Slurm as job {info.get('job_id')}{where}.")
    console.print(
        f"  batch script: {info.get('batch_script')}\n  follow: drivelab jobs logs {status.run} -f\n  stop:   drivelab jobs stop {status.run}",
        markup=False,
        soft_wrap=True,
    )
    if detach:
        return
    console.print("[dim]Waiting for it to end (Ctrl-C stops waiting, not the job).[/]")
    try:
        for item in follow_slurm_run(ws, status.run, tail=0):
            if isinstance(item, SlurmJobState):
                console.print(f"[dim]{escape(item.describe())}[/]", soft_wrap=True)
            else:
                console.print(item, end="", markup=False, highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        console.print(f"\nStopped waiting; Slurm job {info.get('job_id')} goes on. Follow it with `drivelab jobs logs {status.run} -f`.", markup=False)
        raise typer.Exit(130) from None
    final = job_status(ws, status.run)
    if json_output:
        emit_json("run", final.to_dict())
    failure = slurm_failure(final)
    if failure is not None:
        raise failure
    if not json_output:
        console.print(f"Run folder: {final.run_dir}")

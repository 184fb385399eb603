"""``drivelab doctor``: is the PyTorch here working on this machine? If not, why, and how to fix it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption
from drivelab.cli.commands.setup import MachineOption, render_report


def doctor(
    json_output: JsonOption = False,
    python: Annotated[
        Optional[Path],
        typer.Option("--python", help="Check another interpreter's PyTorch (default: the one running drivelab).", show_default=False),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the check (a hung GPU).")] = 120.0,
    machine_file: MachineOption = None,
) -> None:
    """Check the installed PyTorch against this machine and say what is wrong, with the fix.

    Probes the machine (GPUs, driver, CUDA version), then, in a fresh
    interpreter, imports torch, checks it is the right build, that it sees each
    GPU and has kernels for it, runs a matmul and a conv on each device, and
    loads torchvision's compiled ops. Exits 0 when all is well, 1 otherwise.

    Example: drivelab doctor
    """
    from drivelab.runtime import load_machine, verify_torch

    machine = load_machine(machine_file)
    report = verify_torch(machine, python=str(python) if python else sys.executable, timeout=timeout)
    if json_output:
        emit_json("doctor", {"ok": report.ok, "machine": machine.to_dict(), "report": report.to_dict()})
    else:
        console.print(f"[bold]drivelab doctor[/]  {escape(report.python)}")
        render_report(report)
    if not report.ok:
        raise typer.Exit(1)

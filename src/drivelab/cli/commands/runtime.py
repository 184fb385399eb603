from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption
from drivelab.cli.commands.setup import render_report
from drivelab.errors import WorkspaceError
from drivelab.workspace import find_workspace

if TYPE_CHECKING:
    from drivelab.runtime import PanelRow


def runtime(
    json_output: JsonOption = False,
    check: Annotated[bool, typer.Option("--check", help="Also import PyTorch in a fresh interpreter and test each device (slower).")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show this machine's runtime: OS, Python, CPU, RAM, free disk, GPUs and drivers, installed PyTorch.

    Probes only (NVML, /proc, nvidia-smi, rocminfo, ...): PyTorch is not
    imported unless --check is given. With --check the exit code is 1 when a
    check fails.

    Example: drivelab runtime --check
    """
    from drivelab.runtime import info

    panel = info(_workspace_folder(workspace))
    report = None
    if check:
        from drivelab.runtime import verify_torch

        report = verify_torch(panel.machine)
    if json_output:
        payload: dict[str, Any] = panel.machine.to_dict()
        if report is not None:
            payload["check"] = report.to_dict()
        emit_json("runtime", payload)
    else:
        render_panel(panel.rows)
        if report is not None:
            render_report(report)
    if report is not None and not report.ok:
        raise typer.Exit(1)


def _workspace_folder(option: Path | None) -> Path:
    """The workspace holding ``option`` (or the cwd); else that folder itself."""
    try:
        return find_workspace(option).root
    except WorkspaceError:
        folder = (option or Path.cwd()).expanduser()
        if not folder.is_dir():
            raise WorkspaceError(f"{folder} is not a folder", hint="pass --workspace an existing folder") from None
        return folder.resolve()


def render_panel(rows: list[PanelRow]) -> None:
    """The runtime panel on stderr: the facts as a grid, then each problem on its own line."""
    from rich.table import Table

    panel = Table.grid(padding=(0, 2))
    panel.add_column(style="bold")
    panel.add_column()
    for row in rows:
        if row.kind != "problem":
            panel.add_row(("  " if row.kind == "device" else "") + escape(row.label), escape(row.value))
    console.print(panel)
    for row in rows:
        if row.kind == "problem":
            console.print(f"[yellow]problem:[/] {escape(row.value)}", soft_wrap=True)

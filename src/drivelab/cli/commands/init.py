from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drivelab.cli._output import console, emit_json
from drivelab.cli.commands._common import JsonOption
from drivelab.workspace import init_workspace


def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the workspace.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace files you edited (main.py) with drivelab's version.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a workspace: drive/colab (code), drive/dataset, drive/runs and .drivelab/ (local state).

    Safe to run again: it fills in what is missing and never overwrites a file
    you edited unless you pass --force.

    Example: drivelab init ~/lab
    """
    result = init_workspace(directory, force=force)
    if json_output:
        emit_json(
            "init",
            {"workspace": str(result.workspace.root), "created": result.created, "updated": result.updated, "kept": result.kept},
        )
        return
    console.print(f"Workspace ready at [bold]{result.workspace.root}[/]")
    for rel in result.created:
        console.print(f"  created  {rel}")
    for rel in result.updated:
        console.print(f"  updated  {rel}")
    for rel in result.kept:
        console.print(f"  [yellow]kept     {rel}[/] (you edited it; --force replaces it)")
    console.print(f"Next: drivelab data get mnist -w {result.workspace.root}   or   python {result.workspace.main_script}")

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from drivelab.workspace import Workspace, find_workspace

WorkspaceOption = Annotated[
    Optional[Path],
    typer.Option("--workspace", "-w", help="Workspace folder (default: $DRIVELAB_WORKSPACE, or the one holding the current folder).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def workspace_from(option: Path | None) -> Workspace:
    return find_workspace(option)

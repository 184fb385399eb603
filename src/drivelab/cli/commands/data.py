from __future__ import annotations

from typing import Annotated, Optional

import typer

from drivelab.cli._output import console, emit_json
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from
from drivelab.data import known_datasets

app = typer.Typer(help="Datasets in drive/dataset.", no_args_is_help=True)


@app.command("get")
def get(
    name: Annotated[str, typer.Argument(help=f"Dataset to fetch: {', '.join(known_datasets())}.")],
    mirror: Annotated[
        Optional[list[str]],
        typer.Option("--mirror", "-m", help="Mirror base URL (http://, https:// or file://); repeat to try several in order. Default: $DRIVELAB_MNIST_MIRROR, else the public mirrors."),
    ] = None,
    workspace: WorkspaceOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Download a dataset into drive/dataset, verified by MD5.

    Files already present and valid are skipped; an interrupted download
    resumes where it stopped.

    Example: drivelab data get mnist --mirror file:///data/mnist/
    """
    from drivelab.cli._progress import DownloadBars
    from drivelab.data import get_dataset

    ws = workspace_from(workspace)
    with DownloadBars(enabled=not quiet) as bars:
        result = get_dataset(name, ws.dataset, mirrors=mirror or None, progress=bars)
    if json_output:
        emit_json("data.get", result.to_dict())
        return
    fetched = [f for f in result.files if f.status != "present"]
    console.print(f"{result.dataset}: {len(result.files)} files verified in {result.raw_dir} ({len(fetched)} downloaded)")

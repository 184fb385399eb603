from __future__ import annotations

from pathlib import Path
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

    Files already present and valid are skipped; a file that fails its check
    is named (with its MD5 and the expected one) and replaced by a verified
    copy; an interrupted download resumes where it stopped.

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
    replaced = [f for f in result.files if f.replaced is not None]
    also = f", {len(replaced)} replaced a file that failed its check" if replaced else ""
    console.print(f"{result.dataset}: {len(result.files)} files verified in {result.raw_dir} ({len(fetched)} downloaded{also})")


@app.command("stage")
def stage(
    path: Annotated[str, typer.Argument(help="Folder in the drive, e.g. dataset/MNIST.")],
    dest: Annotated[Optional[Path], typer.Option("--dest", help="Where to put the copy (default: .drivelab/scratch/<path>, or $DRIVELAB_SCRATCH).")] = None,
    transfers: Annotated[int, typer.Option("--transfers", help="Files copied at once.", min=1, max=256)] = 16,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Copy a dataset folder from the drive to fast local disk, verified by size and hash.

    Reading many small files through a cloud mount is slow; the staged copy
    reads at local-disk speed. A valid earlier copy is reused.

    Example: drivelab data stage dataset/MNIST
    """
    from drivelab.data import stage_dataset

    ws = workspace_from(workspace)
    if json_output:
        emit_json("data.stage", stage_dataset(ws, path, dest=dest, transfers=transfers).to_dict())
        return
    with console.status(f"staging {path}..."):
        result = stage_dataset(ws, path, dest=dest, transfers=transfers)
    what = "reused" if result.reused else "staged"
    console.print(f"{what} {result.files} files ({result.bytes / 1e6:.1f} MB, verified by {result.hash}) at {result.path} in {result.seconds:.1f} s")

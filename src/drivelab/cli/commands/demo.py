from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption
from drivelab.train import recipe_names

_STAGES = {"init": "1/3 Workspace", "data": "2/3 MNIST", "train": "3/3 Training"}


def demo(
    directory: Annotated[Path, typer.Argument(help="Workspace folder (created if needed).")] = Path("drivelab-demo"),
    recipe: Annotated[str, typer.Option(help=f"Training recipe: {', '.join(recipe_names())}.")] = "fast",
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs (default: the recipe's).", show_default=False)] = None,
    run: Annotated[Optional[str], typer.Option(help="Run name; an existing run of that name is resumed.", show_default=False)] = None,
    threads: Annotated[
        Optional[int],
        typer.Option(min=1, help="CPU threads for PyTorch (default: PyTorch's choice); on a shared CPU, the cores actually free. Keep it when resuming.", show_default=False),
    ] = None,
    mirror: Annotated[
        Optional[list[str]],
        typer.Option("--mirror", "-m", help="MNIST mirror URL (repeatable). Default: $DRIVELAB_MNIST_MIRROR, else the public mirrors."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The main job in one command: init a workspace, fetch MNIST, train the ConvNet, report accuracy.

    It runs drive/colab/main.py exactly as you would, so what it does you can
    repeat and edit. The run's checkpoints, metrics.jsonl and curves.png land
    in drive/runs/<run>/.

    Example: drivelab demo ~/lab
    """
    if recipe not in recipe_names():
        raise typer.BadParameter(f"unknown recipe {recipe!r}; choose one of: {', '.join(recipe_names())}", param_hint="--recipe")

    from drivelab.cli._progress import DownloadBars
    from drivelab.jobs import DemoStage, run_demo

    def stage(event: DemoStage) -> None:
        console.rule(f"[bold]{_STAGES[event.name]}[/]  {escape(event.detail)}", align="left")

    with DownloadBars() as bars:
        # The bars live only while the download runs; training prints plain lines.
        def on_download(event):
            bars(event)

        def on_stage(event: DemoStage) -> None:
            if event.name == "train":
                bars.progress.stop()
            stage(event)

        result = run_demo(
            directory,
            recipe=recipe,
            epochs=epochs,
            run_name=run,
            mirrors=mirror or None,
            extra_args=["--threads", str(threads)] if threads is not None else None,
            on_stage=on_stage,
            on_download=on_download,
            on_line=lambda line: console.print(escape(line), soft_wrap=True),
        )
    if json_output:
        emit_json("demo", result.to_dict())
        return
    console.rule("[bold]Done[/]", align="left")
    if result.final_accuracy is None:
        console.print("No epoch was trained.")
        return
    last = result.history[-1]
    console.print(
        f"Test accuracy [bold green]{result.final_accuracy:.2f}%[/] after {len(result.history)} epoch(s), "
        f"{last.elapsed:.1f} s of training, {result.seconds:.1f} s in all."
    )
    console.print(f"Run folder: {result.run_dir}   (curves: {result.run_dir / 'curves.png'})")

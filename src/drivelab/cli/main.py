"""The ``drivelab`` command line: wiring of the command modules and error handling."""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from drivelab import __version__, colab
from drivelab.cli._output import console, show_error
from drivelab.cli.commands import data, demo, doctor, drive, init, lab, runtime, setup
from drivelab.cli.commands import jobs as jobs_command
from drivelab.cli.commands import run as run_command
from drivelab.cli.commands import secrets as secrets_command
from drivelab.errors import DrivelabError

# click >= 8.4 words its own "Did you mean ...?" for an unknown command (NoSuchCommand); typer adds another.
_CLICK_SUGGESTS = hasattr(click.exceptions, "NoSuchCommand")


class Group(TyperGroup):
    """A command group that suggests a near command name once, however click and typer split the work."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if _CLICK_SUGGESTS:
            return click.Group.resolve_command(self, ctx, args)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="drivelab",
    cls=Group,
    help="A Colab-style deep-learning workspace on a machine you own: a drive, datasets, and the MNIST ConvNet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(init.init)
app.command("demo")(demo.demo)
app.command("runtime")(runtime.runtime)
app.add_typer(drive.app, name="drive", cls=Group)
app.add_typer(data.app, name="data", cls=Group)
app.add_typer(setup.app, name="setup", cls=Group)
app.command("doctor")(doctor.doctor)
app.command("run", cls=run_command.RunCommand, context_settings=run_command.CONTEXT)(run_command.run)
app.add_typer(jobs_command.app, name="jobs", cls=Group)
app.command("lab")(lab.lab)
app.add_typer(secrets_command.app, name="secrets", cls=Group)

_debug = False


def _version(value: bool) -> None:
    if value:
        print(f"drivelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    global _debug
    _debug = debug


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point: run the command; turn drivelab errors into a message and exit code.

    Typer handles usage errors itself; a :class:`DrivelabError` raised by a
    command passes through it and is rendered here, without a traceback
    unless ``--debug`` was given.
    """
    # SIGTERM unwinds like Ctrl+C, so long-running commands flush the drive on the way out.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if os.environ.get("DRIVELAB_COLAB_KEEPER"):
            # In a kernel's or job's /content namespace: what attaches the drive runs outside it (see drivelab.colab).
            code = colab.forward_command(sys.argv[1:])
            if code is not None:
                sys.exit(code)
        app(prog_name="drivelab")
    except DrivelabError as exc:
        if _debug:
            console.print_exception()
        show_error(exc)
        sys.exit(exc.exit_code)

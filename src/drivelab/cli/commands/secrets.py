from __future__ import annotations

import sys
from typing import Annotated

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from
from drivelab.errors import SecretError

app = typer.Typer(
    help="The workspace's secrets, what Colab's `userdata.get(NAME)` returns in its notebooks and jobs. Values are never shown.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(help="The secret's name, as the notebook asks for it (e.g. HF_TOKEN).", show_default=False)]


def _read_value(name: str) -> str:
    """The value from a pipe (one trailing newline dropped, as `echo` adds it), else typed at a hidden prompt."""
    if not sys.stdin.isatty():
        value = sys.stdin.read()
        return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    try:
        return typer.prompt(f"Value for {name} (not shown)", hide_input=True, default="", show_default=False, err=True)
    except (EOFError, typer.Abort):
        raise SecretError(f"no value given for {name}", hint="type it at the prompt, or pipe it in") from None


@app.command("set")
def set_(
    name: NameArgument,
    from_env: Annotated[
        str | None,
        typer.Option("--from-env", metavar="VAR", help="Store no value: read the secret from $VAR each time it is asked for.", show_default=False),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Set a secret: its value from a pipe, else typed at a prompt that does not show it.

    The value is kept in .drivelab/secrets.json (readable by you only), never
    on the drive. With --from-env VAR only the variable's name is kept, and
    the value is read from the environment of the notebook or job when it asks.

    Examples:
      drivelab secrets set HF_TOKEN                      (type it)
      pass show wandb | drivelab secrets set WANDB_API_KEY
      drivelab secrets set OPENAI_API_KEY --from-env OPENAI_API_KEY
    """
    from drivelab.colab import check_secret_name, set_secret

    ws = workspace_from(workspace)
    check_secret_name(name)  # before asking for a value
    info = set_secret(ws, name, from_env=from_env) if from_env is not None else set_secret(ws, name, _read_value(name))
    where = f"read from ${info.env} when asked for" if info.env else "stored in .drivelab/secrets.json (readable by you only)"
    console.print(f"Secret [bold]{escape(info.name)}[/] set: {escape(where)}.")
    console.print(f"In a notebook or job: from google.colab import userdata; userdata.get('{info.name}')", markup=False, highlight=False)


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """The secrets' names (and where each is read from); never their values."""
    from drivelab.colab import list_secrets

    secrets = list_secrets(workspace_from(workspace))
    if json_output:
        emit_json("secrets.list", {"secrets": [s.to_dict() for s in secrets]})
        return
    if not secrets:
        console.print("No secrets yet. Set one with `drivelab secrets set NAME`.", markup=False)
        return
    for info in secrets:
        console.print(f"{info.name}  (from ${info.env})" if info.env else info.name, markup=False, highlight=False)


@app.command("remove")
def remove(name: NameArgument, workspace: WorkspaceOption = None) -> None:
    """Forget a secret."""
    from drivelab.colab import remove_secret

    info = remove_secret(workspace_from(workspace), name)
    console.print(f"Secret [bold]{escape(info.name)}[/] removed.")

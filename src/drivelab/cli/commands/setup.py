"""``drivelab setup torch``: plan, install and verify the PyTorch build that fits this machine.
``drivelab setup colab``: the one step with root that gives kernels and jobs their ``/content``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption
from drivelab.errors import SetupError

if TYPE_CHECKING:  # runtime modules load inside the command: `--dry-run` must start fast
    from drivelab.runtime import InstallResult, SetupResult, TorchPlan, VerifyReport

app = typer.Typer(help="Set up the runtime: the PyTorch build that fits this machine; /content for Colab notebooks.", no_args_is_help=True)

MachineOption = Annotated[
    Optional[Path],
    typer.Option(
        "--machine",
        help="Use a recorded machine description (the JSON of `drivelab runtime --json`) instead of probing this one.",
        show_default=False,
    ),
]


def render_plan(plan: TorchPlan, *, title: str = "PyTorch plan") -> None:
    kind = plan.backend
    if plan.cuda:
        kind += f" (CUDA {plan.cuda})"
    elif plan.rocm:
        kind += f" (ROCm {plan.rocm})"
    elif plan.backend == "default":
        kind += " (PyPI's build)"
    console.print(f"[bold]{title}[/]")
    console.print(f"  backend   {escape(kind)}")
    if plan.find_links:
        console.print(f"  wheels    {escape(plan.find_links)}  (offline, --no-index)")
    else:
        console.print(f"  index     {escape(plan.index_url or '')}")
    console.print(f"  install   {escape('  '.join(plan.requirements()))}", soft_wrap=True)
    console.print(f"  why       {escape(plan.explanation)}", soft_wrap=True)
    for note in plan.notes:
        console.print(f"  note      {escape(note)}", soft_wrap=True)
    for warning in plan.warnings:
        console.print(f"  [yellow]warning[/]   {escape(warning)}", soft_wrap=True)


def render_report(report: VerifyReport) -> None:
    for check in report.checks:
        mark = "[green]ok  [/]" if check.ok else "[bold red]FAIL[/]"
        console.print(f"  {mark} {escape(check.name):<18} {escape(check.detail)}", soft_wrap=True)
        if not check.ok and check.fix:
            console.print(f"       [yellow]fix:[/] {escape(check.fix)}", soft_wrap=True)
    failed = len(report.failures)
    if report.ok:
        console.print(f"[bold green]PyTorch works here[/] ({report.torch}, {report.python})")
    else:
        console.print(f"[bold red]{failed} problem{'s' if failed != 1 else ''} found[/] in the PyTorch of {escape(report.python)}")


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise SetupError("not installing without confirmation", hint="add --yes to install without a prompt, or --dry-run to only plan")
    if not typer.confirm("Install it?", default=True, err=True):
        raise typer.Exit(1)


@app.command("torch")
def torch(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only plan: print what would be installed and why.")] = False,
    json_output: JsonOption = False,
    backend: Annotated[
        Optional[str],
        typer.Option("--backend", help="Force a build: cpu, cu126, cu130, rocm7.2, xpu, ... (default: $DRIVELAB_TORCH_BACKEND, else chosen for this machine).", show_default=False),
    ] = None,
    torch_version: Annotated[
        Optional[str], typer.Option("--torch", metavar="VERSION", help="Force a torch release: 2.13 or 2.13.0 (default: the newest that fits).", show_default=False)
    ] = None,
    index_url: Annotated[
        Optional[str], typer.Option("--index-url", metavar="URL", help="Install from this index (a mirror of the build's index) instead of download.pytorch.org.", show_default=False)
    ] = None,
    find_links: Annotated[
        Optional[Path], typer.Option("--find-links", metavar="DIR", help="Install offline from a folder of wheels (--no-index).", show_default=False)
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Install without asking.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Read the index first, to learn releases newer than drivelab's table.")] = False,
    reinstall: Annotated[bool, typer.Option("--reinstall", help="Reinstall the torch family even if the planned builds are in place (a damaged install).")] = False,
    if_needed: Annotated[
        bool,
        typer.Option("--if-needed", help="Keep an installed PyTorch that passes the checks of `drivelab doctor`, even if it is not the planned release; install only when it is missing or fails."),
    ] = False,
    installer: Annotated[str, typer.Option("--installer", help="pip, uv, or auto (uv when on PATH).")] = "auto",
    machine_file: MachineOption = None,
) -> None:
    """Install the PyTorch that fits this machine's GPU, driver and Python, then prove it works.

    Plans torch, torchvision and torchaudio as one matching set from one index
    (the driver must run the build's CUDA version, natively or through CUDA's
    minor-version compatibility, and every GPU must have kernels in it),
    installs them with pip or uv, and verifies them in a fresh
    interpreter: devices seen, a matmul and a conv on each, torchvision's ops.

    With --if-needed a PyTorch that is already installed and passes the checks
    is kept, so running it again (as scripts/bootstrap.sh does) installs
    nothing and needs no network.

    Examples: drivelab setup torch --dry-run;  drivelab setup torch --yes;
    drivelab setup torch --find-links ./wheels --yes;  drivelab setup torch --yes --if-needed
    """
    from drivelab.runtime import setup_torch

    if not dry_run and installer not in ("auto", "pip", "uv"):
        raise typer.BadParameter("choose pip, uv or auto", param_hint="--installer")

    def before_install(plan: TorchPlan, checked: VerifyReport | None) -> None:
        if checked is not None and not json_output:
            render_report(checked)
            console.print("The installed PyTorch does not pass the checks: installing the plan.")
        render_plan(plan)
        _confirm(yes)
        console.rule("[bold]Installing[/]", align="left")

    def after_install(installed: InstallResult) -> None:
        for note in installed.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
        console.print(f"Installer log: {installed.log}")
        console.rule("[bold]Verifying[/]", align="left")

    result = setup_torch(
        machine_file=machine_file,
        dry_run=dry_run,
        backend=backend,
        torch_version=torch_version,
        index_url=index_url,
        find_links=find_links,
        refresh=refresh,
        if_needed=if_needed,
        reinstall=reinstall,
        installer=installer,
        before_install=before_install,
        on_line=lambda line: console.print(f"[dim]{escape(line)}[/]", soft_wrap=True),
        after_install=after_install,
    )
    if json_output:
        emit_json("setup.torch", result.to_dict())
    else:
        render_setup(result)
    if not result.ok:
        raise typer.Exit(1)


def render_setup(result: SetupResult) -> None:
    """What the command shows once ``setup_torch`` is done (the install itself was shown as it ran)."""
    if result.dry_run:
        for note in result.refresh.notes if result.refresh else ():
            console.print(f"[dim]{escape(note)}[/]")
        render_plan(result.plan)
    elif result.kept and result.checked is not None:
        render_report(result.checked)
        console.print(
            f"Kept: torch {escape(result.checked.torch or '?')} passes the checks (--if-needed). The plan would install "
            f"{escape(', '.join(result.plan.requirements()))}; run `drivelab setup torch` without --if-needed for that.",
            soft_wrap=True,
        )
    elif result.verify is not None:
        render_report(result.verify)


@app.command("colab")
def colab(json_output: JsonOption = False) -> None:
    """Make /content once per machine, so that Colab notebooks find their files there (run with sudo).

    Creates an empty folder /content (root-owned, 0755), if it is missing,
    and checks that users without root can use it: each lab kernel and each
    `drivelab run` job then sees its own workspace at /content, through a
    mount namespace of its own; no other process sees anything there, and
    nothing else ever needs root. Safe to run again: where /content is a
    folder already, nothing is changed. Exit code 1 when users cannot use it
    (user namespaces switched off), with what to change.

    Example:
      sudo drivelab setup colab
    """
    from drivelab.colab import setup_machine

    result = setup_machine()
    if json_output:
        emit_json("setup.colab", result.to_dict())
    else:
        done = "made" if result.created else "is there already"
        console.print(f"{result.content} {done}: each lab kernel and drivelab run job sees its own workspace there.", markup=False)
        for note in result.notes:
            console.print(f"note: {note}", markup=False)
        if result.user_namespaces:
            console.print("Users without root can use it (user namespaces are allowed).", markup=False)
        else:
            console.print(f"[bold red]Users cannot use it yet:[/] {escape(result.why or 'user namespaces are not allowed')}")
            console.print(f"hint: {result.hint}", markup=False)
    if not result.user_namespaces:
        raise typer.Exit(1)

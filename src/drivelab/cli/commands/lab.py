from __future__ import annotations

import contextlib
import signal
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from drivelab._units import format_bytes
from drivelab.cli._output import console, escape
from drivelab.cli.commands._common import WorkspaceOption

if TYPE_CHECKING:
    from drivelab.drive import DetachResult


def lab(
    port: Annotated[Optional[int], typer.Option(min=0, max=65535, help="Port (default: the first free one from 8888; 0: any free port).", show_default=False)] = None,
    ip: Annotated[str, typer.Option(help="Address to listen on. Anything but a loopback address lets other machines reach the lab.")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Start JupyterLab on the workspace, with its drive attached, until Ctrl+C.

    Makes the folder a workspace if it is not one yet, attaches the drive,
    and starts JupyterLab rooted at the workspace, listening on 127.0.0.1 with
    token authentication. Notebooks get `import drivelab`, the %drivelab
    magic, and Colab's `from google.colab import drive; drive.mount('/content/drive')`.
    Ctrl+C stops the server and its kernels, then flushes and detaches the drive;
    so do SIGTERM (`kill PID`) and SIGHUP (the terminal closed).

    Example: drivelab lab -w ~/lab --port 8888
    """
    from drivelab.lab import start_lab

    console.print("Starting JupyterLab ...")
    server = start_lab(workspace, ip=ip, port=port, open_browser=not no_browser)
    for rel in server.init.created:
        console.print(f"  created  {escape(rel)}")
    for warning in server.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    console.print(f"Workspace [bold]{escape(str(server.workspace.root))}[/], drive: {escape(server.drive.mode)}")
    console.print(f"JupyterLab is running ({server.seconds:.1f} s); open:\n\n    {server.lab_url}\n", soft_wrap=True, highlight=False)
    console.print(f"Server log: {escape(str(server.log))}. Press Ctrl+C to stop.", soft_wrap=True)
    received: list[int] = []

    def stop_like_ctrl_c(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    # `kill PID` and a closed terminal stop it as Ctrl+C does: never a server, kernels or a mount left behind.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_like_ctrl_c)
    code: int | None = None
    try:
        code = server.wait()
    except KeyboardInterrupt:
        why = f" ({signal.Signals(received[-1]).name})" if received else ""
        _say(f"\nStopping JupyterLab and its kernels{why} ...")
    try:
        stopped = server.stop()
    except KeyboardInterrupt:
        # A second Ctrl+C: stop waiting, but say what may be left undone.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _say("[yellow]interrupted:[/] the drive may not be flushed; run `drivelab drive flush` to make sure.")
        raise typer.Exit(130) from None
    if stopped.killed:
        _say(f"Killed {len(stopped.killed)} process(es) the server left behind.")
    _say(stopped_line(stopped.flush))
    if code is not None:
        _say(f"[red]JupyterLab exited on its own with code {code}[/]; see {escape(str(server.log))}")
        raise typer.Exit(1)


def _say(text: str) -> None:
    """A line on the console, if there still is one: after SIGHUP the terminal may be gone, and the stop goes on."""
    with contextlib.suppress(OSError):
        console.print(text, soft_wrap=True)


def stopped_line(flush: DetachResult) -> str:
    """The lab's last line about the drive: what was uploaded, and whether it is detached, left for others, or left pending."""
    uploaded = f"{flush.files} file(s), {format_bytes(flush.bytes)} uploaded in {flush.seconds:.1f} s"
    if flush.forced and flush.pending:
        return (
            f"JupyterLab stopped. [yellow]Drive unmounted with {flush.pending} upload(s) pending[/] ({escape(flush.reason or 'the remote did not take them')}); "
            f"they are kept in {escape(flush.cache or '.drivelab/drive/cache')} and upload at the next `drivelab drive mount`. Before that: {uploaded}."
        )
    left = "detached" if flush.detached else "left attached: in use by " + ", ".join(str(u.get("what")) for u in flush.users)
    return f"JupyterLab stopped. Drive flushed ({uploaded}) and {left}."

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from drivelab._units import format_bytes
from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption, workspace_from
from drivelab.errors import DriveOptionError

if TYPE_CHECKING:
    from drivelab.drive import FlushResult, RemoteInfo
    from drivelab.workspace import Workspace

app = typer.Typer(
    help="The drive at drive/: a local folder by default, or any cloud storage rclone supports (Google Drive, S3, GCS, WebDAV, SFTP, ...).",
    no_args_is_help=True,
)

TYPES = "gdrive, s3, gcs, webdav, sftp, local, or any rclone backend name"


def _ask_hidden(prompt: str) -> str:
    return typer.prompt(prompt, hide_input=True)


@app.command("connect")
def connect(
    name: Annotated[str, typer.Argument(help="A name for the remote, e.g. gdrive or box.")],
    type: Annotated[Optional[str], typer.Option("--type", "-t", help=f"Storage type: {TYPES}.", show_default=False)] = None,
    root: Annotated[str, typer.Option("--root", help="Folder on the remote that holds the drive (local: a path; s3/gcs: bucket/folder).")] = "",
    bucket: Annotated[Optional[str], typer.Option("--bucket", help="s3/gcs: the bucket (created if missing); --root becomes a folder in it.")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="s3: endpoint URL of any S3-compatible service.")] = None,
    access_key_id: Annotated[Optional[str], typer.Option("--access-key-id", help="s3: access key id.")] = None,
    secret_access_key: Annotated[Optional[str], typer.Option("--secret-access-key", help="s3: secret key: @FILE, - (standard input), or asked for on a terminal when omitted; $AWS_SECRET_ACCESS_KEY also works.")] = None,
    region: Annotated[Optional[str], typer.Option("--region", help="s3: region.")] = None,
    provider: Annotated[Optional[str], typer.Option("--provider", help="s3: provider as rclone names it (AWS, Minio, Cloudflare, ...; default Other).")] = None,
    token: Annotated[Optional[str], typer.Option("--token", help="gdrive/gcs/dropbox/box: a JSON token printed by `rclone authorize`, as @FILE or - (standard input) (without it, gdrive/dropbox/box sign in here: a link to open on any device).")] = None,
    service_account_file: Annotated[Optional[str], typer.Option("--service-account-file", help="gdrive/gcs: a service-account JSON key file.")] = None,
    client_id: Annotated[Optional[str], typer.Option("--client-id", help="gdrive/dropbox/box/gcs: your own OAuth client id. Recommended: rclone's shared client is rate-limited by Google for everybody using it (and rclone is retiring its Google one during 2026); your own has your quota alone.")] = None,
    client_secret: Annotated[Optional[str], typer.Option("--client-secret", help="Your own OAuth client's secret (asked for on a terminal when --client-id is given without it, which keeps it off the command line).")] = None,
    browser: Annotated[bool, typer.Option("--browser", help="gdrive: sign in with a browser on this machine (rclone's local flow) instead of pasting an address back.")] = False,
    project_number: Annotated[Optional[str], typer.Option("--project-number", help="gcs: project number (to create buckets).")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="webdav: server URL.")] = None,
    vendor: Annotated[Optional[str], typer.Option("--vendor", help="webdav: nextcloud, owncloud, sharepoint, other, ...")] = None,
    host: Annotated[Optional[str], typer.Option("--host", help="sftp: host name.")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="sftp: port.")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="webdav/sftp: user name.")] = None,
    password: Annotated[Optional[str], typer.Option("--pass", help="webdav/sftp: password: @FILE, - (standard input), or asked for on a terminal with --ask-pass.")] = None,
    ask_pass: Annotated[bool, typer.Option("--ask-pass", help="Ask for the password or secret on the terminal.")] = False,
    key_file: Annotated[Optional[str], typer.Option("--key-file", help="sftp: private key file.")] = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="Any rclone option for this type, as key=value (repeatable).")] = None,
    rclone_remote: Annotated[Optional[str], typer.Option("--rclone-remote", help="Copy a remote (NAME or NAME:path) from your own rclone config instead.")] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Do not check the credentials now.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a remote of the same name.")] = False,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a remote to this workspace (kept in .drivelab/rclone.conf, mode 0600) and check that it answers.

    Examples:

      drivelab drive connect box -t s3 --endpoint https://s3.example.com --access-key-id KEY --bucket lab

      drivelab drive connect gdrive -t gdrive --client-id ID   # prints a link: sign in on any device, paste the address back

      drivelab drive connect gdrive -t gdrive --token @token.json   # token from `rclone authorize drive`; - reads standard input

      drivelab drive connect gdrive -t gdrive --service-account-file sa.json

      drivelab drive connect nas -t webdav --url https://nas/remote.php/dav/files/me --user me --ask-pass

      drivelab drive connect mine --rclone-remote myremote:lab
    """
    from drivelab.drive import check_remote_type, import_remote
    from drivelab.drive import connect as connect_remote

    ws = workspace_from(workspace)
    if type and not rclone_remote:
        check_remote_type(type)
    secret_access_key = _secret_value("--secret-access-key", secret_access_key)
    password = _secret_value("--pass", password)
    token = _secret_value("--token", token)
    client_secret = _secret_value("--client-secret", client_secret)
    if rclone_remote:
        info = import_remote(ws, name, rclone_remote, root=root, check=not no_check, replace=replace)
    elif _signs_in(type) and not (token or service_account_file or browser):
        info = _sign_in(ws, name, type or "", root=root, client_id=client_id, client_secret=client_secret, option=option or [], check=not no_check, replace=replace)
    else:
        if ask_pass and not password:
            password = typer.prompt("Password", hide_input=True)
        options = {
            "endpoint": endpoint, "access_key_id": access_key_id, "secret_access_key": secret_access_key,
            "region": region, "provider": provider, "token": token, "service_account_file": service_account_file,
            "client_id": client_id, "client_secret": client_secret, "project_number": project_number,
            "url": url, "vendor": vendor, "host": host, "port": str(port) if port else None, "user": user,
            "pass": password, "key_file": key_file,
        }
        info = connect_remote(
            ws, name, type, options, root=root, bucket=bucket, extra=option or (),
            check=not no_check, interactive=browser, replace=replace,
            ask_secret=_ask_hidden if sys.stdin.isatty() else None,
        )
    if json_output:
        emit_json("drive.connect", info.to_dict())
        return
    console.print(f"Connected [bold]{escape(info.name)}[/] ({escape(info.type)}, root {escape(info.root or '/')})" + ("" if no_check else ": credentials checked"))
    console.print(f"Next: drivelab drive mount {escape(info.name)}")


def _secret_value(option: str, given: str | None) -> str | None:
    """A secret option's value: ``@FILE`` reads the file, ``-`` standard input; a value typed on the command line
    is taken, with a warning that any local user can read it there while drivelab runs."""
    if given is None:
        return None
    if given == "-":
        return sys.stdin.read().strip() or None
    if given.startswith("@"):
        path = Path(given[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise DriveOptionError(f"cannot read {option} from {path}: {exc.strerror or exc}", hint=f"give {option} @FILE with a readable file, or {option} - to read it from standard input") from None
    console.print(
        f"[yellow]warning:[/] {option} given on the command line: other users of this machine can read it (ps, /proc) "
        f"while drivelab runs, and your shell keeps it in its history. Next time: {option} @FILE, {option} - (standard input)"
        + (", or leave it out to be asked" if option in ("--secret-access-key", "--client-secret") else ", or --ask-pass" if option == "--pass" else ""),
        highlight=False, soft_wrap=True,
    )
    return given


def _signs_in(type: str | None) -> bool:
    from drivelab.drive import OAUTH_TYPES

    return type in OAUTH_TYPES or type == "drive"


def _sign_in(ws: Workspace, name: str, type: str, *, root: str, client_id: str | None, client_secret: str | None, option: list[str], check: bool, replace: bool) -> RemoteInfo:
    """Sign in from this terminal: print the consent link, read back the address the browser ended on.

    The browser may be on any device: after consent the provider sends it to a
    loopback address that does not load there, and the user copies that address
    (which carries the code) back here. It is read without echo and never shown.
    """
    from urllib.parse import urlsplit

    from drivelab.drive import begin_sign_in, finish_sign_in
    from drivelab.errors import SignInError

    if not sys.stdin.isatty():
        raise SignInError(
            f"signing in to {type} needs a terminal to paste the sign-in address into, and this one has none",
            hint="run the command on a terminal; or connect it from the lab's Connect page; "
            "or pass --token with the JSON printed by `rclone authorize` on a machine with a browser",
        )
    if client_id and client_secret is None:
        client_secret = typer.prompt("Client secret of your OAuth client (Enter if it has none)", default="", show_default=False, hide_input=True, err=True) or None
    sign_in = begin_sign_in(ws, name, type, client_id=client_id, client_secret=client_secret, extra=option, replace=replace)
    if sign_in.notice:
        console.print(f"[yellow]notice:[/] {escape(sign_in.notice)}")
    console.print(f"Sign in to {escape(sign_in.label)} for the remote [bold]{escape(name)}[/]:")
    console.print("  1. Open this link in a browser on any device (a phone, your laptop) and sign in:\n")
    console.print(sign_in.url, markup=False, highlight=False, soft_wrap=True)  # one line, however wide: copied whole
    host = urlsplit(sign_in.redirect_uri).hostname or "this machine"
    console.print(
        f"\n  2. Your browser then tries to open an address on {escape(host)} that does not load there: that is expected.\n"
        "     Copy that whole address from the address bar (or just the code in it) and paste it here."
    )
    answer = typer.prompt("Address or code (not shown)", hide_input=True, err=True)
    with console.status(f"signing in to {sign_in.label}" + (" and listing the drive..." if check else "...")):
        return finish_sign_in(ws, sign_in, answer, root=root, check=check)


@app.command("list")
def list_(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """List this workspace's remotes (never their secrets)."""
    from drivelab.drive import list_remotes

    remotes = list_remotes(workspace_from(workspace))
    if json_output:
        emit_json("drive.list", {"remotes": [r.to_dict() for r in remotes]})
        return
    if not remotes:
        console.print("No remotes: drive/ is a local folder. Add one with `drivelab drive connect NAME --type ...`.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("name", "type", "root", "details", ""):
        table.add_column(column)
    for r in remotes:
        details = " ".join(f"{k}={v}" for k, v in r.details.items())
        table.add_row(r.name, r.type, r.root or "/", details, "[green]drive[/]" if r.is_drive else "")
    console.print(table)


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The remote to forget.")],
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Forget a remote (nothing on the remote is touched). If it was the drive, drive/ becomes a local folder again."""
    from drivelab.drive import remove_remote

    info = remove_remote(workspace_from(workspace), name)
    if json_output:
        emit_json("drive.remove", info.to_dict())
        return
    console.print(f"Removed {escape(info.name)}" + (": drive/ is a local folder again" if info.is_drive else ""))


@app.command("mount")
def mount(
    name: Annotated[Optional[str], typer.Argument(help="Remote to attach (default: the workspace's drive).")] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="mount (FUSE, default) or sync (a local copy kept in step; for machines without FUSE).")] = None,
    copy_local: Annotated[bool, typer.Option("--copy-local", help="drive/ holds local files: copy them to the remote first (local copies kept in .drivelab/local-drive/).")] = False,
    set_aside: Annotated[bool, typer.Option("--set-aside", help="drive/ holds local files: move them to .drivelab/local-drive/ without copying.")] = False,
    allow_non_empty: Annotated[bool, typer.Option("--allow-non-empty", help="Mount over local files in drive/ (hidden until unmount).")] = False,
    cache: Annotated[Optional[str], typer.Option("--cache", help="VFS cache mode: full (default; keeps what is read, so reading it again downloads nothing), writes (caches only what is written), minimal, off.")] = None,
    cache_max_size: Annotated[Optional[str], typer.Option("--cache-max-size", help="Cap on the local cache, e.g. 10G (default).")] = None,
    dir_cache_time: Annotated[Optional[str], typer.Option("--dir-cache-time", help="How long folder listings are cached (default 1m): changes made elsewhere show up after this. Short times re-list big folders often.")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Attach read-only.")] = False,
    cache_dir: Annotated[Optional[str], typer.Option("--cache-dir", help="Folder on each machine's own disk for the VFS caches (default /var/tmp/drivelab-UID; kept with the workspace's drive; '' for the default; $DRIVELAB_DRIVE_CACHE_DIR overrides it).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the drive to be live.")] = 60.0,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Attach a remote at drive/ and return once it is live; a watchdog keeps it mounted.

    Falls back to sync mode, with a notice, when FUSE is not available.

    Example: drivelab drive mount box --copy-local
    """
    from drivelab.drive import attach

    chosen = [flag for flag, on in (("copy", copy_local), ("set-aside", set_aside), ("mount-over", allow_non_empty)) if on]
    if len(chosen) > 1:
        raise DriveOptionError("--copy-local, --set-aside and --allow-non-empty exclude each other", hint="pass one of them")
    ws = workspace_from(workspace)
    notices = [] if json_output else None
    state = attach(
        ws, name, mode=mode, local_files=chosen[0] if chosen else None, read_only=True if read_only else None,
        cache_mode=cache, cache_max_size=cache_max_size, dir_cache_time=dir_cache_time, cache_dir=cache_dir, timeout=timeout,
        on_notice=(lambda text: console.print(f"[yellow]notice:[/] {escape(text)}")) if notices is None else None,
    )
    if json_output:
        emit_json("drive.mount", state.to_dict())
        return
    if state.mode == "local":
        console.print(f"drive/ is the local folder {escape(str(state.path))} (no remote configured)")
        return
    console.print(f"[green]live[/]: {escape(state.spec or '')} at {escape(str(state.path))} ({state.mode})")


@app.command("flush")
def flush(
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Give up after this many seconds (default: wait while uploads make progress).")] = None,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Return only when every pending upload has landed on the remote."""
    from drivelab.drive import flush as flush_drive

    ws = workspace_from(workspace)
    if json_output:
        result = flush_drive(ws, timeout=timeout)
        emit_json("drive.flush", result.to_dict())
        return
    from drivelab.drive import is_attached

    attached = is_attached(ws)
    with console.status("flushing the drive...") as spinner:
        result = flush_drive(ws, timeout=timeout, on_progress=lambda pending, done: spinner.update(f"flushing the drive: {pending} uploads pending, {done} landed"))
    if result.mode != "local" and not attached and not result.files:
        console.print("the drive is not attached: nothing to flush")
        return
    _say_flushed(result)


def _say_flushed(result: FlushResult) -> None:
    if result.mode == "local":
        console.print("drive/ is a local folder: nothing to upload")
        return
    console.print(f"flushed: waited for {result.files} files ({format_bytes(result.bytes)}) in {result.seconds:.1f} s")
    for name in result.conflicts:
        console.print(f"[yellow]conflict:[/] {escape(name)} (both sides changed; both versions kept)")


@app.command("unmount")
def unmount(
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Return within this many seconds: uploads not landed by then stay in this machine's drive cache (`drivelab drive status` names it) and upload at the next mount.")] = 30.0,
    force: Annotated[bool, typer.Option("--force", help="Unmount now, without waiting for uploads, even while a command uses the drive.")] = False,
    workspace: WorkspaceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Flush, then unmount the drive and stop its watchdog; returns within --timeout (default 30 s).

    When uploads have not all landed by then (the remote is unreachable, the
    drive hung), or at once with --force, it unmounts anyway and says how many
    are pending: they are kept in this machine's drive cache (on its own disk,
    named in the message) and upload at the next `drivelab drive mount` (exit
    code 1 unless --force). Only this machine's mount is detached.

    Refuses while another command has the drive in use (`drivelab lab`, a
    job): stop them first, or pass --force to unmount it under them.
    """
    from drivelab.drive import detach
    from drivelab.errors import FlushError

    from drivelab.drive import DrivePaths

    ws = workspace_from(workspace)
    kept_in = escape(str(DrivePaths(ws).cache))
    if json_output:
        result = detach(ws, timeout=timeout, force=force, when_used="refuse")
        emit_json("drive.unmount", result.to_dict())
    else:
        with console.status("flushing and unmounting the drive..."):
            result = detach(ws, timeout=timeout, force=force, when_used="refuse")
        if not result.was_attached:
            console.print("drive/ is a local folder: nothing to unmount" if result.mode == "local" else "the drive is not attached: nothing to unmount")
            if result.pending:
                console.print(f"[yellow]{_uploads(result.pending)} pending[/] from before: kept in {kept_in}; they upload at the next `drivelab drive mount`")
            return
        if result.forced:
            console.print(f"[yellow]unmounted without waiting for uploads[/] ({escape(result.reason or '')})")
        else:
            _say_flushed(result)
            if result.mode != "local":
                console.print("unmounted")
        if result.pending and force:
            console.print(f"[yellow]{_uploads(result.pending)} pending[/]: kept in {kept_in}; they upload at the next `drivelab drive mount`")
    if result.pending and not force and result.was_attached:
        raise FlushError(
            f"unmounted with {_uploads(result.pending)} pending: {result.reason or 'they did not land in time'}",
            hint=f"nothing was discarded: they are kept in {DrivePaths(ws).cache} and upload at the next mount (`drivelab drive mount`, then `drivelab drive flush`)",
        )


def _last_known(stats: dict | None) -> str:
    """Why a count is unknown, and the last one known with its age: "rclone not answering; 9 as of 12 s ago"."""
    if not stats or stats.get("pending_uploads") is None:
        return "rclone not answering; no earlier count"
    return f"rclone not answering; {stats['pending_uploads']} as of {stats.get('age', 0):.0f} s ago"


def _uploads(n: int) -> str:
    return f"{n} upload{'' if n == 1 else 's'}"


@app.command("status")
def status(workspace: WorkspaceOption = None, json_output: JsonOption = False) -> None:
    """Remote, mode, live or not, pending uploads, cache size, last watchdog event."""
    from drivelab.drive import status as drive_status

    state = drive_status(workspace_from(workspace))
    if json_output:
        emit_json("drive.status", state.to_dict())
        return
    if state.mode == "local":
        console.print(f"drive: local folder {escape(str(state.path))}")
        return
    colour = {"live": "green", "down": "red", "failed": "red"}.get(state.phase, "yellow")
    console.print(f"drive: {escape(state.spec or '')} at {escape(str(state.path))}  mode {state.mode}  [{colour}]{state.phase}[/]")
    if state.live and state.pending_uploads is None:
        console.print(f"  pending uploads unknown ({_last_known(state.last_stats)}), cache unknown", markup=False)
        if state.stats_error:
            console.print(f"  ({state.stats_error})", markup=False, highlight=False, soft_wrap=True)
    elif state.live:
        console.print(f"  pending uploads {state.pending_uploads} ({state.uploading} uploading), cache {format_bytes(state.cache_bytes or 0)} in {state.cache_files} files")
    if state.host:
        pids = ", ".join(f"{what} pid {pid}" for what, pid in (("watchdog", state.watchdog_pid), ("rclone", state.rclone_pid)) if pid)
        console.print(f"  on this machine ({escape(state.host)}{'; ' + pids if pids else ''})" + (f", cache {escape(state.cache)}" if state.cache else ""), highlight=False)
    if state.users:
        console.print("  in use by " + ", ".join(f"{escape(str(u.get('what')))} (pid {u.get('pid')})" for u in state.users))
    if state.remounts:
        console.print(f"  remounted {state.remounts} times by the watchdog")
    if state.last_event:
        event = state.last_event
        detail = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("time", "event"))
        console.print(f"  last event: {event.get('event')} at {event.get('time')} {escape(detail)}")
    for name in state.conflicts:
        console.print(f"  [yellow]conflict:[/] {escape(name)}")
    if state.error:
        console.print(f"  [red]error:[/] {escape(state.error)}")

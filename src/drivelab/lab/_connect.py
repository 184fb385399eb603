"""The "Connect a drive" pages: sign in to a cloud drive with the browser already pointed at the lab.

``GET  <base_url>drivelab/connect``               the workspace's drive as it is, and the form
``POST <base_url>drivelab/connect``               begin the sign-in; 302 to the provider's consent page
``GET  <base_url>drivelab/connect/callback``      where the provider sends the browser back (``state``, ``code`` or ``error``)
``GET  <base_url>drivelab/connect/result/<id>``   what happened; refreshes itself while the work goes on
``POST <base_url>drivelab/connect/attach``        attach a remote connected without the check

The lab often runs on another machine, reached through an SSH tunnel: rclone's
own sign-in (a browser on the machine that runs rclone) cannot work there. The
browser that shows the lab can: the provider sends it back to the lab's own
callback address *as that browser reaches it* (scheme and ``Host`` of the
request), so the same tunnel carries the answer home.

Sign-ins in progress live in the server's memory only, keyed by their
``state``, and expire; a callback for an unknown one changes nothing. The
token exchange and rclone run in threads, off the event loop; the callback
answers at once with a redirect to a result page without the code in its
address, which refreshes until the work is done. Codes, tokens and client
secrets never appear in a page, in the server's log or in an address the
browser keeps (Jupyter's request log scrubs ``code`` and ``state``).
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from drivelab import drive
from drivelab.errors import DrivelabError, RemoteError, SignInError, WorkspaceError
from drivelab.workspace import Workspace, find_workspace

__all__ = ["ConnectState", "connect_handlers", "workspace_for"]

SIGN_IN_TTL = 15 * 60.0
"""Seconds a sign-in is remembered: longer than ``finish_sign_in`` accepts, so that a late answer gets its plain "too long ago"."""
RESULT_TTL = 60 * 60.0
"""Seconds a finished result page stays readable."""
MAX_PENDING = 16
CALLBACK_PATH = "drivelab/connect/callback"

# What people call the kinds of drive (drivelab's type names); the form offers those the sign-in supports.
KIND_NAMES = {"gdrive": "Google Drive", "dropbox": "Dropbox", "box": "Box", "onedrive": "OneDrive", "s3": "S3", "gcs": "Google Cloud Storage"}
LOOPBACK_ANY_PORT = ("gdrive",)
"""Kinds whose shared (installed-app) client takes any loopback address as the redirect; the others only the one rclone registered."""
# Option names whose values are never shown back in the form.
_SECRET_WORDS = ("secret", "token", "pass", "key", "credential")


def workspace_for(root: Path) -> Workspace:
    """The workspace holding the server's ``root_dir``, else ``$DRIVELAB_WORKSPACE`` (raises with its hint)."""
    try:
        return find_workspace(root)
    except WorkspaceError:
        return find_workspace()


def _kinds() -> dict[str, str]:
    """The kinds the sign-in supports, in the order the form lists them."""
    return {kind: KIND_NAMES.get(kind, kind) for kind in drive.OAUTH_TYPES}


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)


def is_loopback_host(host: str) -> bool:
    """Whether ``Host`` (``name:port``, ``[v6]:port``) is one of the loopback names Google takes as a redirect, with any port,
    for its installed-app clients: ``localhost``, ``127.0.0.1``, ``[::1]``."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name.startswith("[") and "]" in name:
        name = name[1 : name.index("]")]
    elif name.startswith("[") or name.count(":") > 1:
        name = name.strip("[]")
    name = name.lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address == ipaddress.ip_address("127.0.0.1") or address == ipaddress.ip_address("::1")


def parse_option_lines(text: str) -> dict[str, str]:
    """``key=value`` lines (blank lines and ``#`` comments skipped) -> a dict; a malformed line is a :class:`SignInError`."""
    options: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SignInError(f"line {number} of the rclone options is not key=value", hint="one option a line, e.g. chunk_size=64M")
        options[key.strip()] = value.strip()
    return options


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


@dataclass
class _Pending:
    """A sign-in waiting for the provider to send the browser back."""

    sign_in: Any = field(repr=False)
    """The :class:`drivelab.drive.SignIn` (it holds the PKCE verifier and the client secret); dropped once used."""
    root: str
    check: bool
    created: float = field(default_factory=time.monotonic)


@dataclass
class Outcome:
    """What a result page shows: one connect, or one attach, as it goes on and when it is done."""

    name: str
    kind: str
    step: str
    """What is happening now; empty once done."""
    action: str = "Connecting"
    done: bool = False
    ok: bool = False
    connected: bool = False
    attached: bool = False
    offer_attach: bool = False
    headline: str = ""
    message: str = ""
    hint: str = ""
    notices: list[str] = field(default_factory=list)
    finished: float | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class ConnectState:
    """The server's memory of sign-ins in progress (by ``state``) and of results (by a random id)."""

    def __init__(self) -> None:
        self.pending: dict[str, _Pending] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.work_lock = threading.Lock()
        """One connect or attach at a time: they change the same workspace."""

    def expire(self) -> None:
        now = time.monotonic()
        for state in [s for s, p in self.pending.items() if now - p.created > SIGN_IN_TTL]:
            del self.pending[state]
        for key in [k for k, o in self.outcomes.items() if o.finished is not None and now - o.finished > RESULT_TTL]:
            del self.outcomes[key]

    def add_pending(self, state: str, pending: _Pending) -> None:
        self.expire()
        while len(self.pending) >= MAX_PENDING:
            del self.pending[min(self.pending, key=lambda s: self.pending[s].created)]
        self.pending[state] = pending

    def take_pending(self, state: str) -> _Pending | None:
        """The sign-in of ``state``, forgotten here: an answer is used once."""
        self.expire()
        return self.pending.pop(state, None) if state else None

    def add_outcome(self, outcome: Outcome) -> str:
        self.expire()
        key = secrets.token_urlsafe(16)
        self.outcomes[key] = outcome
        return key


# --- the pages ---------------------------------------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 44em; margin: 2em auto; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.5em; margin-bottom: .3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
label { display: block; margin: .8em 0 .2em; font-weight: 600; }
label.check { font-weight: normal; } label.check input { margin-right: .4em; }
input[type=text], input[type=password], select, textarea { font: inherit; width: 100%; box-sizing: border-box; padding: .35em .5em; }
textarea { font-family: ui-monospace, monospace; font-size: 13px; min-height: 5em; }
button { font: inherit; font-weight: 600; padding: .5em 1.4em; margin-top: 1.2em; cursor: pointer; }
details { margin-top: 1.2em; border: 1px solid #d0d7de; border-radius: 6px; padding: .4em .9em; }
summary { cursor: pointer; font-weight: 600; }
.note { color: #57606a; font-size: 13px; margin: .2em 0; }
.box { border-radius: 6px; padding: .7em 1em; margin: 1em 0; }
.ok { background: #dafbe1; border: 1px solid #4ac26b; } .fail { background: #ffebe9; border: 1px solid #ff8182; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; } .info { background: #f6f8fa; border: 1px solid #d0d7de; }
code { font-family: ui-monospace, monospace; font-size: 13px; background: #f6f8fa; padding: 0 .25em; border-radius: 3px; }
table { border-collapse: collapse; } td, th { text-align: left; padding: .15em .9em .15em 0; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _sentence(text: str) -> str:
    """Messages are written to follow "error: " on a terminal; on a page they start a sentence."""
    return text[:1].upper() + text[1:]


def _page(title: str, body: str, *, refresh: float | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh:g}">' if refresh else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _drive_summary(ws: Workspace) -> str:
    """The workspace's drive in a sentence or two, and its remotes (no secrets); runs rclone: call it in a thread."""
    parts: list[str] = []
    try:
        state = drive.status(ws)
    except DrivelabError as exc:
        return f'<div class="box fail">The drive\'s state cannot be read: {_e(exc.message)}</div>'
    try:
        remotes = drive.list_remotes(ws)
    except DrivelabError as exc:
        remotes = []
        parts.append(f'<p class="note">The remotes cannot be listed: {_e(exc.message)}</p>')
    types = {r.name: r.type for r in remotes}
    if state.mode == "local":
        line = f"<code>drive/</code> is a local folder (<code>{_e(state.path)}</code>): no cloud drive is attached."
    else:
        kind = kind_name(types.get(state.remote or "", "")) if state.remote in types else "remote"
        where = f"<code>{_e(state.spec or state.remote)}</code> ({_e(kind)})"
        if state.phase in ("live", "down", "starting"):
            line = f"<code>drive/</code> is {where}, attached in {_e(state.mode)} mode ({_e(state.phase)})."
        else:
            line = f"<code>drive/</code> is set to {where}, not attached now ({_e(state.phase)})."
    parts.insert(0, f'<div class="box info">{line}</div>')
    if remotes:
        rows = "".join(
            f"<tr><td><code>{_e(r.name)}</code></td><td>{_e(kind_name(r.type))}</td><td>{_e(r.root or '/')}</td><td>{'the drive' if r.is_drive else ''}</td></tr>"
            for r in remotes
        )
        parts.append(f'<p class="note">This workspace\'s remotes:</p><table><tr><th>name</th><th>kind</th><th>folder</th><th></th></tr>{rows}</table>')
    return "\n".join(parts)


def _form(
    handler: JupyterHandler,
    *,
    kinds: dict[str, str],
    values: dict[str, str],
    check: bool,
    replace: bool,
    loopback: bool,
    callback: str,
) -> str:
    action = url_path_join(handler.base_url, "drivelab/connect")
    options = "".join(f'<option value="{_e(k)}"{" selected" if values.get("kind") == k else ""}>{_e(v)}</option>' for k, v in kinds.items())
    host_note = ""
    if not loopback:
        host_note = (
            '<div class="box warn">You reach the lab at <code>' + _e(handler.request.host) + "</code>, not at a loopback address. "
            'Google sends the browser back to the shared client and to "Desktop app" clients only at <code>127.0.0.1</code> or '
            "<code>localhost</code>: either reach the lab through an SSH tunnel (<code>ssh -L 8888:127.0.0.1:8888 HOST</code>, then "
            'open <code>http://127.0.0.1:8888/</code>), or use an OAuth client of your own (below, a "Web application" client) '
            f"with this redirect address registered: <code>{_e(callback)}</code></div>"
        )
    return f"""
<form method="post" action="{_e(action)}" autocomplete="off">
{handler.xsrf_form_html()}
<label for="kind">Kind</label>
<select id="kind" name="kind">{options}</select>
<label for="name">Remote name</label>
<input type="text" id="name" name="name" value="{_e(values.get("name", ""))}" placeholder="gdrive" pattern="[A-Za-z0-9_][A-Za-z0-9_.\\-]{{0,63}}">
<p class="note">How this workspace calls it (<code>drivelab drive list</code>); empty: the kind's short name.</p>
<label for="root">Folder on the drive</label>
<input type="text" id="root" name="root" value="{_e(values.get("root", ""))}" placeholder="the whole drive">
<p class="note">The folder that becomes <code>drive/</code>, e.g. <code>drivelab</code> (the check creates it if missing). Empty: the whole drive; without FUSE <code>drive/</code> is a synced copy of it, so a folder is
the better choice.</p>
<label class="check"><input type="checkbox" name="check" value="1"{" checked" if check else ""}>Check the drive by listing it, then attach it at <code>drive/</code></label>
<p class="note">Unchecked, the remote is saved without reaching it (<code>--no-check</code>); the result page then offers to attach it.</p>
{host_note}
<details{" open" if values.get("client_id") or values.get("options") else ""}>
<summary>Advanced: your own OAuth client, rclone options</summary>
<p class="note">Without a client of your own, Google Drive uses the OAuth client that rclone shares with all its users: Google
rate-limits it for everybody at once, and rclone is retiring it. A "Desktop app" client of your own (Google Cloud console, APIs &amp;
Services, Credentials) is faster and keeps working; Google takes any loopback address as its redirect, so there is nothing to register.
Dropbox and Box need an app of your own, with this redirect address registered: <code>{_e(callback)}</code></p>
<label for="client_id">Client id</label>
<input type="text" id="client_id" name="client_id" value="{_e(values.get("client_id", ""))}">
<label for="client_secret">Client secret</label>
<input type="password" id="client_secret" name="client_secret" value="" autocomplete="new-password">
<label for="options">rclone options, one <code>key=value</code> a line</label>
<textarea id="options" name="options" spellcheck="false" placeholder="chunk_size=64M">{_e(values.get("options", ""))}</textarea>
<p class="note">Any option of rclone's backend for this kind (<code>rclone help backend drive</code>), including
<code>auth_url</code> and <code>token_url</code> of another sign-in service.</p>
<label class="check"><input type="checkbox" name="replace" value="1"{" checked" if replace else ""}>Replace a remote of the same name (e.g. to sign in again)</label>
</details>
<button type="submit" id="connect">Connect</button>
</form>
"""


def _outcome_body(handler: JupyterHandler, outcome: Outcome) -> str:
    lab = url_path_join(handler.base_url, "lab")
    back = f'<p><a href="{_e(lab)}">Back to the lab</a> &middot; <a href="{_e(url_path_join(handler.base_url, "drivelab/connect"))}">Connect a drive</a></p>'
    if not outcome.done:
        return f'<h1>{_e(outcome.action)} {_e(outcome.name)}</h1>\n<div class="box info" id="progress">{_e(outcome.step)}&hellip;</div>\n<p class="note">This page refreshes by itself.</p>'
    css = "ok" if outcome.ok else ("warn" if outcome.connected else "fail")
    parts = [f"<h1>{_e(outcome.headline)}</h1>", f'<div class="box {css}" id="result">']
    if outcome.message:
        parts.append(f"<p>{_e(_sentence(outcome.message))}</p>")
    if outcome.hint:
        parts.append(f'<p class="note">What to do: {_e(outcome.hint)}</p>')
    parts.append("</div>")
    if outcome.notices:
        parts.append("<ul>" + "".join(f"<li>{_e(_sentence(n))}</li>" for n in outcome.notices) + "</ul>")
    if outcome.offer_attach:
        action = url_path_join(handler.base_url, "drivelab/connect/attach")
        label = f"Attach {outcome.name} at drive/" if outcome.ok else f"Try attaching {outcome.name} again"
        parts.append(
            f'<form method="post" action="{_e(action)}">{handler.xsrf_form_html()}<input type="hidden" name="name" value="{_e(outcome.name)}">'
            "<p>Attaching copies the local drive's files to it first (the local copies are kept in <code>.drivelab/local-drive/</code>); "
            f'the lab then keeps it attached while it runs.</p><button type="submit" id="attach">{_e(label)}</button></form>'
        )
    parts.append(back)
    return "\n".join(parts)


# --- the work, in threads ----------------------------------------------------------------------------------------------------


def _why(exc: BaseException) -> str:
    """For the server's log: a drivelab error's message (written to hold no secret), else only the type of the error."""
    return exc.message if isinstance(exc, DrivelabError) else type(exc).__name__


def _failure(outcome: Outcome, exc: BaseException) -> None:
    if isinstance(exc, DrivelabError):
        outcome.message, outcome.hint = exc.message, exc.hint or ""
    else:
        # Not ours: its text may carry anything (an address with a code); the log names the type only.
        outcome.message = f"an unexpected error ({type(exc).__name__})"
        outcome.hint = "see the lab's log, and try again"


def _attach(ws: Workspace, outcome: Outcome) -> None:
    """Make ``outcome.name`` the workspace's drive and attach it; the lab holds it as its user ``lab``."""
    what = f"{outcome.name} ({kind_name(outcome.kind)})"
    state = drive.status(ws)
    if drive.is_attached(ws) and state.remote != outcome.name:
        outcome.headline = f"Connected {what}, not attached" if outcome.connected else f"Did not attach {what}"
        outcome.message = (
            f"drive/ is {state.spec or state.remote}, attached and used by the lab: switching drives under running notebooks could lose what they write."
        )
        outcome.hint = (
            f"stop the lab (Ctrl+C, which flushes and detaches the drive), run `drivelab drive mount {outcome.name} --copy-local`, then `drivelab lab`"
        )
        return
    outcome.step = f"Attaching {outcome.name} at drive/ (the local drive's files are copied to it first)"
    # The local drive's files are copied to the remote and kept in .drivelab/local-drive/ (`drive mount --copy-local`):
    # nothing the user had in drive/ disappears, and it is all there on the new drive.
    state = drive.attach(ws, outcome.name, local_files="copy", user="lab", on_notice=outcome.notices.append)
    outcome.attached = True
    outcome.ok = True
    mode = "" if state.mode == "mount" else f" ({state.mode} mode)"
    outcome.headline = f"Connected {what} and attached it at drive/{mode}" if outcome.connected else f"Attached {what} at drive/{mode}"
    outcome.message = "Its files are in drive/ now; the lab keeps it attached while it runs, and flushes and detaches it when it stops."


def _connect_work(ws: Workspace, state: ConnectState, pending: _Pending, answer: str, outcome: Outcome, log: Any) -> None:
    with state.work_lock:
        label, shared = pending.sign_in.label, pending.sign_in.shared_client
        try:
            outcome.step = f"Signing in to {label}" + (" and listing the drive" if pending.check else "")
            info = drive.finish_sign_in(ws, pending.sign_in, answer, root=pending.root, check=pending.check)
            outcome.name, outcome.kind, outcome.connected = info.name, info.type, True
            log.info("drivelab: connected remote %s (%s)", info.name, info.type)
            if shared:
                outcome.notices.append(
                    f"{label} is reached through the OAuth client that rclone shares with all its users: rate-limited for everybody, and being "
                    "retired. To use a client of your own, connect again with its id and secret under Advanced, and Replace checked."
                )
        except Exception as exc:  # noqa: BLE001 - the result page must say what happened, whatever failed
            outcome.headline = f"Could not connect {outcome.name}"
            _failure(outcome, exc)
            log.warning("drivelab: connecting %s failed: %s", outcome.name, _why(exc))
            return
        finally:
            pending.sign_in = None  # its verifier and client secret are not needed any more
        if not pending.check:
            outcome.ok = True
            outcome.offer_attach = True
            outcome.headline = f"Connected {outcome.name} ({kind_name(outcome.kind)})"
            outcome.message = "The remote is saved in this workspace without having been reached (the listing check was off); it is not attached."
            return
        try:
            _attach(ws, outcome)
        except Exception as exc:  # noqa: BLE001 - the result page must say what happened, whatever failed
            outcome.ok = False
            outcome.headline = f"Connected {outcome.name} ({kind_name(outcome.kind)}), but could not attach it at drive/"
            _failure(outcome, exc)
            outcome.offer_attach = True
            log.warning("drivelab: attaching %s failed: %s", outcome.name, _why(exc))


def _attach_work(ws: Workspace, state: ConnectState, outcome: Outcome, log: Any) -> None:
    with state.work_lock:
        try:
            _attach(ws, outcome)
        except Exception as exc:  # noqa: BLE001 - the result page must say what happened, whatever failed
            outcome.headline = f"Could not attach {outcome.name} at drive/"
            _failure(outcome, exc)
            outcome.offer_attach = isinstance(exc, DrivelabError)
            log.warning("drivelab: attaching %s failed: %s", outcome.name, _why(exc))
        else:
            if outcome.attached:
                log.info("drivelab: attached remote %s", outcome.name)


async def _run(outcome: Outcome, work: Any, *args: Any) -> None:
    try:
        await asyncio.to_thread(work, *args)
    except Exception as exc:  # noqa: BLE001 - the result page must say what happened, whatever failed
        outcome.headline = outcome.headline or f"Could not connect {outcome.name}"
        _failure(outcome, exc)
    finally:
        outcome.step = ""
        outcome.done = True
        outcome.finished = time.monotonic()


# --- the handlers ------------------------------------------------------------------------------------------------------------


class _PageHandler(JupyterHandler):
    auth_resource = "drivelab"

    def initialize(self, root: Path, state: ConnectState) -> None:
        self.root = root
        self.connect_state = state

    def _html(self, text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        # Not "no-referrer": a form posted from such a page says "Origin: null", which Jupyter's origin check refuses.
        self.set_header("Referrer-Policy", "same-origin")
        self.finish(text)

    def _message(self, title: str, message: str, hint: str, status: int) -> None:
        form = url_path_join(self.base_url, "drivelab/connect")
        body = (
            f'<h1>{_e(title)}</h1>\n<div class="box fail" id="result"><p>{_e(_sentence(message))}</p>'
            f'<p class="note">What to do: {_e(hint)}</p></div>\n'
            f'<p><a href="{_e(url_path_join(self.base_url, "lab"))}">Back to the lab</a> &middot; <a href="{_e(form)}">Connect a drive</a></p>'
        )
        self._html(_page(title, body), status)

    def _callback_url(self) -> str:
        """The callback as the user's browser reaches this server (through a tunnel, a proxy with X-Forwarded-*, or directly)."""
        return f"{self.request.protocol}://{self.request.host}{url_path_join(self.base_url, CALLBACK_PATH)}"

    def _start(self, outcome: Outcome, work: Any, *args: Any) -> None:
        key = self.connect_state.add_outcome(outcome)
        outcome.task = asyncio.get_running_loop().create_task(_run(outcome, work, *args))
        self.redirect(url_path_join(self.base_url, "drivelab/connect/result", key), status=303)


class ConnectPageHandler(_PageHandler):
    """The form (GET) and the start of a sign-in (POST)."""

    async def _render(self, values: dict[str, str], *, check: bool = True, replace: bool = False, error: DrivelabError | None = None) -> None:
        try:
            ws = workspace_for(self.root)
        except WorkspaceError as exc:
            self._message("No workspace", exc.message, exc.hint or "start the lab in a drivelab workspace", 404)
            return
        summary = await asyncio.to_thread(_drive_summary, ws)
        kinds = _kinds()
        values = {"kind": next(iter(kinds)), **values}
        form = _form(
            self, kinds=kinds, values=values, check=check, replace=replace,
            loopback=is_loopback_host(self.request.host), callback=self._callback_url(),
        )  # fmt: skip
        problem = ""
        if error is not None:
            problem = f'<div class="box fail" id="problem"><p><strong>{_e(_sentence(error.message))}</strong></p><p class="note">What to do: {_e(error.hint or "")}</p></div>'
        body = (
            "<h1>Connect a drive</h1>\n"
            "<p>Sign in to a cloud drive with this browser and make it the workspace's <code>drive/</code>: your notebooks, "
            "datasets and runs then live there, as on Colab.</p>\n"
            f"<h2>The drive now</h2>\n{summary}\n<h2>Connect</h2>\n{problem}{form}"
            f'<p><a href="{_e(url_path_join(self.base_url, "lab"))}">Back to the lab</a></p>'
        )
        self._html(_page("Connect a drive", body), 400 if error is not None else 200)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._render({})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        kinds = _kinds()
        kind = self.get_body_argument("kind", "") or next(iter(kinds))
        name = self.get_body_argument("name", "").strip() or kind
        root = self.get_body_argument("root", "").strip().strip("/")
        client_id = self.get_body_argument("client_id", "").strip()
        client_secret = self.get_body_argument("client_secret", "").strip()
        options_text = self.get_body_argument("options", "")
        check = self.get_body_argument("check", None) is not None
        replace = self.get_body_argument("replace", None) is not None
        # Shown back on an error: never the client secret, nor an option that looks like one.
        shown_options = "\n".join(line for line in options_text.splitlines() if not _is_secret(line.partition("=")[0]))
        values = {"kind": kind, "name": name, "root": root, "client_id": client_id, "options": shown_options}
        try:
            if kind not in kinds:
                raise SignInError(f"{kind!r} is not a kind this page can sign in to", hint=f"pick one of: {', '.join(kinds.values())}")
            options = parse_option_lines(options_text)
            if kind not in LOOPBACK_ANY_PORT and not (client_id or options.get("client_id")):
                # rclone's shared app is registered for its own redirect address only: the provider would show an error page.
                raise SignInError(
                    f"{kind_name(kind)} sends the browser back only to the addresses registered for the app, and rclone's shared app "
                    "is registered for rclone's own sign-in only",
                    hint=f"create an app of your own with the redirect address {self._callback_url()} and give its client id and secret under Advanced",
                )
            ws = workspace_for(self.root)
            sign_in = await asyncio.to_thread(
                drive.begin_sign_in, ws, name, kind, redirect_uri=self._callback_url(),
                client_id=client_id or None, client_secret=client_secret or None, options=options or None, replace=replace,
            )  # fmt: skip
        except DrivelabError as exc:
            await self._render(values, check=check, replace=replace, error=exc)
            return
        self.connect_state.add_pending(sign_in.state, _Pending(sign_in, root, check))
        self.log.info("drivelab: signing in to %s for remote %s", sign_in.label, name)
        self.redirect(sign_in.url)


class CallbackHandler(_PageHandler):
    """Where the provider sends the browser back: finish the sign-in in a thread, show the result page."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        pending = self.connect_state.take_pending(self.get_query_argument("state", ""))
        if pending is None:
            self._message(
                "This sign-in is not in progress",
                "The lab has no sign-in waiting for this answer: it was used already, it expired "
                f"(after {SIGN_IN_TTL / 60:.0f} minutes), or the lab was restarted since it began. Nothing was changed.",
                "start again from the Connect a drive page",
                400,
            )
            return
        try:
            ws = workspace_for(self.root)
        except WorkspaceError as exc:
            self._message("No workspace", exc.message, exc.hint or "start the lab in a drivelab workspace", 404)
            return
        answer = f"{self.request.protocol}://{self.request.host}{self.request.uri}"
        outcome = Outcome(name=pending.sign_in.name, kind=pending.sign_in.type, step=f"Signing in to {pending.sign_in.label}")
        self._start(outcome, _connect_work, ws, self.connect_state, pending, answer, outcome, self.log)


class AttachHandler(_PageHandler):
    """Attach a connected remote at ``drive/`` (offered after a connect without the check, or a failed attach)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        name = self.get_body_argument("name", "").strip()
        try:
            ws = workspace_for(self.root)
            known = {r.name: r.type for r in await asyncio.to_thread(drive.list_remotes, ws)}
            if name not in known:
                raise RemoteError(f"no remote named {name!r} in this workspace", hint="connect it first")
        except DrivelabError as exc:
            self._message("Cannot attach", exc.message, exc.hint or "", 400)
            return
        outcome = Outcome(name=name, kind=known[name], step=f"Attaching {name} at drive/", action="Attaching")
        self._start(outcome, _attach_work, ws, self.connect_state, outcome, self.log)


class ResultHandler(_PageHandler):
    """What a connect or attach did; refreshes itself while it goes on."""

    @web.authenticated
    @authorized
    async def get(self, key: str) -> None:
        self.connect_state.expire()
        outcome = self.connect_state.outcomes.get(key)
        if outcome is None:
            self._message(
                "No such result",
                "This result is unknown or expired (results are kept for an hour, until the lab restarts).",
                "see the drive's state on the Connect a drive page",
                404,
            )
            return
        title = outcome.headline if outcome.done else f"{outcome.action} {outcome.name}"
        self._html(_page(title, _outcome_body(self, outcome), refresh=None if outcome.done else 1))


def connect_handlers(base_url: str, root: Path) -> list[tuple[str, type[JupyterHandler], dict[str, Any]]]:
    """The pages' routes under ``base_url``, sharing one memory of sign-ins in progress."""
    state = ConnectState()
    args = {"root": root, "state": state}
    return [
        (url_path_join(base_url, "drivelab/connect"), ConnectPageHandler, args),
        (url_path_join(base_url, CALLBACK_PATH), CallbackHandler, args),
        (url_path_join(base_url, "drivelab/connect/attach"), AttachHandler, args),
        (url_path_join(base_url, r"drivelab/connect/result/([A-Za-z0-9_\-]+)"), ResultHandler, args),
    ]

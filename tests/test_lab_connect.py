"""The lab's "Connect a drive" page: sign in to Google Drive through the browser pointed at the lab.

A real lab (``start_lab``) and a fake OAuth provider on loopback
(``oauth_provider.py``); headless Chromium fills the lab's form, clicks
Connect, clicks Allow (or Deny) on the provider's consent page and comes back
to the lab's callback. The provider checks the client, PKCE and the redirect
address; the lab exchanges the code for real over HTTP.

Google's own API cannot be reached from here: the form's listing check is
off, so the remote is saved without being reached, and attaching it (which
copies the local drive's files to it first) is attempted and must fail with
a clear message, leaving the local drive as it was. With the check on, the
listing fails and nothing is kept. The attach step that follows a sign-in is
exercised for real on a remote that can be reached (rclone's local backend).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from _waiting import wait_until
from oauth_provider import FakeOAuthProvider

from drivelab import drive
from drivelab.errors import SignInError
from drivelab.lab import LabServer, start_lab
from drivelab.lab._connect import is_loopback_host, parse_option_lines
from drivelab.workspace import Workspace, init_workspace

if TYPE_CHECKING:
    from _chromium import DevTools

pytest_plugins = ["_chromium"]  # the `chromium` fixture

CLIENT_ID = "lab-test-client"
CLIENT_SECRET = "lab-test-client-secret-9d41"
SEED = Path(__file__).resolve().parents[1] / "src" / "drivelab" / "_seed" / "colab" / "getting-started.ipynb"


@dataclass
class Lab:
    server: LabServer
    ws: Workspace

    @property
    def url(self) -> str:
        return self.server.url

    def log(self) -> str:
        return self.server.log.read_text(errors="replace")

    def conf(self) -> bytes:
        path = self.ws.state / "rclone.conf"
        return path.read_bytes() if path.exists() else b""

    def remotes(self) -> dict[str, str]:
        return {r.name: r.type for r in drive.list_remotes(self.ws)}


def start(ws: Workspace, home: Path) -> Lab:
    """A real lab on ``ws``, with Jupyter folders of its own under ``home`` and none of the caller's drivelab settings."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith(("DRIVELAB_", "JUPYTER"))]:
            mp.delenv(name)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):  # fmt: skip
            mp.setenv(var, str(home / sub))
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        return Lab(start_lab(ws.root, port=0, open_browser=False), ws)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One real lab for the module's sign-ins; each test uses remote names of its own."""
    base = tmp_path_factory.mktemp("connect")
    running = start(init_workspace(base / "ws").workspace, base / "jupyter")
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def provider() -> Iterator[FakeOAuthProvider]:
    with FakeOAuthProvider(CLIENT_ID, CLIENT_SECRET) as running:
        yield running


# --- the browser ---------------------------------------------------------------------------------------------------------------


def wait_for(chromium: DevTools, what: str, expression: str, within: float = 30) -> Any:
    """The first truthy value of ``expression`` on the page; a page being replaced (navigation) is waited out."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = chromium.evaluate(expression)
        except RuntimeError:  # "Execution context was destroyed": a new page is loading
            last = None
        if last:
            return last
        time.sleep(0.1)
    where = chromium.evaluate("location.href + '\\n' + (document.body ? document.body.innerText : '')")
    pytest.fail(f"{what}: not within {within:.0f} s; the page: {where}")


def click(chromium: DevTools, selector: str) -> None:
    """A real mouse click (press and release) in the middle of the element."""
    box = wait_for(
        chromium, f"{selector} on the page",
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null; e.scrollIntoView({{block: 'center'}});"
        " const r = e.getBoundingClientRect(); return r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; })()",
    )  # fmt: skip
    for kind in ("mousePressed", "mouseReleased"):
        chromium.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


def fill_form(chromium: DevTools, provider: FakeOAuthProvider, name: str) -> None:
    """The form as a user fills it: their own client, the provider's addresses as rclone options, the check off."""
    fields = {
        "name": name,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "options": f"auth_url={provider.auth_url}\ntoken_url={provider.token_url}\n",
    }
    script = (
        "(() => { document.querySelector('details').open = true; const f = " + json.dumps(fields) + ";"
        " for (const [id, value] of Object.entries(f)) document.getElementById(id).value = value;"
        " document.querySelector('input[name=check]').checked = false; document.getElementById('kind').value = 'gdrive'; return true; })()"
    )
    assert chromium.evaluate(script)


def page_html(chromium: DevTools) -> str:
    return str(chromium.evaluate("document.documentElement.outerHTML"))


def screenshot(chromium: DevTools, path: Path) -> Path:
    chromium.settle()
    path.write_bytes(base64.b64decode(chromium.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]))
    print(f"screenshot: {path}")
    return path


def open_connect_page(chromium: DevTools, lab: Lab) -> None:
    chromium.call("Page.enable")
    chromium.call("Page.navigate", url=f"{lab.url}drivelab/connect?token={lab.server.token}")
    wait_for(chromium, "the Connect a drive page", "document.readyState === 'complete' && !!document.getElementById('connect')")


def sign_in(chromium: DevTools, lab: Lab, provider: FakeOAuthProvider, name: str, decision: str, form_shot: Path | None = None) -> list[str]:
    """From the lab's form to the provider's consent page and back; the HTML of each page seen (to look for secrets)."""
    open_connect_page(chromium, lab)
    seen = [page_html(chromium)]
    fill_form(chromium, provider, name)
    if form_shot is not None:
        screenshot(chromium, form_shot)
    click(chromium, "#connect")
    wait_for(chromium, "the provider's consent page", f"location.href.startsWith({json.dumps(provider.auth_url)}) && !!document.getElementById('allow')")
    click(chromium, f"#{decision}")
    wait_for(chromium, "the lab's result page", "location.pathname.startsWith('/drivelab/connect/result/') && !!document.getElementById('result')", within=60)
    seen.append(page_html(chromium))
    return seen


def assert_no_secrets(texts: list[str], provider: FakeOAuthProvider) -> None:
    secrets = [CLIENT_SECRET, *provider.codes, *provider.access_tokens, *provider.refresh_tokens]
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:6]}...) is shown"


# --- the flows -----------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_connect_google_drive_in_the_browser_then_attach_reports_why_it_cannot(lab, provider, chromium, tmp_path):
    assert lab.remotes() == {} or "gdrive" not in lab.remotes()
    seen = sign_in(chromium, lab, provider, "gdrive", "allow", form_shot=tmp_path / "form.png")
    text = chromium.evaluate("document.body.innerText")
    address = chromium.evaluate("location.href")
    artifact = screenshot(chromium, tmp_path / "connected.png")

    assert "Connected gdrive (Google Drive)" in text, text
    assert "not attached" in text, text
    assert chromium.evaluate("!!document.getElementById('attach')"), "the page offers to attach the drive"
    # The code went to the lab's callback once, and left the address bar with it.
    assert "code=" not in address and "state=" not in address, address
    # The lab exchanged the code itself, for the address the browser came back to, with the user's client and PKCE.
    grants = provider.grants("authorization_code")
    assert len(grants) == 1 and grants[0].status == 200, grants
    assert grants[0].client_id == CLIENT_ID
    assert grants[0].form["redirect_uri"] == f"{lab.url}drivelab/connect/callback"
    assert lab.remotes().get("gdrive") == "gdrive"
    (access_token,) = provider.access_tokens
    assert access_token.encode() in lab.conf(), "the token the provider issued is the remote's"
    assert drive.status(lab.ws).mode == "local", "not attached: the listing check was off"
    assert artifact.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and artifact.stat().st_size > 10_000

    # Attach: the local drive's files are copied to the remote first, which cannot be reached from here.
    result_page = address
    click(chromium, "#attach")
    wait_for(chromium, "the attach result", f"location.href !== {json.dumps(result_page)} && !!document.getElementById('result')", within=90)
    text = chromium.evaluate("document.body.innerText")
    seen.append(page_html(chromium))
    screenshot(chromium, tmp_path / "attach-failed.png")
    assert "Could not attach gdrive at drive/" in text, text
    assert "Try attaching gdrive again" in text, text
    assert "What to do:" in text, text
    assert drive.status(lab.ws).mode == "local"
    assert (lab.ws.drive / "colab" / "getting-started.ipynb").is_file(), "the local drive's files stay where they were"

    assert_no_secrets([*seen, lab.log()], provider)


@pytest.mark.slow
def test_deny_on_the_consent_page_says_so_and_keeps_nothing(lab, provider, chromium, tmp_path):
    before = lab.conf()
    seen = sign_in(chromium, lab, provider, "refused-drive", "deny")
    text = chromium.evaluate("document.body.innerText")
    screenshot(chromium, tmp_path / "denied.png")
    assert "Could not connect refused-drive" in text, text
    assert "not allowed on the consent page" in text, text
    assert provider.token_requests == [], "no code, nothing to exchange"
    assert "refused-drive" not in lab.remotes()
    assert lab.conf() == before
    assert_no_secrets([*seen, lab.log()], provider)


# --- the endpoints over HTTP -----------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http(url: str, *, token: str | None = None, form: dict[str, str] | None = None, host: str | None = None) -> tuple[int, dict[str, str], str]:
    """``(status, headers, body)``, redirects not followed, never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    headers = {"Authorization": f"token {token}"} if token else {}
    if host:
        headers["Host"] = host
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if form is not None else "GET")
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def test_connect_pages_refuse_requests_without_the_token(lab):
    status, _, body = http(lab.url + "drivelab/connect", token=lab.server.token)
    assert status == 200 and "Connect a drive" in body
    requests: list[tuple[str, dict[str, str] | None]] = [
        ("drivelab/connect", None),
        ("drivelab/connect", {"kind": "gdrive", "name": "sneaky"}),
        ("drivelab/connect/callback?state=abc&code=def", None),
        ("drivelab/connect/result/abc", None),
        ("drivelab/connect/attach", {"name": "gdrive"}),
    ]
    for path, form in requests:
        for token in (None, "not-the-token"):
            status, headers, _ = http(lab.url + path, token=token, form=form)
            to_login = status == 302 and "/login" in headers.get("Location", "")
            assert status == 403 or to_login, (path, token, status, headers.get("Location"))
    assert "sneaky" not in lab.remotes()


def test_a_refused_form_is_shown_again_with_why_and_without_its_secret(lab):
    form = {"kind": "gdrive", "name": "-bad name", "check": "1", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "options": "chunk_size=64M"}
    status, _, body = http(lab.url + "drivelab/connect", token=lab.server.token, form=form)
    assert status == 400
    assert "is not a valid remote name" in body.lower() and 'id="problem"' in body, body
    assert CLIENT_ID in body and "chunk_size=64M" in body, "what was typed is kept"
    assert CLIENT_SECRET not in body
    # Dropbox and Box come back only to the addresses registered for the app: rclone's shared one cannot serve this page.
    status, _, body = http(lab.url + "drivelab/connect", token=lab.server.token, form={"kind": "dropbox", "name": "dbx"})
    assert status == 400 and "an app of your own with the redirect address" in body, body
    status, _, body = http(lab.url + "drivelab/connect", token=lab.server.token, form={"kind": "gdrive", "name": "x", "options": "no equals sign"})
    assert status == 400 and "line 1 of the rclone options is not key=value" in body.lower(), body
    assert not {"-bad name", "dbx", "x"} & set(lab.remotes())


def test_a_callback_for_an_unknown_sign_in_shows_a_clear_error_and_keeps_nothing(lab, provider):
    before, remotes = lab.conf(), lab.remotes()
    status, _, body = http(lab.url + "drivelab/connect/callback?state=no-such-state&code=some-code", token=lab.server.token)
    assert status == 400
    assert "This sign-in is not in progress" in body and "Nothing was changed" in body, body
    assert lab.conf() == before and lab.remotes() == remotes
    assert provider.token_requests == []


def test_with_the_check_on_a_drive_that_cannot_be_listed_is_not_kept(lab, provider):
    """Over plain HTTP, as the browser would, reached as ``localhost``: the redirect address follows the Host the browser used."""
    port = lab.server.port
    host = f"localhost:{port}"
    form = {
        "kind": "gdrive", "name": "checked", "check": "1", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "options": f"auth_url={provider.auth_url}\ntoken_url={provider.token_url}",
    }  # fmt: skip
    status, headers, _ = http(lab.url + "drivelab/connect", token=lab.server.token, form=form, host=host)
    assert status == 302, status
    consent = headers["Location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(consent).query))
    assert consent.startswith(provider.auth_url)
    assert query["redirect_uri"] == f"http://localhost:{port}/drivelab/connect/callback"
    assert CLIENT_SECRET not in consent

    back = provider.consent(consent)
    parts = urllib.parse.urlsplit(back)
    status, headers, _ = http(f"{lab.url.rstrip('/')}{parts.path}?{parts.query}", token=lab.server.token, host=host)
    assert status == 303, status
    result = headers["Location"]
    assert "code=" not in result and "state=" not in result

    def finished() -> str | None:
        status, _, body = http(f"http://127.0.0.1:{port}{result}", token=lab.server.token, host=host)
        assert status == 200
        return body if 'id="result"' in body else None

    body = wait_until("the result page says what happened", finished, within=90, every=0.2)
    assert "Could not connect checked" in body, body
    grants = provider.grants("authorization_code")
    assert len(grants) == 1 and grants[0].status == 200, "the sign-in itself worked; the listing did not"
    assert "checked" not in lab.remotes()
    assert_no_secrets([body, lab.log()], provider)

    # The answer is used once: the same callback again is an unknown sign-in.
    status, _, body = http(f"{lab.url.rstrip('/')}{parts.path}?{parts.query}", token=lab.server.token, host=host)
    assert status == 400 and "not in progress" in body


def result_of(lab: Lab, response: tuple[int, dict[str, str], str]) -> str:
    """The result page a 303 leads to, once it says what happened."""
    status, headers, body = response
    assert status == 303, (status, body)

    def finished() -> str | None:
        status, _, body = http(lab.url.rstrip("/") + headers["Location"], token=lab.server.token)
        assert status == 200
        return body if 'id="result"' in body else None

    return wait_until("the result page says what happened", finished, within=90, every=0.2)


@pytest.mark.slow
def test_attaching_from_the_lab_copies_the_local_drive_to_the_remote_and_the_lab_holds_it(tmp_path):
    """What follows a sign-in, on a remote that can be reached from here (rclone's local backend): the attach step itself."""
    ws = init_workspace(tmp_path / "ws").workspace
    (ws.drive / "colab" / "notes.txt").write_text("mine\n")
    drive.connect(ws, "box", "local", root=str(tmp_path / "box"))
    drive.connect(ws, "other", "local", root=str(tmp_path / "other"))
    lab = start(ws, tmp_path / "jupyter")
    try:
        body = result_of(lab, http(lab.url + "drivelab/connect/attach", token=lab.server.token, form={"name": "box"}))
        assert "Attached box (local) at drive/" in body, body
        state = drive.status(ws)
        assert state.remote == "box" and state.live, state
        # The lab's server holds the drive, so that stopping the lab flushes and detaches it.
        assert [u["pid"] for u in state.users if u["what"] == "lab"] == [lab.server.pid], state.users
        # The local drive's files were copied to the remote, and kept aside locally.
        assert (tmp_path / "box" / "colab" / "notes.txt").read_text() == "mine\n"
        assert (ws.drive / "colab" / "notes.txt").read_text() == "mine\n"
        assert list((ws.state / "local-drive").glob("*/colab/notes.txt")), "local copies kept"
        assert "Copied 3 local files to box:" in body and "local-drive" in body, body

        # Another remote is not switched in under the running lab.
        body = result_of(lab, http(lab.url + "drivelab/connect/attach", token=lab.server.token, form={"name": "other"}))
        assert "Did not attach other (local)" in body and "used by the lab" in body, body
        assert drive.status(ws).remote == "box"
    finally:
        stopped = lab.server.stop()
    assert stopped.flush.detached and not drive.is_attached(ws)


# --- the pieces ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:8888", True), ("localhost:8888", True), ("localhost", True), ("[::1]:8888", True), ("127.0.0.1", True),
        ("lab.example.org:8888", False), ("10.0.0.5:8888", False), ("[2001:db8::1]:8888", False), ("localhost.example.org", False), ("127.0.0.2:8888", False),
    ],
)  # fmt: skip
def test_which_hosts_count_as_loopback_for_the_redirect(host, loopback):
    assert is_loopback_host(host) is loopback


def test_rclone_options_are_read_one_a_line():
    assert parse_option_lines("auth_url=http://x/a?b=c\n\n# a comment\n token_url = http://x/t \n") == {"auth_url": "http://x/a?b=c", "token_url": "http://x/t"}
    with pytest.raises(SignInError, match="line 2"):
        parse_option_lines("a=1\nnot an option")


def test_the_getting_started_notebook_links_to_the_connect_page():
    nb = nbformat.read(SEED, as_version=4)
    nbformat.validate(nb)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "](/drivelab/connect)" in markdown

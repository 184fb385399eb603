"""Signing in to an OAuth drive from a terminal with no browser, against a fake provider on loopback.

The CLI runs under a real pseudo-terminal and the user's part (opening the
link, choosing Allow, copying the address back) is played by
:meth:`FakeOAuthProvider.consent`. Google itself is out of reach: the endpoints
are pointed at the fake provider with rclone's ``auth_url``/``token_url``
options, and rclone's calls to the Drive API go to a dead proxy on loopback, so
nothing leaves this machine. Every rclone call goes through a wrapper that
records its argv, so that no secret is ever found on a command line.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from drivelab import drive
from drivelab.drive import _oauth, find_rclone
from drivelab.errors import RemoteError, SignInError
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oauth_provider import FakeOAuthProvider  # noqa: E402
from rclone_servers import free_port  # noqa: E402

DRIVELAB = [sys.executable, "-m", "drivelab"]
# rclone's shared Google Drive client, as rclone's source has it (backend/drive/drive.go): the one a
# token must be issued to when rclone.conf names no client_id, since rclone refreshes with it.
RCLONE_DRIVE_CLIENT_ID = "202264815644.apps.googleusercontent.com"
RCLONE_DRIVE_OBSCURED_SECRET = "eX8GpZTVx3vxMWVkuuBdDWmAUE6rGhTwVrvG9GhllYccSdj2-mvHVg"
PROMPT = "Address or code (not shown): "
# Run in the child's new session: make the pty on stdin its controlling terminal (/dev/tty, which
# getpass reads), then become the command given after it.
BECOME_TERMINAL_SESSION = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws").workspace


@dataclass
class ArgvLog:
    """Every rclone command line run while the fixture is active (drivelab's and its children's)."""

    path: Path

    def calls(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [record.split("\0") for record in self.path.read_text().split("\0\n") if record]

    def text(self) -> str:
        return self.path.read_text() if self.path.exists() else ""


@pytest.fixture
def rclone_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArgvLog:
    """Run rclone through a wrapper that appends its argv to a log ($DRIVELAB_RCLONE, inherited by the CLI)."""
    real = find_rclone().path
    log = ArgvLog(tmp_path / "rclone-argv.log")
    wrapper = tmp_path / "bin" / "rclone"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nprintf \'%s\\0\' "$@" >> "{log.path}"\nprintf \'\\n\' >> "{log.path}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("DRIVELAB_RCLONE", str(wrapper))
    assert find_rclone().path == wrapper
    return log


@pytest.fixture(scope="module")
def rclone_drive_secret() -> str:
    """rclone's shared Google Drive client secret, revealed as drivelab must reveal it."""
    done = subprocess.run([str(find_rclone().path), "reveal", RCLONE_DRIVE_OBSCURED_SECRET], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def google(rclone_drive_secret: str) -> Iterator[FakeOAuthProvider]:
    """A fake provider that knows only rclone's shared Google Drive client."""
    with FakeOAuthProvider(RCLONE_DRIVE_CLIENT_ID, rclone_drive_secret) as provider:
        yield provider


@pytest.fixture
def own() -> Iterator[FakeOAuthProvider]:
    """A fake provider that knows one client of the user's own."""
    with FakeOAuthProvider("own-client.apps.example", "own-client-secret-123") as provider:
        yield provider


def endpoints(provider: FakeOAuthProvider) -> dict[str, str]:
    return {"auth_url": provider.auth_url, "token_url": provider.token_url}


def dead_proxy_env() -> dict[str, str]:
    """Send calls to the Drive API to a closed loopback port: they fail at once, and nothing leaves this machine.

    The fake provider, on loopback, is reached directly (Go bypasses proxies for loopback anyway; Python needs NO_PROXY).
    """
    proxy = f"http://127.0.0.1:{free_port()}"
    direct = "127.0.0.1,localhost"
    return {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "NO_PROXY": direct, "https_proxy": proxy, "http_proxy": proxy, "no_proxy": direct}


def sections(ws: Workspace) -> dict[str, dict[str, str]]:
    conf = ws.state / "rclone.conf"
    if not conf.exists():
        return {}
    done = subprocess.run([str(find_rclone().path), "--config", str(conf), "config", "dump"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def secrets_of(provider: FakeOAuthProvider, *more: str) -> list[str]:
    """Every secret the sign-ins against ``provider`` involved: codes, verifiers, tokens, client secrets."""
    found = [*provider.codes, *provider.access_tokens, *provider.refresh_tokens, *more]
    found += [r.form["code_verifier"] for r in provider.token_requests if r.form.get("code_verifier")]
    if provider.client_secret:
        found.append(provider.client_secret)
    return [s for s in found if s]


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:6]}...) appears in {where}"


# --- the CLI under a pseudo-terminal -------------------------------------------------------


@dataclass
class Terminal:
    """The drivelab CLI running with a pseudo-terminal as its controlling terminal (stdin, stdout, stderr)."""

    proc: subprocess.Popen[bytes]
    master: int
    output: str = ""

    @classmethod
    def start(cls, args: list[str], env: dict[str, str] | None = None) -> Terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        proc = subprocess.Popen(
            [sys.executable, "-c", BECOME_TERMINAL_SESSION, *DRIVELAB, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env={**os.environ, "TERM": "xterm", **(env or {})},
        )
        os.close(slave)
        return cls(proc, master)

    def read_until(self, text: str, timeout: float = 30) -> str:
        """Output so far, once it holds ``text`` (ANSI codes removed)."""
        deadline = time.monotonic() + timeout
        while text not in self.clean:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                pytest.fail(f"the terminal never showed {text!r}; it showed:\n{self.clean}")
        return self.clean

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self._read(max(0.0, deadline - time.monotonic())):
            pass
        try:
            return self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            os.close(self.master)

    @property
    def clean(self) -> str:
        return ANSI.sub("", self.output)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.output += data.decode("utf-8", "replace")
        return True


def link_in(output: str, provider: FakeOAuthProvider) -> str:
    found = re.findall(re.escape(provider.auth_url) + r"\?\S+", output)
    assert len(found) == 1, f"one consent link expected in:\n{output}"
    return found[0]


def sign_in_on_terminal(ws: Workspace, provider: FakeOAuthProvider, *extra: str, approve: bool = True, answer=None, env=None) -> tuple[int, str]:
    """Run ``drivelab drive connect g -t gdrive`` on a terminal; consent at the printed link; paste ``answer(address)``."""
    term = Terminal.start(
        ["drive", "connect", "g", "-t", "gdrive", "-w", str(ws.root), "-o", f"auth_url={provider.auth_url}", "-o", f"token_url={provider.token_url}", *extra],
        env,
    )
    if "--client-id" in extra:
        term.read_until("none): ")
        term.type(provider.client_secret or "")
    output = term.read_until(PROMPT)
    back = provider.consent(link_in(output, provider), approve=approve)
    term.type(answer(back) if answer else back)
    code = term.finish()
    return code, term.clean


# --- the paste flow, end to end ----------------------------------------------------------------


def test_terminal_sign_in_keeps_a_token_rclone_uses_and_refreshes(ws: Workspace, google: FakeOAuthProvider, rclone_argv: ArgvLog) -> None:
    code, output = sign_in_on_terminal(ws, google, "--no-check")
    assert code == 0, output
    assert "Connected g (gdrive" in output and "Next: drivelab drive mount g" in output
    assert "that is expected" in output and "paste it here" in output
    assert "shared Google client" in output and "--client-id" in output, "the shared client's limits are said before signing in"

    # The token rclone keeps: written into rclone.conf (0600) for rclone's own client, which needs no client_id there.
    conf = ws.state / "rclone.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    section = sections(ws)["g"]
    assert section["type"] == "drive" and section["scope"] == "drive" and "client_id" not in section and "client_secret" not in section
    assert section["token_url"] == google.token_url
    token = json.loads(section["token"])
    assert token["access_token"] in google.access_tokens and token["refresh_token"] in google.refresh_tokens
    assert token["token_type"] == "Bearer" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", token["expiry"])
    [exchange] = google.grants("authorization_code")
    assert exchange.status == 200 and exchange.client_id == RCLONE_DRIVE_CLIENT_ID
    assert [r.name for r in drive.list_remotes(ws)] == ["g"]
    shown = subprocess.run([str(find_rclone().path), "--config", str(conf), "config", "show", "g"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0 and "type = drive" in shown.stdout, shown.stderr

    # rclone refreshes an expired token at the same token endpoint, with the same (shared) client, and writes it back.
    conf.write_text(conf.read_text().replace(token["expiry"], "2020-01-01T00:00:00Z"))
    listed = subprocess.run(
        [str(find_rclone().path), "--config", str(conf), "lsjson", "g:", "--contimeout", "2s", "--timeout", "5s", "--low-level-retries", "1", "--retries", "1"],
        capture_output=True, text=True, timeout=60, env={**os.environ, **dead_proxy_env()}, check=False,
    )  # fmt: skip
    assert listed.returncode != 0, "the Drive API is out of reach: the listing itself must fail"
    [refresh] = google.grants("refresh_token")
    assert refresh.status == 200 and refresh.client_id == RCLONE_DRIVE_CLIENT_ID and refresh.form["refresh_token"] == token["refresh_token"]
    renewed = json.loads(sections(ws)["g"]["token"])
    assert renewed["access_token"] != token["access_token"] and renewed["access_token"] in google.access_tokens
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600

    secret = secrets_of(google)
    assert_no_secret(output, secret, "the terminal")
    assert any(call[:2] == ["config", "create"] or call[2:4] == ["config", "create"] for call in rclone_argv.calls()), "the wrapper saw rclone's calls"
    assert_no_secret(rclone_argv.text(), secret, "an rclone command line")


def test_own_client_secret_is_asked_for_and_kept_for_rclone(ws: Workspace, own: FakeOAuthProvider, rclone_argv: ArgvLog) -> None:
    # Only the code is pasted here, not the whole address.
    code, output = sign_in_on_terminal(ws, own, "--client-id", own.client_id, "--no-check", answer=lambda back: dict(parse_qsl(urlsplit(back).query))["code"])
    assert code == 0, output
    assert "shared Google client" not in output
    section = sections(ws)["g"]
    assert section["client_id"] == own.client_id and section["client_secret"] == own.client_secret
    assert json.loads(section["token"])["refresh_token"] in own.refresh_tokens
    assert_no_secret(output, secrets_of(own), "the terminal")
    assert_no_secret(rclone_argv.text(), secrets_of(own), "an rclone command line")


def test_consent_denied_on_the_terminal_keeps_nothing(ws: Workspace, google: FakeOAuthProvider) -> None:
    code, output = sign_in_on_terminal(ws, google, approve=False)
    assert code == 1
    assert "error=access_denied" in output and "choose Allow" in output and "Traceback" not in output
    assert google.token_requests == [] and drive.list_remotes(ws) == [] and "g" not in sections(ws)


def test_an_address_from_another_sign_in_is_refused_on_the_terminal(ws: Workspace, google: FakeOAuthProvider) -> None:
    def from_elsewhere(back: str) -> str:
        query = dict(parse_qsl(urlsplit(back).query))
        return back.split("?")[0] + "?" + urlencode({**query, "state": "state-of-another-sign-in"})

    code, output = sign_in_on_terminal(ws, google, answer=from_elsewhere)
    assert code == 1
    assert "belongs to another sign-in" in output and "hint:" in output
    assert google.token_requests == [], "nothing is exchanged for a code of another sign-in"
    assert drive.list_remotes(ws) == [] and "g" not in sections(ws)
    assert_no_secret(output, secrets_of(google), "the terminal")


def test_without_a_terminal_the_error_names_the_ways_that_work(ws: Workspace) -> None:
    done = subprocess.run(
        [*DRIVELAB, "drive", "connect", "g", "-t", "gdrive", "-w", str(ws.root)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--token" in done.stderr and "Connect page" in done.stderr and "terminal" in done.stderr
    assert "http" not in done.stderr, "no link is printed when nothing can be pasted back"
    assert drive.list_remotes(ws) == []


# --- the library: every refusal, with nothing kept -------------------------------------------


def begin(ws: Workspace, provider: FakeOAuthProvider, name: str = "g", **options: object) -> drive.SignIn:
    return drive.begin_sign_in(ws, name, "gdrive", client_id=provider.client_id, client_secret=provider.client_secret, options=endpoints(provider), **options)  # type: ignore[arg-type]


def never(conf: Path, spec: str) -> None:
    raise AssertionError("the check must not run")


def test_library_sign_in_with_an_injected_check(ws: Workspace, own: FakeOAuthProvider) -> None:
    seen: list[tuple[Path, str]] = []

    def check(conf: Path, spec: str) -> None:
        # The check sees the new remote, with its token, in a config rclone reads.
        done = subprocess.run([str(find_rclone().path), "--config", str(conf), "config", "dump"], capture_output=True, text=True, check=True)
        assert "token" in json.loads(done.stdout)["g"]
        seen.append((conf, spec))

    sign_in = begin(ws, own)
    assert sign_in.state in sign_in.url and "code_challenge=" in sign_in.url and "code_challenge_method=S256" in sign_in.url
    assert "access_type=offline" in sign_in.url and "prompt=consent" in sign_in.url and not sign_in.shared_client
    for shown in (repr(sign_in), json.dumps(sign_in.to_dict())):
        assert sign_in._code_verifier not in shown and (own.client_secret or "") not in shown
    info = drive.finish_sign_in(ws, sign_in, own.consent(sign_in.url), root="lab/data", check=check)
    assert (info.name, info.type, info.rclone_type, info.root) == ("g", "gdrive", "drive", "lab/data")
    assert [spec for _, spec in seen] == ["g:lab/data"]
    assert not seen[0][0].exists(), "the trial config is gone"
    assert_no_secret(json.dumps(info.to_dict()), secrets_of(own), "the remote's info")


def test_any_redirect_address_is_accepted(ws: Workspace, own: FakeOAuthProvider) -> None:
    callback = "http://lab.example:8888/drivelab/connect/callback?x=1"
    sign_in = begin(ws, own, redirect_uri=callback)
    back = own.consent(sign_in.url)
    assert back.startswith(callback + "&code=")
    drive.finish_sign_in(ws, sign_in, back, check=False)
    assert own.grants("authorization_code")[0].form["redirect_uri"] == callback


@pytest.mark.parametrize(
    "kind, backend, param, redirect",
    [("dropbox", "dropbox", "token_access_type=offline", "http://localhost:53682/"), ("box", "box", None, "http://127.0.0.1:53682/")],
)
def test_dropbox_and_box_sign_in(ws: Workspace, own: FakeOAuthProvider, kind: str, backend: str, param: str | None, redirect: str) -> None:
    sign_in = drive.begin_sign_in(ws, "d", kind, client_id=own.client_id, client_secret=own.client_secret, options=endpoints(own))
    assert sign_in.redirect_uri == redirect and (param is None or param in sign_in.url)
    info = drive.finish_sign_in(ws, sign_in, own.consent(sign_in.url), check=False)
    assert (info.type, info.rclone_type) == (kind, backend)
    assert sections(ws)["d"]["type"] == backend


def test_begin_refuses_before_any_link(ws: Workspace, own: FakeOAuthProvider) -> None:
    first = begin(ws, own)
    drive.finish_sign_in(ws, first, own.consent(first.url), check=False)
    with pytest.raises(SignInError, match="already exists") as caught:
        begin(ws, own)
    assert "--replace" in (caught.value.hint or "")
    assert begin(ws, own, replace=True).url
    with pytest.raises(SignInError, match="not a valid remote name"):
        begin(ws, own, name="-bad name")
    with pytest.raises(SignInError, match="not available for 'ftp'"):
        drive.begin_sign_in(ws, "f", "ftp")
    with pytest.raises(SignInError, match="without its client id"):
        drive.begin_sign_in(ws, "h", "gdrive", client_secret="s")
    with pytest.raises(SignInError, match="token cannot be given"):
        drive.begin_sign_in(ws, "h", "gdrive", options={"token": "{}"})
    assert isinstance(caught.value, RemoteError)


def test_consent_denied(ws: Workspace, own: FakeOAuthProvider) -> None:
    sign_in = begin(ws, own)
    with pytest.raises(SignInError, match="access_denied") as caught:
        drive.finish_sign_in(ws, sign_in, own.consent(sign_in.url, approve=False), check=never)
    assert "Allow" in (caught.value.hint or "")
    assert own.token_requests == [] and drive.list_remotes(ws) == []


def test_wrong_state_and_missing_code(ws: Workspace, own: FakeOAuthProvider) -> None:
    other, sign_in = begin(ws, own), begin(ws, own)
    with pytest.raises(SignInError, match="another sign-in"):
        drive.finish_sign_in(ws, sign_in, own.consent(other.url), check=never)
    with pytest.raises(SignInError, match="another sign-in"):  # a denial from another sign-in is not this one's either
        drive.finish_sign_in(ws, sign_in, own.consent(other.url, approve=False), check=never)
    with pytest.raises(SignInError, match="no sign-in code") as caught:
        drive.finish_sign_in(ws, sign_in, f"http://127.0.0.1:53682/?state={sign_in.state}", check=never)
    assert "address bar" in (caught.value.hint or "")
    with pytest.raises(SignInError, match="nothing was pasted"):
        drive.finish_sign_in(ws, sign_in, "  ", check=never)
    assert own.token_requests == [] and drive.list_remotes(ws) == []


def test_expired_and_reused_codes(ws: Workspace, own: FakeOAuthProvider) -> None:
    sign_in = begin(ws, own)
    back = own.consent(sign_in.url)
    own.expire(own.codes[-1])
    with pytest.raises(SignInError, match="expired or was already used") as caught:
        drive.finish_sign_in(ws, sign_in, back, check=never)
    assert "start again" in (caught.value.hint or "")

    sign_in = begin(ws, own)
    back = own.consent(sign_in.url)

    def refuse(conf: Path, spec: str) -> None:
        raise RemoteError("cannot reach g:: the remote refused the credentials", hint="check the account")

    with pytest.raises(SignInError, match="could not be used.*not kept"):
        drive.finish_sign_in(ws, sign_in, back, check=refuse)
    assert drive.list_remotes(ws) == [] and "g" not in sections(ws)
    with pytest.raises(SignInError, match="already used"):
        drive.finish_sign_in(ws, sign_in, back, check=never)
    assert [r.error for r in own.grants("authorization_code")] == ["invalid_grant", None, "invalid_grant"]


def test_sign_in_too_old(ws: Workspace, own: FakeOAuthProvider) -> None:
    sign_in = begin(ws, own)
    back = own.consent(sign_in.url)
    sign_in.created -= _oauth.SIGN_IN_TIMEOUT + 60
    with pytest.raises(SignInError, match="too long ago"):
        drive.finish_sign_in(ws, sign_in, back, check=never)
    assert own.token_requests == []


def test_wrong_client_secret(ws: Workspace, own: FakeOAuthProvider) -> None:
    sign_in = drive.begin_sign_in(ws, "g", "gdrive", client_id=own.client_id, client_secret="not-the-secret-at-all", options=endpoints(own))
    with pytest.raises(SignInError, match="refused the client") as caught:
        drive.finish_sign_in(ws, sign_in, own.consent(sign_in.url), check=never)
    assert "not-the-secret" not in caught.value.message + (caught.value.hint or "")


def test_token_endpoint_unreachable_or_silent(ws: Workspace, own: FakeOAuthProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}/token"
    sign_in = drive.begin_sign_in(
        ws, "g", "gdrive", client_id=own.client_id, client_secret=own.client_secret, options={"auth_url": own.auth_url, "token_url": closed}
    )
    with pytest.raises(SignInError, match="cannot be reached") as caught:
        drive.finish_sign_in(ws, sign_in, own.consent(sign_in.url), check=never)
    assert "127.0.0.1" in caught.value.message and "network" in (caught.value.hint or "")

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts connections, never answers
    monkeypatch.setattr(_oauth, "TOKEN_TIMEOUT", (1.0, 1.0))
    try:
        sign_in = drive.begin_sign_in(
            ws, "g", "gdrive", client_id=own.client_id, client_secret=own.client_secret,
            options={"auth_url": own.auth_url, "token_url": f"http://127.0.0.1:{silent.getsockname()[1]}/token"},
        )  # fmt: skip
        with pytest.raises(SignInError, match="did not answer in time"):
            drive.finish_sign_in(ws, sign_in, own.consent(sign_in.url), check=never)
    finally:
        silent.close()
    assert drive.list_remotes(ws) == []


def test_refused_listing_keeps_nothing_and_leaves_the_replaced_remote(
    ws: Workspace, own: FakeOAuthProvider, monkeypatch: pytest.MonkeyPatch, rclone_argv: ArgvLog
) -> None:
    first = begin(ws, own)
    drive.finish_sign_in(ws, first, own.consent(first.url), check=False)
    before = sections(ws)["g"]

    # The real check: rclone lists the drive, whose API is behind a dead proxy here.
    for key, value in dead_proxy_env().items():
        monkeypatch.setenv(key, value)
    again = begin(ws, own, replace=True)
    started = time.monotonic()
    with pytest.raises(SignInError, match="could not be used") as caught:
        drive.finish_sign_in(ws, again, own.consent(again.url))
    assert time.monotonic() - started < 30
    assert "not kept" in caught.value.message and caught.value.hint
    assert sections(ws)["g"] == before, "the remote it was to replace is left as it was"
    assert not list(ws.state.glob(".rclone.conf.sign-in-*"))
    assert any("lsjson" in call for call in rclone_argv.calls()), "rclone listed the drive"
    assert_no_secret(caught.value.message + (caught.value.hint or ""), secrets_of(own), "the error")
    assert_no_secret(rclone_argv.text(), secrets_of(own), "an rclone command line")


def test_errors_never_show_secrets(ws: Workspace, own: FakeOAuthProvider) -> None:
    """Each refusal above, once more, checked for every secret of the sign-ins."""
    messages: list[str] = []
    for answer in ("deny", "other", "expired"):
        sign_in, other = begin(ws, own), begin(ws, own)
        back = own.consent((other if answer == "other" else sign_in).url, approve=answer != "deny")
        if answer == "expired":
            own.expire_all_codes()
        with pytest.raises(SignInError) as caught:
            drive.finish_sign_in(ws, sign_in, back, check=never)
        messages.append(f"{caught.value.message} {caught.value.hint}")
    assert_no_secret("\n".join(messages), secrets_of(own), "an error message")


def test_the_fake_provider_is_strict(own: FakeOAuthProvider) -> None:
    """The double refuses what a real provider refuses, so the tests above can fail."""
    import requests

    start = f"{own.auth_url}?" + urlencode({"response_type": "code", "client_id": own.client_id, "redirect_uri": "http://127.0.0.1:1/", "state": "s"})
    assert requests.get(start, timeout=10).status_code == 400, "PKCE is required"
    back = own.consent(start + "&" + urlencode({"code_challenge": "a-challenge-no-verifier-here-hashes-to", "code_challenge_method": "S256"}))
    code = dict(parse_qsl(urlsplit(back).query))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:1/",
        "client_id": own.client_id,
        "client_secret": own.client_secret,
    }
    answered = requests.post(own.token_url, data={**form, "code_verifier": "wrong" * 10}, timeout=10)
    assert answered.status_code == 400 and answered.json()["error"] == "invalid_grant"
    assert requests.post(own.token_url, data={**form, "client_secret": "x"}, timeout=10).json()["error"] == "invalid_client"

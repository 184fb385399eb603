"""A fake OAuth 2.0 provider on loopback: a consent page and a token endpoint, strict where real ones are.

::

    with FakeOAuthProvider("my-client", "my-secret") as provider:
        url = ...                                  # a client's authorization address for provider.auth_url
        back = provider.consent(url)               # what the browser ends on: REDIRECT_URI?code=..&state=..
        provider.consent(url, approve=False)       # REDIRECT_URI?error=access_denied&state=..
        provider.token_requests                    # every POST to provider.token_url, and how it was answered
        provider.expire(code)                      # the code is refused from now on, as an expired one

``GET /auth`` checks the client and the request (``response_type=code``, a
``redirect_uri``, PKCE with ``S256``) and shows an HTML consent page with an
*Allow* and a *Deny* button (ids ``allow`` and ``deny``): a real browser can
click them. Either button posts to ``/auth/decide``, which redirects (302) to
``redirect_uri`` with ``code`` and ``state``, or with ``error=access_denied``.
A request the provider refuses (unknown client, no PKCE) gets a 400 page and
is never redirected, as the specification asks.

``POST /token`` takes ``grant_type=authorization_code`` (the code must be
known, unused, younger than ``code_lifetime``, issued to this client for the
same ``redirect_uri``, and its ``code_verifier`` must hash to the challenge)
and ``grant_type=refresh_token``. The client authenticates with HTTP Basic or
with ``client_id``/``client_secret`` in the body; a provider made with
``client_secret=None`` has a public client, which sends only its id. Errors
are answered as the specification says: 400 (401 for ``invalid_client``) with
``{"error": ..., "error_description": ...}``. A code used twice is refused
(``invalid_grant``) and the tokens issued for it are revoked.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = ["FakeOAuthProvider", "TokenRequest"]


@dataclass
class TokenRequest:
    """One request to the token endpoint: its form fields, the client it authenticated as, and the answer."""

    grant_type: str
    form: dict[str, str]
    client_id: str | None
    status: int
    error: str | None = None
    """The ``error`` code answered, None when tokens were issued."""


@dataclass
class _Pending:
    client_id: str
    redirect_uri: str
    state: str | None
    challenge: str
    scope: str


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    issued: float
    used: bool = False
    expired: bool = False
    tokens: list[str] = field(default_factory=list)


class FakeOAuthProvider:
    """The provider of the module doc, on ``127.0.0.1`` (a free port); use it as a context manager or call start/close.

    ``client_id``/``client_secret``: the one client it knows (``client_secret``
    None: a public client). ``code_lifetime``: seconds a code is good for.
    ``access_lifetime``: the ``expires_in`` of the access tokens it issues.
    """

    def __init__(
        self, client_id: str = "test-client", client_secret: str | None = "test-client-secret", *, code_lifetime: float = 60.0, access_lifetime: int = 3600
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.code_lifetime = code_lifetime
        self.access_lifetime = access_lifetime
        self.token_requests: list[TokenRequest] = []
        self.codes: list[str] = []
        """Every code issued, oldest first."""
        self.access_tokens: dict[str, bool] = {}
        """Every access token issued -> whether it is still valid."""
        self.refresh_tokens: dict[str, bool] = {}
        """Every refresh token issued -> whether it is still valid."""
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> FakeOAuthProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-oauth", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOAuthProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the provider first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    # --- what a browser and its user do ------------------------------------------------------

    def consent(self, url: str, approve: bool = True) -> str:
        """Open the consent page at ``url`` and choose Allow (or Deny): the address the browser is then sent to.

        Raises ``AssertionError`` with the page's text when the provider refuses the request.
        """
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == self.url, f"{url} is not an address of this provider ({self.url})"
        status, headers, body = self._http("GET", f"{parts.path}?{parts.query}")
        assert status == 200, f"the consent page refused the request ({status}): {body}"
        request_id = body.split('name="request" value="', 1)[1].split('"', 1)[0]
        status, headers, body = self._http("POST", "/auth/decide", urlencode({"request": request_id, "decision": "allow" if approve else "deny"}))
        assert status == 302, f"no redirect after the decision ({status}): {body}"
        return headers["Location"]

    def expire(self, code: str) -> None:
        """Make ``code`` refused as an expired one (``invalid_grant``)."""
        with self._lock:
            self._codes[code].expired = True

    def expire_all_codes(self) -> None:
        with self._lock:
            for code in self._codes.values():
                code.expired = True

    def grants(self, grant_type: str) -> list[TokenRequest]:
        """The token requests of one grant type (``authorization_code``, ``refresh_token``)."""
        return [r for r in self.token_requests if r.grant_type == grant_type]

    def _http(self, method: str, target: str, body: str | None = None) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    # --- the endpoints -----------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """GET /auth: (status, HTML page)."""
        if query.get("client_id") != self.client_id:
            return 400, _page("Error", f"unknown client {query.get('client_id')!r}")
        if query.get("response_type") != "code":
            return 400, _page("Error", "response_type must be code")
        if not query.get("redirect_uri"):
            return 400, _page("Error", "redirect_uri is missing")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, _page("Error", "PKCE with code_challenge_method=S256 is required")
        request_id = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[request_id] = _Pending(
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                state=query.get("state"),
                challenge=query["code_challenge"],
                scope=query.get("scope", ""),
            )
        scope = html.escape(query.get("scope", "") or "(no scope)")
        form = (
            f'<form method="post" action="/auth/decide">'
            f'<input type="hidden" name="request" value="{request_id}">'
            f"<p>The application <b>{html.escape(self.client_id)}</b> asks for: {scope}</p>"
            f'<button type="submit" id="allow" name="decision" value="allow">Allow</button> '
            f'<button type="submit" id="deny" name="decision" value="deny">Deny</button>'
            f"</form>"
        )
        return 200, _page("Sign in - fake provider", form)

    def _decide(self, form: dict[str, str]) -> tuple[int, str]:
        """POST /auth/decide: (status, Location or error page)."""
        with self._lock:
            pending = self._pending.pop(form.get("request", ""), None)
        if pending is None:
            return 400, _page("Error", "unknown or already decided request")
        params: dict[str, str]
        if form.get("decision") == "allow":
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Code(pending.client_id, pending.redirect_uri, pending.challenge, pending.scope, time.monotonic())
                self.codes.append(code)
            params = {"code": code}
        else:
            params = {"error": "access_denied", "error_description": "The user denied access"}
        if pending.state is not None:
            params["state"] = pending.state
        joiner = "&" if "?" in pending.redirect_uri else "?"
        return 302, f"{pending.redirect_uri}{joiner}{urlencode(params)}"

    def _token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        """POST /token: (status, JSON answer); recorded in :attr:`token_requests`."""
        grant_type = form.get("grant_type", "")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        with self._lock:
            status, answer = self._grant(grant_type, form, client_id, client_secret)
            self.token_requests.append(TokenRequest(grant_type, dict(form), client_id, status, answer.get("error")))
        return status, answer

    def _grant(self, grant_type: str, form: dict[str, str], client_id: str | None, client_secret: str | None) -> tuple[int, dict[str, Any]]:
        if client_id != self.client_id or (self.client_secret is not None and client_secret != self.client_secret):
            return 401, _error("invalid_client", "unknown client or wrong client secret")
        if grant_type == "authorization_code":
            code = self._codes.get(form.get("code", ""))
            if code is None:
                return 400, _error("invalid_grant", "unknown code")
            if code.used:
                for token in code.tokens:  # a replayed code revokes what it gave (RFC 6749 4.1.2)
                    self.access_tokens[token] = self.refresh_tokens[token] = False
                return 400, _error("invalid_grant", "code already used")
            code.used = True
            if code.expired or time.monotonic() - code.issued > self.code_lifetime:
                return 400, _error("invalid_grant", "code expired")
            if code.client_id != client_id:
                return 400, _error("invalid_grant", "code issued to another client")
            if form.get("redirect_uri") != code.redirect_uri:
                return 400, _error("invalid_grant", "redirect_uri differs from the authorization request's")
            verifier = form.get("code_verifier", "")
            if _s256(verifier) != code.challenge:
                return 400, _error("invalid_grant", "code_verifier does not match the code_challenge")
            answer = self._issue(code.scope, refresh=True)
            code.tokens += [answer["access_token"], answer["refresh_token"]]
            return 200, answer
        if grant_type == "refresh_token":
            if not self.refresh_tokens.get(form.get("refresh_token", "")):
                return 400, _error("invalid_grant", "unknown or revoked refresh token")
            return 200, self._issue(form.get("scope", ""), refresh=False)
        return 400, _error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _issue(self, scope: str, *, refresh: bool) -> dict[str, Any]:
        access = "fake-access-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = True
        answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.access_lifetime, "scope": scope}
        if refresh:
            answer["refresh_token"] = "fake-refresh-" + secrets.token_urlsafe(24)
            self.refresh_tokens[answer["refresh_token"]] = True
        return answer


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _error(error: str, description: str) -> dict[str, Any]:
    return {"error": error, "error_description": description}


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOAuthProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the provider's records instead
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/auth":
            self._send(404, "text/html", _page("Not found", parts.path))
            return
        status, page = self.owner._authorize(dict(parse_qsl(parts.query)))
        self._send(status, "text/html", page)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode("utf-8")))
        path = urlsplit(self.path).path
        if path == "/auth/decide":
            status, where = self.owner._decide(form)
            if status == 302:
                self.send_response(302)
                self.send_header("Location", where)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(status, "text/html", where)
        elif path == "/token":
            status, answer = self.owner._token(form, self.headers.get("Authorization"))
            self._send(status, "application/json", json.dumps(answer))
        else:
            self._send(404, "text/html", _page("Not found", path))

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

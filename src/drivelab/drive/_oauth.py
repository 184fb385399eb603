"""Signing in to an OAuth drive (Google Drive, Dropbox, Box) from a machine without a browser.

rclone's own sign-in (``rclone config``, ``rclone authorize``) needs a browser
on the machine that runs it, or a second machine with rclone. Here the
authorization-code flow is split in two so that any device can do the browser
part: :func:`begin_sign_in` makes the consent-page address (with PKCE and a
``state``), the user opens it anywhere and brings back the address the browser
ended on (or just the code in it), and :func:`finish_sign_in` exchanges the
code for a token and keeps the remote, as ``rclone config`` would have.

Authlib does the protocol (PKCE S256, ``state`` check, code exchange); this
module chooses the endpoints and client, translates failures into
:class:`SignInError` with a hint, and writes the token where rclone reads it,
in the form rclone writes it, so that rclone refreshes it from then on.

The client is the one ``rclone config`` uses for that backend unless the user
gives their own: rclone refreshes a token with the client named in
``rclone.conf``, and an empty ``client_id`` there means rclone's own, so a token
issued to rclone's client must not be paired with another. Secrets (the code,
the PKCE verifier, the client secret, the tokens) never reach a command line,
a log or a message: rclone creates the remote's section from its non-secret
options, and the secret values are written into the file by Python.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from drivelab._subprocess import redact
from drivelab.drive._config import DrivePaths, RemoteEntry, load_settings, save_settings
from drivelab.drive._rclone import Rclone, classify_failure, find_rclone
from drivelab.drive._remotes import (
    RemoteInfo, create_remote, ensure_private_file, existing_remote_names, is_valid_name, list_check, parse_options, put_section, read_sections,
    remote_info, split_secrets, update_section,
)
from drivelab.drive._status import is_attached
from drivelab.errors import DriveError, SignInError
from drivelab.workspace import Workspace

__all__ = ["OAUTH_TYPES", "SIGN_IN_TIMEOUT", "SignIn", "begin_sign_in", "finish_sign_in"]

SIGN_IN_TIMEOUT = 10 * 60
"""Seconds a sign-in may take from :func:`begin_sign_in` to :func:`finish_sign_in` (providers' codes live about as long)."""
TOKEN_TIMEOUT = (10.0, 30.0)
"""(connect, read) seconds for the token endpoint: a sign-in must not hang on a network that drops packets."""


@dataclass(frozen=True)
class _Provider:
    backend: str
    """rclone's backend name."""
    label: str
    auth_url: str
    token_url: str
    scopes: tuple[str, ...]
    auth_params: tuple[tuple[str, str], ...]
    """Extra parameters of the consent-page address (those that make the provider issue a refresh token)."""
    client_id: str
    """rclone's shared installed-app client for this backend, the one ``rclone config`` uses."""
    obscured_secret: str
    """Its secret, obscured as rclone's source keeps it; revealed with ``rclone reveal`` when needed."""
    redirect_uri: str
    """The loopback address rclone registered for that client (rclone's local sign-in listens there)."""
    shared_client_note: str = ""


# rclone's backends that sign in with OAuth and keep nothing else in their section that only an
# interactive rclone config could fill in (OneDrive needs drive_id/drive_type from the Graph API
# after signing in, so it is not here). Endpoints, scopes and clients as rclone's backends have them.
_PROVIDERS = {
    "gdrive": _Provider(
        backend="drive",
        label="Google Drive",
        auth_url="https://accounts.google.com/o/oauth2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=("https://www.googleapis.com/auth/drive",),
        # offline + consent: Google issues a refresh token only with these, and again on every sign-in.
        auth_params=(("access_type", "offline"), ("prompt", "consent")),
        client_id="202264815644.apps.googleusercontent.com",
        obscured_secret="eX8GpZTVx3vxMWVkuuBdDWmAUE6rGhTwVrvG9GhllYccSdj2-mvHVg",
        redirect_uri="http://127.0.0.1:53682/",
        shared_client_note="rclone's shared Google client is rate-limited by Google for everybody using it, and rclone is retiring it during 2026: "
        "pass --client-id/--client-secret of your own (https://rclone.org/drive/#making-your-own-client-id)",
    ),
    "dropbox": _Provider(
        backend="dropbox",
        label="Dropbox",
        auth_url="https://www.dropbox.com/oauth2/authorize",
        token_url="https://api.dropboxapi.com/oauth2/token",
        scopes=("files.metadata.write", "files.content.write", "files.content.read", "sharing.write", "account_info.read"),
        auth_params=(("token_access_type", "offline"),),
        client_id="5jcck7diasz0rqy",
        obscured_secret="fRS5vVLr2v6FbyXYnIgjwBuUAt0osq_QZTXAEcmZ7g",
        redirect_uri="http://localhost:53682/",
    ),
    "box": _Provider(
        backend="box",
        label="Box",
        auth_url="https://app.box.com/api/oauth2/authorize",
        token_url="https://app.box.com/api/oauth2/token",
        scopes=(),
        auth_params=(),
        client_id="d0374ba6pgmaguie02ge15sv1mllndho",
        obscured_secret="sYbJYm99WB8jzeaLPU0OPDMJKIkZvD2qOn3SyEMfiJr03RdtDt3xcZEIudRhbIDL",
        redirect_uri="http://127.0.0.1:53682/",
    ),
}
OAUTH_TYPES = tuple(_PROVIDERS)
"""drivelab's names of the drives :func:`begin_sign_in` can sign in to."""
_GOOGLE_SCOPE_PREFIX = "https://www.googleapis.com/auth/"
# Options that sign-in makes itself: given as options they would be overwritten or contradict it.
_MADE_HERE = ("token", "client_id", "client_secret", "config_token", "service_account_file", "service_account_credentials")


@dataclass
class SignIn:
    """One sign-in in progress: open :attr:`url`, then pass what the browser ended on to :func:`finish_sign_in`.

    Holds the PKCE verifier and the client secret: keep it in memory only, for
    at most :data:`SIGN_IN_TIMEOUT` seconds, and never print its private fields
    (they are left out of ``repr`` and :meth:`to_dict`).
    """

    name: str
    """The remote to create."""
    type: str
    """drivelab's type: ``gdrive``, ``dropbox`` or ``box``."""
    url: str
    """The consent page to open (carries ``state`` and the PKCE ``code_challenge``)."""
    redirect_uri: str
    state: str
    label: str
    """The provider, in words (``Google Drive``)."""
    shared_client: bool
    """Whether rclone's shared client is used (no client of the user's own)."""
    created: float = field(default_factory=time.time)
    """When the sign-in began (``time.time()``)."""
    _code_verifier: str = field(default="", repr=False)
    _client_id: str = field(default="", repr=False)
    _client_secret: str | None = field(default=None, repr=False)
    _token_url: str = field(default="", repr=False)
    _scope: str | None = field(default=None, repr=False)
    _options: dict[str, str] = field(default_factory=dict, repr=False)
    """Non-secret rclone options of the remote (scope, auth_url/token_url, client_id of the user's own, ...)."""
    _replace: bool = field(default=False, repr=False)

    @property
    def notice(self) -> str:
        """What the user should know before signing in with this client (empty when nothing)."""
        return _PROVIDERS[self.type].shared_client_note if self.shared_client else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "url": self.url,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "shared_client": self.shared_client,
            "created": self.created,
        }


def _provider_of(type: str) -> tuple[str, _Provider]:
    if type in _PROVIDERS:
        return type, _PROVIDERS[type]
    for name, provider in _PROVIDERS.items():  # rclone's backend names work too (drive -> gdrive)
        if provider.backend == type:
            return name, provider
    raise SignInError(
        f"signing in from here is not available for {type!r}",
        hint=f"sign-in works for: {', '.join(OAUTH_TYPES)}; for another drive pass its token (--token) or use --browser on a machine with a browser",
    )


def _check_name_free(ws: Workspace, rclone: Rclone, name: str, *, replace: bool) -> None:
    if name in existing_remote_names(ws, rclone):
        if not replace:
            raise SignInError(f"a remote named {name!r} already exists", hint="pick another name, or pass --replace to sign in again and overwrite it")
        settings = load_settings(ws)
        if settings.remote == name and is_attached(ws):
            raise SignInError(f"{name!r} is the attached drive", hint="run `drivelab drive unmount` first, then sign in again")


def begin_sign_in(
    ws: Workspace,
    name: str,
    type: str = "gdrive",
    *,
    redirect_uri: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    options: Mapping[str, str] | None = None,
    extra: Iterable[str] = (),
    replace: bool = False,
) -> SignIn:
    """Start signing in remote ``name`` to ``type``: the :class:`SignIn` whose ``url`` the user opens.

    ``redirect_uri``: where the provider sends the browser after consent;
    by default the loopback address rclone's client is registered with (an
    address that does not load on the user's device: they copy it from the
    address bar). Any address may be given (a web page's own callback), as long
    as the client is registered with it. ``client_id``/``client_secret``: a
    client of the user's own (recommended for Google Drive); by default
    rclone's shared one. ``options`` (and ``extra``, as ``key=value`` strings)
    are rclone options of the remote: ``auth_url``/``token_url`` replace the
    provider's endpoints (and rclone refreshes there too), ``scope``,
    ``root_folder_id``, ``team_drive``, ... are kept in the remote.

    Everything that can be refused (name, type, an existing remote without
    ``replace``) is refused here, before the user is sent anywhere.
    """
    if not is_valid_name(name):
        raise SignInError(f"{name!r} is not a valid remote name", hint="use letters, digits, '_', '-' and '.', starting with a letter, digit or '_'")
    type, provider = _provider_of(type)
    opts = {k: v for k, v in (options or {}).items() if v is not None and v != ""}
    opts.update(parse_options(extra))
    client_id = client_id or opts.get("client_id") or None
    client_secret = client_secret or opts.get("client_secret") or None
    given = [k for k in _MADE_HERE if k in opts and k not in ("client_id", "client_secret")]
    if given:
        raise SignInError(
            f"{', '.join(given)} cannot be given to a sign-in: it makes the token itself",
            hint="leave them out; to use a token you already have, connect with --token instead",
        )
    for key in ("client_id", "client_secret"):
        opts.pop(key, None)
    if client_secret and not client_id:
        raise SignInError("a client secret was given without its client id", hint="pass --client-id too (or neither, for rclone's shared client)")
    redirect_uri = redirect_uri or provider.redirect_uri
    where = urlsplit(redirect_uri)
    if where.scheme not in ("http", "https") or not where.netloc:
        raise SignInError(f"the redirect address {redirect_uri!r} is not an http(s) address", hint="give the full address, e.g. http://127.0.0.1:53682/")
    rclone = find_rclone()
    _check_name_free(ws, rclone, name, replace=replace)
    scope: str | None = " ".join(provider.scopes) or None
    if provider.backend == "drive":
        opts.setdefault("scope", "drive")
        scope = " ".join(_GOOGLE_SCOPE_PREFIX + s.strip() for s in opts["scope"].split(",") if s.strip())
    shared = client_id is None
    if shared:
        client_id, client_secret = provider.client_id, _reveal(rclone, provider.obscured_secret)
    else:
        opts["client_id"] = client_id  # rclone refreshes with the client the token was issued to
    assert client_id is not None
    verifier = _new_verifier()
    session = _session(client_id, client_secret, scope=scope, redirect_uri=redirect_uri)
    try:
        url, state = session.create_authorization_url(opts.get("auth_url") or provider.auth_url, code_verifier=verifier, **dict(provider.auth_params))
    finally:
        session.close()
    return SignIn(
        name=name,
        type=type,
        url=url,
        redirect_uri=redirect_uri,
        state=state,
        label=provider.label,
        shared_client=shared,
        _code_verifier=verifier,
        _client_id=client_id,
        _client_secret=client_secret,
        _token_url=opts.get("token_url") or provider.token_url,
        _scope=scope,
        _options=opts,
        _replace=replace,
    )


def finish_sign_in(ws: Workspace, sign_in: SignIn, answer: str, *, root: str = "", check: bool | Callable[[Path, str], None] = True) -> RemoteInfo:
    """Finish ``sign_in`` with ``answer`` and keep the remote: its :class:`RemoteInfo` (no secrets).

    ``answer`` is what the user brings back: the whole address the browser
    ended on (``...?state=...&code=...``, or ``...?error=access_denied``), or
    only the code. The code is exchanged for a token (with the PKCE verifier
    and the client secret), the remote is written to the workspace's
    ``rclone.conf`` (mode 0600) with rclone's token JSON, and then checked:
    ``check`` True lists ``root`` on it with rclone (creating that folder if
    missing), False skips that, a callable ``check(rclone_conf, "name:root")``
    does it instead (it raises :class:`~drivelab.errors.DriveError` to refuse).

    On any failure nothing is kept, and a remote it was to replace is left as
    it was. Every failure is a :class:`SignInError` saying what to do.
    """
    age = time.time() - sign_in.created
    if age > SIGN_IN_TIMEOUT:
        raise SignInError(
            f"this sign-in began {age / 60:.0f} minutes ago: too long ago to finish (the limit is {SIGN_IN_TIMEOUT // 60} minutes)",
            hint="start again and paste the address within a few minutes of signing in",
        )
    provider = _PROVIDERS[sign_in.type]
    grant = _read_answer(sign_in, answer)
    rclone = find_rclone()
    _check_name_free(ws, rclone, sign_in.name, replace=sign_in._replace)  # again: the name may have been taken meanwhile
    token = _exchange(sign_in, grant)
    secret_values = [v for v in (grant.get("code"), sign_in._code_verifier, sign_in._client_secret, token.get("access_token"), token.get("refresh_token")) if v]
    paths = DrivePaths(ws)
    conf = paths.rclone_conf
    ensure_private_file(conf)
    entry = RemoteEntry(name=sign_in.name, type=sign_in.type, root=root.strip("/"))
    # The remote is built and checked in a config file of its own, and joins the workspace's only
    # once it works: a failure keeps nothing, and never breaks a remote of the same name it replaces.
    trial = conf.with_name(f".{conf.name}.sign-in-{secrets.token_hex(6)}")
    try:
        ensure_private_file(trial)
        # The token and the client secret are written into the file below; any other secret option goes as connect's do.
        plain, hidden = split_secrets(rclone, provider.backend, sign_in._options)
        made = create_remote(rclone, trial, sign_in.name, provider.backend, plain, hidden, obscure=True, timeout=60)
        if made.returncode != 0:
            raise classify_failure(made.stderr, what=f"rclone rejected the settings of {sign_in.name!r}", secrets=[*secret_values, *hidden.values()])
        values = {"token": _rclone_token(token)}
        if not sign_in.shared_client and sign_in._client_secret:
            values["client_secret"] = sign_in._client_secret
        update_section(trial, sign_in.name, values)
        if check is True:
            list_check(rclone, trial, entry.spec, secrets=secret_values)
        elif callable(check):
            check(trial, entry.spec)
        section = read_sections(trial).get(sign_in.name)
        if section is None:
            raise SignInError(f"rclone did not keep the remote {sign_in.name!r}", hint="run the command again with --debug")
        put_section(conf, sign_in.name, section)
    except SignInError:
        raise
    except DriveError as exc:
        raise SignInError(
            f"signed in to {provider.label}, but {entry.spec} could not be used: {redact(exc.message, secret_values)}; the remote was not kept",
            hint=exc.hint or "check that the account can reach that folder, then sign in again",
        ) from exc
    finally:
        trial.unlink(missing_ok=True)
    settings = load_settings(ws)
    settings.remotes[sign_in.name] = entry
    save_settings(ws, settings)
    return remote_info(entry, section, settings.remote == sign_in.name)


# --- the answer and the exchange -----------------------------------------------------------


def _read_answer(sign_in: SignIn, answer: str) -> dict[str, str]:
    """What to exchange: ``{"authorization_response": address}`` or ``{"code": code}``; refusals as :class:`SignInError`."""
    text = answer.strip()
    if not text:
        raise SignInError("nothing was pasted", hint="paste the whole address your browser ended on after signing in (or the code in it)")
    if not ("://" in text or text.startswith("?") or any(f"{key}=" in text for key in ("code", "error", "state"))):
        return {"code": unquote(text)}
    address = text.split("#", 1)[0]  # a fragment is never part of the answer; Authlib would read it as an implicit grant
    params = dict(parse_qsl(urlsplit(address).query if "://" in address else address.lstrip("?")))
    if "error" in params:
        if params.get("state") != sign_in.state:
            raise _wrong_state()
        if params["error"] == "access_denied":
            raise SignInError(
                f"access to {sign_in.label} was not allowed on the consent page (error=access_denied): nothing was kept",
                hint="start again and choose Allow; if your organisation manages the account, ask its administrator to allow the app",
            )
        detail = params.get("error_description", "")
        raise SignInError(
            f"{sign_in.label} refused the sign-in: {params['error']}" + (f" ({detail})" if detail else ""),
            hint="start again; if it happens again, use a client of your own (--client-id/--client-secret)",
        )
    if not params.get("code"):
        raise SignInError(
            "the pasted address has no sign-in code in it",
            hint="copy the address from the browser's address bar after choosing Allow: it contains code=...; or paste just the code",
        )
    if "://" not in address:
        address = sign_in.redirect_uri.split("?", 1)[0] + "?" + address.lstrip("?")
    return {"authorization_response": address}


def _wrong_state() -> SignInError:
    return SignInError(
        "the pasted address belongs to another sign-in (its state does not match this one)",
        hint="paste the address your browser ended on after opening the link printed by this sign-in; or start again",
    )


def _exchange(sign_in: SignIn, grant: dict[str, str]) -> dict[str, Any]:
    """The token endpoint's answer to the code in ``grant``; its failures as :class:`SignInError`."""
    import requests
    from authlib.integrations.base_client import OAuthError
    from authlib.oauth2.rfc6749 import MismatchingStateException

    host = urlsplit(sign_in._token_url).netloc
    session = _session(sign_in._client_id, sign_in._client_secret, scope=sign_in._scope, redirect_uri=sign_in.redirect_uri, state=sign_in.state)
    try:
        token = session.fetch_token(sign_in._token_url, code_verifier=sign_in._code_verifier, timeout=TOKEN_TIMEOUT, **grant)
    except MismatchingStateException:
        raise _wrong_state() from None
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            raise SignInError(
                "the sign-in code was refused: it has expired or was already used",
                hint="codes work once and for a few minutes only: start again and paste the new address promptly",
            ) from None
        if exc.error in ("invalid_client", "unauthorized_client"):
            raise SignInError(
                f"{sign_in.label} refused the client ({exc.error})",
                hint="check --client-id and --client-secret (a client of type 'Desktop app'), or leave both out to use rclone's shared client",
            ) from None
        raise SignInError(
            f"{sign_in.label} refused to issue a token: {exc.error}" + (f" ({exc.description})" if exc.description else ""),
            hint="start again; if it happens again, use a client of your own (--client-id/--client-secret)",
        ) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        kind = "did not answer in time" if isinstance(exc, requests.Timeout) else "cannot be reached"
        raise SignInError(
            f"the token endpoint {host} {kind}: the code was not exchanged",
            hint=f"check that this machine can reach {host} (network, proxy: HTTPS_PROXY), then start again",
        ) from None
    except (requests.RequestException, ValueError) as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise SignInError(
            f"the token endpoint {host} gave an answer that is not a token" + (f" (HTTP {status})" if status else ""),
            hint="try again in a minute; if it persists, check the token_url option",
        ) from None
    finally:
        session.close()
    if not token.get("access_token"):
        raise SignInError(f"{sign_in.label} answered without an access token", hint="start again; if it happens again, use a client of your own")
    if not token.get("refresh_token"):
        raise SignInError(
            f"{sign_in.label} issued no refresh token: the remote would stop working within the hour",
            hint="remove the app's access in your account's security settings (third-party access), then sign in again",
        )
    return dict(token)


def _session(client_id: str, client_secret: str | None, *, scope: str | None, redirect_uri: str, state: str | None = None) -> Any:
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(
        client_id,
        client_secret,
        # In the body: every provider here takes it there (Box only there); a public client sends its id alone.
        token_endpoint_auth_method="client_secret_post" if client_secret else "none",
        scope=scope,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge_method="S256",
    )


def _new_verifier() -> str:
    from authlib.common.security import generate_token

    return generate_token(64)  # RFC 7636: 43 to 128 characters of [A-Za-z0-9-._~]


def _reveal(rclone: Rclone, obscured: str) -> str:
    """A client secret that rclone's source keeps obscured, in the clear.

    Only rclone's published secrets go through here: the obscured form is in
    rclone's source for everybody to see, so it may appear on a command line.
    """
    done = rclone.run(["reveal", obscured], timeout=30)
    if done.returncode != 0 or not done.stdout.strip():
        raise classify_failure(done.stderr, what="rclone could not reveal its client secret")
    return done.stdout.strip()


def _rclone_token(token: Mapping[str, Any]) -> str:
    """The token as rclone keeps it: ``{access_token, token_type, refresh_token, expiry}`` (Go's JSON of an oauth2.Token)."""
    expires_at = token.get("expires_at")
    if expires_at is None and token.get("expires_in") is not None:
        expires_at = time.time() + float(token["expires_in"])
    if expires_at is None:
        expiry = "0001-01-01T00:00:00Z"  # Go's zero time: rclone treats the token as never expiring
    else:
        expiry = _dt.datetime.fromtimestamp(float(expires_at), _dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    data = {
        "access_token": token["access_token"],
        "token_type": str(token.get("token_type") or "Bearer"),
        "refresh_token": token["refresh_token"],
        "expiry": expiry,
    }
    return json.dumps(data, separators=(",", ":"))

"""Remotes in the workspace's own rclone config: connect, list, remove.

Each remote is a section of ``.drivelab/rclone.conf`` (mode 0600) made by
``rclone config create``, so rclone itself runs its backend's setup on the
options; drivelab adds the folder on the remote that holds the drive
(``root``) and checks the credentials before keeping anything.

No secret is ever on a command line, where every local user can read it
(``/proc/PID/cmdline``): rclone gets the non-secret options as arguments and
the secret ones in its environment (``RCLONE_CONFIG_<NAME>_<KEY>``, readable by
the owner only), and Python writes the secret ones into the section, passwords
obscured by ``rclone obscure -``, which reads them on stdin
(:func:`create_remote`).
"""

from __future__ import annotations

import configparser
import functools
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivelab._atomic import write_text_atomic
from drivelab.drive._config import DrivePaths, RemoteEntry, load_settings, save_settings
from drivelab.drive._local import restore_local_drive
from drivelab.drive._rclone import FAST_FAIL, Rclone, classify_failure, config_env, find_rclone
from drivelab.drive._status import is_attached
from drivelab.errors import DriveError, DriveOptionError, RemoteError
from drivelab.workspace import Workspace

__all__ = ["REMOTE_TYPES", "TYPE_NAMES", "RemoteInfo", "connect", "list_remotes", "remove_remote", "get_remote", "import_remote", "check_remote_type"]

# drivelab's names for the types it knows -> rclone backend names.
REMOTE_TYPES = {
    "gdrive": "drive",
    "s3": "s3",
    "gcs": "google cloud storage",
    "webdav": "webdav",
    "sftp": "sftp",
    "local": "local",
}
TYPE_NAMES = "gdrive, s3, gcs, webdav, sftp, local, or any rclone backend name"
# Values that must never be printed nor be on a command line, by rclone option name (with
# every option rclone keeps obscured, its password options: see _password_options).
SECRET_KEYS = {
    "secret_access_key", "access_key_id", "session_token", "token", "client_secret", "pass", "password",
    "key_pem", "key_file_pass", "service_account_credentials", "bearer_token", "sse_customer_key",
    "sse_customer_key_base64", "access_token", "config_token", "config_credentials",
}
# Non-secret options worth showing in `drive list`.
SHOWN_KEYS = ("provider", "endpoint", "url", "host", "user", "region", "service_account_file", "vendor")

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass
class RemoteInfo:
    name: str
    type: str
    rclone_type: str
    root: str
    details: dict[str, str]
    """Non-secret options (endpoint, url, host, ...)."""
    is_drive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "rclone_type": self.rclone_type,
            "root": self.root,
            "details": self.details,
            "is_drive": self.is_drive,
        }


def _ensure_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _sections(rclone: Rclone, conf: Path) -> dict[str, dict[str, str]]:
    if not conf.exists():
        return {}
    data = rclone.json(["config", "dump"], config=conf)
    return {str(k): {str(a): str(b) for a, b in v.items()} for k, v in (data or {}).items()}  # type: ignore[union-attr]


def _check(rclone: Rclone, conf: Path, spec: str, *, create: bool, secrets: list[str]) -> None:
    """Reach the remote with its credentials; create the drive's root folder if asked."""
    done = rclone.run(["lsjson", "--max-depth", "1", *FAST_FAIL, spec], config=conf, timeout=60, secrets=secrets)
    if done.returncode == 0:
        return
    err = classify_failure(done.stderr, what=f"cannot reach {spec}", secrets=secrets)
    if create and "does not exist" in err.message:
        made = rclone.run(["mkdir", *FAST_FAIL, spec], config=conf, timeout=60, secrets=secrets)
        if made.returncode == 0:
            again = rclone.run(["lsjson", "--max-depth", "1", *FAST_FAIL, spec], config=conf, timeout=60, secrets=secrets)
            if again.returncode == 0:
                return
            raise classify_failure(again.stderr, what=f"cannot reach {spec}", secrets=secrets)
        raise classify_failure(made.stderr, what=f"cannot create {spec}", secrets=secrets)
    raise err


def parse_options(items: Iterable[str]) -> dict[str, str]:
    """``["key=value", ...]`` (as given to ``--option``) -> a dict; a malformed item is a :class:`RemoteError`."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RemoteError(f"option {item!r} is not key=value", hint="e.g. -o chunk_size=64M")
        options[key.strip()] = value
    return options


def connect(
    ws: Workspace,
    name: str,
    type: str | None,
    options: Mapping[str, str | None] | None = None,
    *,
    root: str = "",
    bucket: str | None = None,
    extra: Iterable[str] = (),
    check: bool = True,
    interactive: bool = False,
    replace: bool = False,
    ask_secret: Callable[[str], str] | None = None,
) -> RemoteInfo:
    """Add remote ``name`` of ``type`` to the workspace and check that it answers.

    ``type`` is one of :data:`REMOTE_TYPES` or any rclone backend name;
    ``options`` are rclone's option names for it (``endpoint``,
    ``access_key_id``, ``token``, ...; empty values are dropped), and ``extra``
    more of them as ``key=value`` strings (``--option``). ``root`` is
    the folder on the remote that holds the drive; ``bucket`` (S3, GCS) is put
    in front of it (both are created if missing). An S3 remote without a
    ``secret_access_key`` takes ``$AWS_SECRET_ACCESS_KEY``, else asks
    ``ask_secret(prompt)`` when given. With ``interactive``, rclone may ask
    questions on the terminal (the local browser sign-in for Google Drive).
    On any failure the remote is not kept.
    """
    if not type:
        raise RemoteError("which kind of storage is it?", hint=f"pass --type: {TYPE_NAMES} (or --rclone-remote NAME to copy one from your rclone config)")
    if not _NAME.match(name):
        raise RemoteError(
            f"{name!r} is not a valid remote name",
            hint="use letters, digits, '_', '-' and '.', starting with a letter, digit or '_'",
        )
    rclone_type = REMOTE_TYPES.get(type, type)
    opts = {k: v for k, v in (options or {}).items() if v is not None and v != ""}
    opts.update(parse_options(extra))
    if bucket:
        root = f"{bucket.strip('/')}/{root.strip('/')}".rstrip("/")
    if type == "s3" and "secret_access_key" not in opts:
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not secret and "access_key_id" in opts and ask_secret is not None:
            secret = ask_secret("S3 secret access key")
        if secret:
            opts["secret_access_key"] = secret
    if type == "webdav":
        opts.setdefault("vendor", "other")
    if type in ("s3", "gcs") and not root.strip("/"):
        raise RemoteError(f"a {type} remote needs a bucket", hint="pass --bucket NAME (optionally --root bucket/folder)")
    if type == "local":
        if not root:
            raise RemoteError("a local remote needs a folder", hint="pass --root /path/to/folder")
        root = str(Path(root).expanduser().resolve())
    if type == "s3":
        opts.setdefault("provider", "Other")
    if type == "gdrive":
        opts.setdefault("scope", "drive")
        if not interactive and not any(k in opts for k in ("token", "service_account_file", "service_account_credentials")):
            raise RemoteError(
                "Google Drive needs a sign-in: a token, a service account, or the browser flow",
                hint="sign in with begin_sign_in/finish_sign_in (`drivelab drive connect NAME -t gdrive` on a terminal prints a link to open on any device), "
                "or pass the output of `rclone authorize drive` with --token, or --service-account-file FILE, or use --browser on a machine with a browser",
            )
    paths = DrivePaths(ws)
    rclone = find_rclone()
    settings = load_settings(ws)
    conf = paths.rclone_conf
    _ensure_private(conf)
    existing = _sections(rclone, conf)
    if name in existing or name in settings.remotes:
        if not replace:
            raise RemoteError(f"a remote named {name!r} already exists", hint="pick another name, or pass --replace to overwrite it")
        if settings.remote == name and _is_attached(ws):
            raise RemoteError(f"{name!r} is the attached drive", hint="run `drivelab drive unmount` first")
    plain, hidden = split_secrets(rclone, rclone_type, opts)
    secrets = list(hidden.values())
    on_terminal = interactive and sys.stdin.isatty()
    done = create_remote(
        rclone, conf, name, rclone_type, plain, hidden, obscure=True, on_terminal=on_terminal, interactive=interactive, timeout=120,
    )
    if on_terminal and done.returncode != 0:
        _forget(rclone, conf, name)
        raise RemoteError(f"rclone could not configure {name!r} (exit code {done.returncode})", hint="follow rclone's questions again, or pass the options directly")
    if not on_terminal:
        if done.returncode != 0:
            _forget(rclone, conf, name)
            raise classify_failure(done.stderr, what=f"rclone rejected the settings of {name!r}", secrets=secrets)
        if '"Option"' in done.stdout and '"State": ""' not in done.stdout:
            # rclone wants to ask a question: the options given are not enough.
            _forget(rclone, conf, name)
            raise RemoteError(
                f"the options given are not enough to configure a {type} remote",
                hint="pass the missing options (see `drivelab drive connect --help`), or use --browser for the interactive sign-in",
            )
    os.chmod(conf, 0o600)
    entry = RemoteEntry(name=name, type=type, root=root.strip("/") if type != "local" else root)
    if check:
        try:
            _check(rclone, conf, entry.spec, create=True, secrets=secrets)
        except DriveError:
            _forget(rclone, conf, name)
            raise
    settings = load_settings(ws)
    settings.remotes[name] = entry
    save_settings(ws, settings)
    return _info(entry, _sections(rclone, conf).get(name, {}), settings.remote == name)


def import_remote(ws: Workspace, name: str, source: str, *, root: str = "", check: bool = True, replace: bool = False) -> RemoteInfo:
    """Copy remote ``source`` (``NAME`` or ``NAME:path``) from the user's own rclone config into the workspace."""
    rclone = find_rclone()
    src_name, _, src_path = source.partition(":")
    done = rclone.run(["config", "dump"])  # the user's default config
    if done.returncode != 0:
        raise classify_failure(done.stderr, what="cannot read your rclone config")
    import json

    try:
        sections = json.loads(done.stdout or "{}")
    except ValueError as exc:
        raise RemoteError("rclone config dump printed something that is not JSON", hint="run `rclone config dump` to see why") from exc
    if src_name not in sections:
        known = ", ".join(sorted(sections)) or "none"
        raise RemoteError(f"your rclone config has no remote named {src_name!r} (it has: {known})", hint="see `rclone listremotes`")
    section = dict(sections[src_name])
    rtype = section.pop("type")
    # Values in the dump are already obscured where rclone obscures them: keep them as they are.
    paths = DrivePaths(ws)
    _ensure_private(paths.rclone_conf)
    settings = load_settings(ws)
    if (name in settings.remotes or name in _sections(rclone, paths.rclone_conf)) and not replace:
        raise RemoteError(f"a remote named {name!r} already exists", hint="pick another name, or pass --replace to overwrite it")
    # Which of them are secret depends on the backend: none goes on the command line.
    made = create_remote(rclone, paths.rclone_conf, name, rtype, {}, section, obscure=False, timeout=60)
    if made.returncode != 0:
        _forget(rclone, paths.rclone_conf, name)
        raise classify_failure(made.stderr, what=f"cannot copy remote {src_name!r}")
    os.chmod(paths.rclone_conf, 0o600)
    entry = RemoteEntry(name=name, type=rtype, root=(root or src_path).strip("/"))
    if check:
        try:
            _check(rclone, paths.rclone_conf, entry.spec, create=True, secrets=list(section.values()))
        except DriveError:
            _forget(rclone, paths.rclone_conf, name)
            raise
    settings.remotes[name] = entry
    save_settings(ws, settings)
    return _info(entry, section | {"type": rtype}, settings.remote == name)


def split_secrets(rclone: Rclone, rclone_type: str, options: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``options`` as (those that may be on a command line, the secret ones): :data:`SECRET_KEYS` and the backend's passwords."""
    secret = SECRET_KEYS | _password_options(rclone, rclone_type)
    return {k: v for k, v in options.items() if k not in secret}, {k: v for k, v in options.items() if k in secret}


def create_remote(
    rclone: Rclone,
    conf: Path,
    name: str,
    rclone_type: str,
    plain: Mapping[str, str],
    hidden: Mapping[str, str],
    *,
    obscure: bool,
    on_terminal: bool = False,
    interactive: bool = False,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``rclone config create`` of remote ``name`` in ``conf``, with no secret on its command line.

    ``plain`` options are rclone's arguments. ``hidden`` ones reach rclone in
    its environment only (``RCLONE_CONFIG_<NAME>_<KEY>``), so that the
    backend's setup sees them as if given, and once rclone has made the section
    they are written into it here (mode 0600), unless rclone set them itself.
    With ``obscure`` the backend's password options are obscured first, with
    ``rclone obscure -`` reading each on stdin (as ``--obscure`` would have);
    without, the values are kept as given (a config dump: already obscured).
    ``on_terminal``: rclone asks its questions on this terminal, and only the
    exit code is known; else ``interactive`` False makes it answer them as JSON
    (``--non-interactive``). Failures are the caller's to read.
    """
    passwords = _password_options(rclone, rclone_type) if obscure else set()
    stored = {k: rclone.obscure(v) if k in passwords else v for k, v in hidden.items()}
    args = ["config", "create", name, rclone_type, *[f"{k}={v}" for k, v in plain.items()], "--obscure" if obscure else "--no-obscure"]
    if not interactive:
        args.append("--non-interactive")
    env = config_env(name, stored)
    if on_terminal:
        done = subprocess.CompletedProcess(args, rclone.on_terminal(args, config=conf, env=env), "", "")
    else:
        done = rclone.run(args, config=conf, timeout=timeout, secrets=[*hidden.values(), *stored.values()], env=env)
    if done.returncode == 0 and stored:
        made = read_sections(conf).get(name)
        if made is not None:
            update_section(conf, name, {k: v for k, v in stored.items() if k not in made})
    return done


@functools.lru_cache(maxsize=32)
def _password_options(rclone: Rclone, rclone_type: str) -> frozenset[str]:
    """The options of backend ``rclone_type`` that rclone keeps obscured in its config (``IsPassword``)."""
    for backend in rclone.json(["config", "providers"]) or []:  # type: ignore[union-attr]
        if rclone_type in (backend.get("Name"), backend.get("Prefix")):
            return frozenset(o["Name"] for o in backend.get("Options") or [] if o.get("IsPassword"))
    return frozenset()


# --- rclone.conf, edited without rclone -------------------------------------------------------


def _parser() -> configparser.ConfigParser:
    # As rclone writes it: "key = value", keys case-sensitive, '%' literal, no [DEFAULT] magic.
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), strict=False, default_section="\0no-default")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    return parser


def read_sections(conf: Path) -> dict[str, dict[str, str]]:
    """The sections of ``conf`` as written (passwords obscured), read without rclone."""
    parser = _parser()
    parser.read_string(conf.read_text(encoding="utf-8") if conf.exists() else "", source=str(conf))
    return {name: dict(parser.items(name)) for name in parser.sections()}


def _write_sections(conf: Path, sections: Mapping[str, Mapping[str, str]]) -> None:
    parser = _parser()
    for name, values in sections.items():
        parser[name] = dict(values)
    text = io.StringIO()
    parser.write(text)
    write_text_atomic(conf, text.getvalue(), private=True)
    os.chmod(conf, 0o600)


def update_section(conf: Path, name: str, values: Mapping[str, str]) -> None:
    """Set ``values`` in section ``name`` of ``conf`` (atomically, mode 0600): secrets never pass through rclone's argv."""
    sections = read_sections(conf)
    sections.setdefault(name, {}).update(values)
    _write_sections(conf, sections)


def put_section(conf: Path, name: str, values: Mapping[str, str]) -> None:
    """Make section ``name`` of ``conf`` exactly ``values``, keeping every other section as it is."""
    sections = read_sections(conf)
    sections[name] = dict(values)
    _write_sections(conf, sections)


def is_valid_name(name: str) -> bool:
    """Whether ``name`` can name a remote (rclone's rules, kept to what is safe in paths and URLs)."""
    return bool(_NAME.match(name))


def ensure_private_file(path: Path) -> None:
    """Create ``path`` if missing, readable by its owner only (0600) either way."""
    _ensure_private(path)


def existing_remote_names(ws: Workspace, rclone: Rclone) -> set[str]:
    """Names taken in the workspace: its remotes, and the sections of its rclone.conf."""
    return set(load_settings(ws).remotes) | set(_sections(rclone, DrivePaths(ws).rclone_conf))


def list_check(rclone: Rclone, conf: Path, spec: str, *, secrets: list[str]) -> None:
    """List ``spec`` (``name:root``) with the remotes of ``conf``, creating the root folder if missing; :class:`RemoteError` if refused."""
    _check(rclone, conf, spec, create=True, secrets=secrets)


def remote_info(entry: RemoteEntry, section: dict[str, str], is_drive: bool) -> RemoteInfo:
    """What may be shown of a remote: its :class:`RemoteInfo`, from its entry and rclone section (secrets left out)."""
    return _info(entry, section, is_drive)


def _forget(rclone: Rclone, conf: Path, name: str) -> None:
    rclone.run(["config", "delete", name], config=conf, timeout=30)


def _is_attached(ws: Workspace) -> bool:
    return is_attached(ws)


def _info(entry: RemoteEntry, section: dict[str, str], is_drive: bool) -> RemoteInfo:
    return RemoteInfo(
        name=entry.name,
        type=entry.type,
        rclone_type=section.get("type", REMOTE_TYPES.get(entry.type, entry.type)),
        root=entry.root,
        details={k: section[k] for k in SHOWN_KEYS if k in section},
        is_drive=is_drive,
    )


def list_remotes(ws: Workspace) -> list[RemoteInfo]:
    """The workspace's remotes, without their secrets."""
    settings = load_settings(ws)
    paths = DrivePaths(ws)
    sections = _sections(find_rclone(), paths.rclone_conf) if settings.remotes else {}
    return [_info(entry, sections.get(name, {}), settings.remote == name) for name, entry in sorted(settings.remotes.items())]


def get_remote(ws: Workspace, name: str) -> RemoteEntry:
    settings = load_settings(ws)
    if name not in settings.remotes:
        known = ", ".join(sorted(settings.remotes)) or "none yet"
        raise RemoteError(f"no remote named {name!r} in this workspace (known: {known})", hint="see `drivelab drive list`, or add it with `drivelab drive connect`")
    return settings.remotes[name]


def remove_remote(ws: Workspace, name: str) -> RemoteInfo:
    """Forget remote ``name``; if it was the drive, the drive becomes the local default again.

    Refused while it is attached. Nothing on the remote is touched.
    """
    entry = get_remote(ws, name)
    settings = load_settings(ws)
    if settings.remote == name and _is_attached(ws):
        raise RemoteError(f"{name!r} is the attached drive", hint="run `drivelab drive unmount` first")
    paths = DrivePaths(ws)
    rclone = find_rclone()
    section = _sections(rclone, paths.rclone_conf).get(name, {})
    _forget(rclone, paths.rclone_conf, name)
    was_drive = settings.remote == name
    del settings.remotes[name]
    if was_drive:
        settings.remote = None
        save_settings(ws, settings)
        restore_local_drive(ws)
    save_settings(ws, settings)
    return _info(entry, section, was_drive)


def check_remote_type(type: str) -> str:
    """``type`` if a remote can have it: drivelab's name for one (:data:`REMOTE_TYPES`) or a backend of the rclone found here.

    :class:`DriveOptionError` (a usage error) names the known ones otherwise, before rclone is asked to
    make the remote; an rclone that cannot list its backends leaves the check to it.
    """
    if type in REMOTE_TYPES or type in REMOTE_TYPES.values():
        return type
    listed = find_rclone().run(["help", "backends"], timeout=20)
    backends = sorted({m.group(1) for m in re.finditer(r"^  (\S+)  ", listed.stdout, re.M)}) if listed.returncode == 0 else []
    if not backends or type in backends:
        return type
    raise DriveOptionError(
        f"unknown remote type {type!r}",
        hint=f"use one of drivelab's: {', '.join(REMOTE_TYPES)}; or one of rclone's backends: {', '.join(backends)}",
    )

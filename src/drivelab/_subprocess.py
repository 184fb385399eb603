"""Run a child process: argv list (never a shell), output streamed line by line.

The last lines are kept so that a failure can show what the child said.
"""

from __future__ import annotations

import collections
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Completed", "stream"]


@dataclass
class Completed:
    argv: list[str]
    returncode: int
    tail: list[str] = field(default_factory=list)
    """The last lines of output (stdout and stderr merged)."""


def stream(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    keep: int = 40,
) -> Completed:
    """Run ``argv`` to completion, passing each output line to ``on_line``.

    ``env`` is added to the current environment. Ctrl+C reaches the child too
    (same process group); the child's exit code is returned, not raised.
    """
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    tail: collections.deque[str] = collections.deque(maxlen=keep)
    with subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if on_line:
                on_line(line)
        returncode = proc.wait()
    return Completed(list(argv), returncode, list(tail))

"""``%drivelab ARGS``: run a ``drivelab`` command from a notebook cell.

Runs ``python -m drivelab ARGS`` with the kernel's interpreter, in the kernel's
working folder, and shows its output (stdout and stderr, as it comes) in the
cell. A failing command shows its exit code, as a shell would.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

from drivelab._subprocess import stream


def drivelab_magic(line: str) -> None:
    """Run ``drivelab <line>``, e.g. ``%drivelab setup torch --dry-run``."""
    try:
        args = shlex.split(line)
    except ValueError as exc:
        print(f"%drivelab: cannot parse the command line: {exc}", file=sys.stderr)
        return
    done = stream(
        [sys.executable, "-m", "drivelab", *args],
        env={"COLUMNS": "100", "NO_COLOR": "1"},
        on_line=lambda text: print(text, flush=True),
    )
    if done.returncode != 0:
        print(f"(drivelab exited with code {done.returncode})", file=sys.stderr, flush=True)


def register(ipython: Any) -> None:
    ipython.register_magic_function(drivelab_magic, magic_kind="line", magic_name="drivelab")

"""One output layer: human text and progress on stderr, data (``--json``) on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from drivelab.errors import DrivelabError

JSON_VERSION = 1


class _Console:
    """The stderr console, built on first use: importing rich costs ~50 ms that
    ``--json`` runs never need."""

    _real: Any = None

    def __getattr__(self, name: str) -> Any:
        if _Console._real is None:
            from rich.console import Console

            _Console._real = Console(stderr=True, highlight=False, emoji=False)
        return getattr(_Console._real, name)


console: Any = _Console()


def rich_console() -> Any:
    """The real :class:`rich.console.Console` behind ``console`` (for rich widgets)."""
    console.file  # noqa: B018 -- builds it
    return _Console._real


def escape(text: str) -> str:
    """Rich markup escaping, loading rich only when there is text to show."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def emit_json(kind: str, payload: dict[str, Any]) -> None:
    """Write one JSON document to stdout, tagged with its kind and schema version."""
    sys.stdout.write(json.dumps({"kind": kind, "version": JSON_VERSION, **payload}, indent=2) + "\n")
    sys.stdout.flush()


def show_error(exc: DrivelabError) -> None:
    console.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {exc.hint}", soft_wrap=True)

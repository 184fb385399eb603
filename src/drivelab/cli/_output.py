"""One output layer: human text and progress on stderr, data (``--json``) on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from drivelab.errors import DrivelabError

JSON_VERSION = 1


# Width given to tables when stderr is a file or a pipe: wide enough that no row is ever wrapped.
_PIPE_WIDTH = 4096


class _Console:
    """The stderr console, built on first use: importing rich costs ~50 ms that
    ``--json`` runs never need.

    Lines are never wrapped by us (``soft_wrap``): a terminal wraps them itself,
    so a path or a command copied from the screen stays whole. Sent to a file
    or a pipe, tables are laid out without a width limit as well.
    """

    _real: Any = None

    def rule(self, title: str = "", **options: Any) -> None:
        """A titled rule across the terminal, or 80 columns in a file or a pipe.

        A title too long for the line (a deep path) is printed whole after a
        short rule, never cut with an ellipsis as rich's own rule would.
        """
        from rich.rule import Rule
        from rich.text import Text

        real = rich_console()
        width = real.width if real.is_terminal else 80
        text = Text.from_markup(title)
        if text.cell_len + 6 > width:
            real.print(Text("── ").append_text(text))
        else:
            real.print(Rule(text, **options), width=width)

    def __getattr__(self, name: str) -> Any:
        if _Console._real is None:
            from rich.console import Console

            width = None if sys.stderr.isatty() else _PIPE_WIDTH
            _Console._real = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True, width=width)
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
    # Messages quote user input and package specs (`drivelab[torch]`): never read them as markup.
    console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}")

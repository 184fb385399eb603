"""One output layer: human text and progress on stderr, data (``--json``) on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from drivelab.errors import DrivelabError

JSON_VERSION = 1

console = Console(stderr=True, highlight=False)


def emit_json(kind: str, payload: dict[str, Any]) -> None:
    """Write one JSON document to stdout, tagged with its kind and schema version."""
    sys.stdout.write(json.dumps({"kind": kind, "version": JSON_VERSION, **payload}, indent=2) + "\n")
    sys.stdout.flush()


def show_error(exc: DrivelabError) -> None:
    console.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {exc.hint}", soft_wrap=True)

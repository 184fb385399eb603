"""One output layer: human text and progress on stderr, data (``--json``) on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from drivelab.data import AttemptFailed, BytesReceived, FileDone, FileStarted, ProgressEvent
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


class DownloadBars:
    """A rich progress bar per file, driven by :mod:`drivelab.data` events."""

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<26}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> DownloadBars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, FileStarted):
            task = self.tasks.get(event.name)
            if task is None:
                task = self.tasks[event.name] = self.progress.add_task(event.name, total=event.total_bytes)
            self.progress.reset(task, total=event.total_bytes, completed=event.resumed_from)
        elif isinstance(event, BytesReceived):
            self.progress.advance(self.tasks[event.name], event.n)
        elif isinstance(event, AttemptFailed):
            self.progress.console.print(f"[yellow]{event.name}:[/] {event.source} failed: {event.reason}; trying the next mirror")
        elif isinstance(event, FileDone):
            if event.name not in self.tasks:
                self.tasks[event.name] = self.progress.add_task(event.name, total=1)
            task = self.tasks[event.name]
            total = self.progress.tasks[task].total or 1
            label = {"present": "already present", "resumed": "resumed"}.get(event.status, "")
            self.progress.update(task, completed=total, total=total, description=f"{event.name} {label}".strip())

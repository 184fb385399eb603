"""Download progress bars, driven by :mod:`drivelab.data` events (imported only by commands that download)."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from drivelab.cli._output import rich_console
from drivelab.data import AttemptFailed, BytesReceived, FileDone, FileStarted, ProgressEvent


class DownloadBars:
    """A rich progress bar per file, driven by :mod:`drivelab.data` events."""

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<26}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=rich_console(),
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

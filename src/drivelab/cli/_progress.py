"""Download progress bars, driven by :mod:`drivelab.data` events (imported only by commands that download)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from drivelab.cli._output import rich_console
from drivelab.data import AttemptFailed, BytesReceived, FileDone, FileInvalid, FileStarted, ProgressEvent

_NAME_WIDTH = 26


class DownloadBars:
    """A rich progress bar per file transferred, driven by :mod:`drivelab.data` events.

    A file already present and valid gets a line, not a bar; a file in place
    that failed its check is named with both MD5s, and where its replacement
    came from is said once it is verified.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(
            TextColumn(f"{{task.description:<{_NAME_WIDTH}}}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=rich_console(),
            disable=not enabled,
        )
        self.enabled = enabled
        self.tasks: dict[str, Any] = {}
        self.invalid: set[str] = set()

    def __enter__(self) -> DownloadBars:
        return self  # the bars start with the first transfer: present files draw none

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def _say(self, text: str) -> None:
        # Above the bars; said even with the bars off (-q): it is what happened, not progress.
        self.progress.console.print(text, soft_wrap=True)

    def __call__(self, event: ProgressEvent) -> None:
        if isinstance(event, FileInvalid):
            self.invalid.add(event.name)
            size = "" if event.size == event.expected_size else f"; {event.size} bytes, expected {event.expected_size}"
            self._say(
                f"[yellow]{event.name}:[/] {escape(str(event.path))} failed its MD5 check: {event.actual_md5}, "
                f"expected {event.expected_md5}{size}; fetching a verified copy to replace it"
            )
        elif isinstance(event, FileStarted):
            self.progress.start()  # idempotent
            task = self.tasks.get(event.name)
            if task is None:
                task = self.tasks[event.name] = self.progress.add_task(event.name, total=event.total_bytes)
            self.progress.reset(task, total=event.total_bytes, completed=event.resumed_from)
        elif isinstance(event, BytesReceived):
            self.progress.advance(self.tasks[event.name], event.n)
        elif isinstance(event, AttemptFailed):
            then = f"trying the next mirror ({event.mirrors_left} left)" if event.mirrors_left else "no mirror left"
            self._say(f"[yellow]{event.name}:[/] {escape(event.source)} failed: {escape(event.reason)}; {then}")
        elif isinstance(event, FileDone):
            self._done(event)

    def _done(self, event: FileDone) -> None:
        if event.status == "present":
            if self.enabled:
                self._say(f"{event.name:<{_NAME_WIDTH}} already present, MD5 verified")
            return
        task = self.tasks.get(event.name)
        if task is not None:
            total = self.progress.tasks[task].total or self.progress.tasks[task].completed
            label = " resumed" if event.status == "resumed" else ""
            self.progress.update(task, completed=total, total=total, description=f"{event.name}{label}")
        if event.name in self.invalid:
            self._say(f"[green]{event.name}:[/] replaced with a verified copy from {escape(event.source or '')}")

"""Progress events a fetch reports to an optional ``progress`` callable.

For each file, a fetch reports, in order:

* nothing but :class:`FileDone` (status ``"present"``) when the file is already
  there and verified;
* otherwise, first :class:`FileInvalid` if a file of that name is there but
  fails its check (it stays until a verified copy replaces it); then, per
  source tried: :class:`FileStarted`, any number of :class:`BytesReceived`,
  then either :class:`AttemptFailed` (saying how many sources are left; the
  next one starts with a new :class:`FileStarted`, which restarts the bar) or
  :class:`FileDone`.

Byte counts are of the compressed ``.gz`` as it travels. A resumed download
reports the bytes it already holds in ``FileStarted.resumed_from``, so a
progress bar can start there. If every source fails, the fetch raises instead
of sending ``FileDone``. Events are small frozen dataclasses; the callable runs
in the fetching thread and should return quickly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

__all__ = [
    "FileStatus",
    "FileInvalid",
    "FileStarted",
    "BytesReceived",
    "AttemptFailed",
    "FileDone",
    "ProgressEvent",
    "ProgressCallback",
]

FileStatus = Literal["downloaded", "resumed", "present"]


@dataclass(frozen=True)
class FileInvalid:
    """The file at ``path`` fails its check: it is fetched again, and replaced once a copy is verified."""

    name: str
    path: Path
    expected_md5: str
    actual_md5: str
    expected_size: int
    size: int


@dataclass(frozen=True)
class FileStarted:
    """A transfer of ``name`` from ``source`` begins.

    ``total_bytes`` is the whole compressed size when the source tells it
    (``None`` otherwise); ``resumed_from`` is how many of those bytes were
    already on disk from an earlier, interrupted try.
    """

    name: str
    source: str
    total_bytes: int | None
    resumed_from: int = 0


@dataclass(frozen=True)
class BytesReceived:
    """``n`` more compressed bytes of ``name`` arrived."""

    name: str
    n: int


@dataclass(frozen=True)
class AttemptFailed:
    """``source`` could not deliver a verified ``name``; the next source is tried, if any.

    ``mirrors_left`` counts the sources still to try for this file (0: it was the last).
    """

    name: str
    source: str
    reason: str
    mirrors_left: int


@dataclass(frozen=True)
class FileDone:
    """``name`` is in place and verified; ``source`` is ``None`` when it was present."""

    name: str
    status: FileStatus
    source: str | None


ProgressEvent = Union[FileInvalid, FileStarted, BytesReceived, AttemptFailed, FileDone]
ProgressCallback = Callable[[ProgressEvent], None]

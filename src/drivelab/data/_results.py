"""What a fetch returns: typed, and JSON-ready through ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from drivelab.data._events import FileInvalid, FileStatus

__all__ = ["FailedAttempt", "FileResult", "FetchResult"]


class FailedAttempt(NamedTuple):
    """One source that failed, and why (a tuple, as :class:`DownloadError` takes)."""

    source: str
    reason: str


@dataclass(frozen=True)
class FileResult:
    """How one file got into place.

    ``bytes_downloaded`` counts compressed bytes received in this call from the
    source that succeeded (bytes kept from an earlier, resumed try excluded).
    ``failed_attempts`` lists the sources tried before it, in order.
    ``replaced`` is the file that was in place and failed its check, if any.
    """

    name: str
    status: FileStatus
    source: str | None
    bytes_downloaded: int = 0
    failed_attempts: list[FailedAttempt] = field(default_factory=list)
    replaced: FileInvalid | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "bytes_downloaded": self.bytes_downloaded,
            "failed_attempts": [a._asdict() for a in self.failed_attempts],
            "replaced": _replaced_dict(self.replaced),
        }


def _replaced_dict(invalid: FileInvalid | None) -> dict[str, Any] | None:
    if invalid is None:
        return None
    return {
        "path": str(invalid.path),
        "expected_md5": invalid.expected_md5,
        "actual_md5": invalid.actual_md5,
        "expected_size": invalid.expected_size,
        "size": invalid.size,
    }


@dataclass(frozen=True)
class FetchResult:
    """A dataset whose files are all in ``raw_dir``, verified."""

    dataset: str
    raw_dir: Path
    files: list[FileResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "raw_dir": str(self.raw_dir),
            "files": [f.to_dict() for f in self.files],
        }

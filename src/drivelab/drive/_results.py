"""What flushing and detaching the drive did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlushResult", "DetachResult"]


@dataclass
class FlushResult:
    """What a flush waited for: files and bytes that were pending when it began or queued while it ran."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    mode: str = "local"
    names: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Sync mode: files kept side by side because both sides changed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mode": self.mode,
            "names": self.names,
            "conflicts": self.conflicts,
        }


@dataclass
class DetachResult(FlushResult):
    """What :func:`detach` did: the flush it waited for, and whether the drive is now detached."""

    detached: bool = True
    """False when other commands still use the drive: it was flushed and left attached for them."""
    forced: bool = False
    """Unmounted without every upload landing (``force``, the timeout, or a drive that did not answer)."""
    pending: int = 0
    """Uploads not yet on the remote when it returned; they are kept in ``cache`` and upload at the next mount."""
    cache: str | None = None
    users: list[dict[str, Any]] = field(default_factory=list)
    """The commands still using the drive (``pid``, ``what``, ``since``)."""
    reason: str | None = None
    """Why the unmount was forced."""
    was_attached: bool = True
    """False when nothing kept a remote drive attached (a local drive, or no watchdog and no rclone): nothing to flush or unmount."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "detached": self.detached,
            "forced": self.forced,
            "pending": self.pending,
            "cache": self.cache,
            "users": self.users,
            "reason": self.reason,
            "was_attached": self.was_attached,
        }

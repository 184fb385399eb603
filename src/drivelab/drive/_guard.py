"""Keep the folder beneath the mount point from taking writes while a remote is attached.

When rclone dies, the watchdog lazily unmounts the dead mount and ``drive/``
is, for a moment, the plain local folder beneath it. A write that landed there
would be hidden by the next mount, and would stop that mount (rclone refuses a
folder that is not empty). So, before rclone first mounts on it, that folder
is made immutable (``FS_IMMUTABLE_FL``, what ``chattr +i`` sets: it needs root
and a filesystem that keeps the flag -- ext4, xfs, btrfs, tmpfs), and the
flag is cleared once the remote is detached. When the remote is mounted over
local files (``--allow-non-empty``), every folder and file beneath ``drive/``
gets the flag too (not symbolic links, nor what another filesystem mounted
below holds): a write into an existing sub-folder, or to a local file, fails
as one into ``drive/`` does. ``drive/`` itself is flagged first and cleared
last, so a flag left below is always cleared with it.

What a writer sees while the mount is down (a few hundred milliseconds to a
few seconds): "Transport endpoint is not connected" (ENOTCONN) until the dead
mount is unmounted, then "Operation not permitted" (EPERM) for a new file or
folder directly in ``drive/`` or in a local sub-folder it mounts over, and
"No such file or directory" (ENOENT) for one in a sub-folder that only the
remote has, such as ``drive/runs/``, until the remount; a file held open
across the loss fails on its next write or on close. Nothing written during
the gap lands anywhere: the writer always gets an error.

Where the flag cannot be set there is no protection. Taking away the write
permission instead (``chmod a-w``) does not help: root ignores it, and
``fusermount3`` refuses to mount, for any other user, on a folder that user
cannot write ("user has no write access to mountpoint"). The watchdog then
records a warning, and a write during the gap can land beneath the mount
point; the watchdog moves such files aside before it remounts.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Guard", "protect", "release", "is_protected", "describe"]

_LONG = struct.calcsize("l")
# _IOR('f', 1, long) and _IOW('f', 2, long): the kernel reads and writes an int through them.
FS_IOC_GETFLAGS = (2 << 30) | (_LONG << 16) | (ord("f") << 8) | 1
FS_IOC_SETFLAGS = (1 << 30) | (_LONG << 16) | (ord("f") << 8) | 2
FS_IMMUTABLE_FL = 0x00000010


@dataclass(frozen=True)
class Guard:
    """How the folder beneath the mount point is protected: ``kind`` is ``immutable`` or ``none``."""

    kind: str
    why: str = ""
    """For ``none``: why the flag could not be set."""


def _flags(fd: int, new: int | None = None) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf, True)
    if new is not None and new != buf[0]:
        buf[0] = new
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, buf, True)
    return buf[0]


def _open_dir(folder: Path) -> int:
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def _beneath(folder: Path) -> Iterator[Path]:
    """The folders and plain files below ``folder`` on its own filesystem, deepest first (no symbolic links)."""
    with contextlib.suppress(OSError):
        device = folder.stat().st_dev
        with os.scandir(folder) as entries:
            for entry in list(entries):
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_dev == device:
                        yield from _beneath(Path(entry.path))
                        yield Path(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        yield Path(entry.path)


def _set_below(folder: Path, on: bool) -> None:
    """Set (or clear) the flag on everything :func:`_beneath` ``folder``; one that cannot take it is passed over."""
    for path in _beneath(folder):
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                flags = _flags(fd)
                _flags(fd, flags | FS_IMMUTABLE_FL if on else flags & ~FS_IMMUTABLE_FL)
            finally:
                os.close(fd)


def protect(folder: Path) -> Guard:
    """Make ``folder`` (not mounted on) and all beneath it refuse writes; says which protection is in force."""
    if not sys.platform.startswith("linux"):
        return Guard("none", f"the immutable flag is not used on {sys.platform}")
    try:
        fd = _open_dir(folder)
    except OSError as exc:
        return Guard("none", f"cannot open {folder}: {exc.strerror}")
    try:
        _flags(fd, _flags(fd) | FS_IMMUTABLE_FL)
        if _flags(fd) & FS_IMMUTABLE_FL:
            _set_below(folder, True)
            return Guard("immutable")
        return Guard("none", "the filesystem did not keep the immutable flag")
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return Guard("none", "setting the immutable flag needs root (CAP_LINUX_IMMUTABLE)")
        if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return Guard("none", "the filesystem of drive/ has no immutable flag")
        return Guard("none", f"the immutable flag could not be set: {exc.strerror}")
    finally:
        os.close(fd)


def release(folder: Path) -> bool:
    """Clear the flags :func:`protect` set on ``folder`` (not mounted on) and beneath it; True if it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fd = _open_dir(folder)
    except OSError:
        return False
    try:
        flags = _flags(fd)
        if not flags & FS_IMMUTABLE_FL:
            return False
        _set_below(folder, False)
        _flags(fd, flags & ~FS_IMMUTABLE_FL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def is_protected(folder: Path) -> str | None:
    """``immutable`` when ``folder`` carries the flag, else None (also when it is a live mount's root)."""
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError):
        fd = _open_dir(folder)
        try:
            return "immutable" if _flags(fd) & FS_IMMUTABLE_FL else None
        finally:
            os.close(fd)
    return None


def describe(kind: str, why: str = "") -> str:
    """One line for ``drive status``: what protects ``drive/`` while the mount is down."""
    if kind == "immutable":
        return (
            "drive/ beneath the mount is immutable, with all it holds: while the mount is down, writes to drive/ "
            "fail with an error"
        )
    reason = f" ({why})" if why else ""
    return (
        f"drive/ beneath the mount is not protected{reason}: a write made while the mount is down can land in the local "
        "folder; the watchdog moves such files to .drivelab/drive/stray/ before it remounts"
    )

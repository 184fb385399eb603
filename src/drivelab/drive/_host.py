"""Facts about this machine, its mounts and its processes: FUSE, dead mounts, unmounting, liveness."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from drivelab._background import pid_alive
from drivelab.drive import _guard
from drivelab.workspace import Workspace

__all__ = ["clear_dead_mount", "rclone_alive", "NO_FUSE_ENV", "fuse_available", "mount_broken", "mount_table_has", "unmount"]


NO_FUSE_ENV = "DRIVELAB_NO_FUSE"


def fuse_available() -> tuple[bool, str]:
    """``(True, "")`` when FUSE mounts can work here, else ``(False, why)``."""
    if os.environ.get(NO_FUSE_ENV, "").strip() not in ("", "0"):
        return False, f"${NO_FUSE_ENV} is set"
    if sys.platform == "darwin":
        if Path("/Library/Filesystems/macfuse.fs").exists() or Path("/Library/Filesystems/fuse-t.fs").exists():
            return True, ""
        return False, "macFUSE is not installed"
    if not sys.platform.startswith("linux"):
        return False, f"FUSE mounts are not supported by drivelab on {sys.platform}"
    if not Path("/dev/fuse").exists():
        return False, "/dev/fuse does not exist (a container without FUSE?)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "/dev/fuse is not readable and writable by this user"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return False, "fusermount3 is not installed (Debian/Ubuntu: apt-get install fuse3)"
    return True, ""


def mount_broken(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno in (errno.ENOTCONN, errno.EIO)
    return False


def mount_table_has(path: Path) -> bool:
    """Whether ``path`` is a mount point, from the kernel's table: never a stat into a mount that may hang."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return os.path.ismount(path)
    target = str(path)
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
            if point == target:
                return True
    return False


def unmount(path: Path, *, lazy: bool = False, keep_guard: bool = False) -> bool:
    """Unmount ``path``; once it is the plain folder again it takes writes, unless ``keep_guard`` (a remount follows)."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool:
        argv = [tool, "-u", *(["-z"] if lazy else []), str(path)]
    elif sys.platform == "darwin":
        argv = ["umount", *(["-f"] if lazy else []), str(path)]
    else:
        return False
    done = subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    if done and not keep_guard and not os.path.ismount(path):
        _guard.release(path)
    return done


def clear_dead_mount(path: Path, *, keep_guard: bool = False) -> None:
    """Lazily unmount whatever is mounted at ``path``, dead or alive (see :func:`unmount` for ``keep_guard``)."""
    if mount_table_has(path) or mount_broken(path):
        unmount(path, lazy=True, keep_guard=keep_guard)


def rclone_alive(ws: Workspace, pid: Any) -> bool:
    """Whether ``pid`` is still the rclone that mounts this workspace's drive (pids get reused)."""
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return sys.platform != "linux"
    return b"mount" in argv and str(ws.drive).encode() in argv

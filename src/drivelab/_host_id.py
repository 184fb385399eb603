"""Which machine this is: its host name and the kernel's boot id.

A workspace on a shared filesystem (an NFS home) is seen by every node of a
cluster, while process ids mean something on one machine only, and only until
it reboots. A record that holds a pid therefore also holds the host identity
of the process that wrote it::

    {"name": "node07", "boot": "66d88f65-aa39-4282-bfd8-d4bd215fcec4"}

and a pid is judged (alive, to be signalled) only when that identity is this
machine's now. A record of another host is never judged here; one of an
earlier boot of this host names a process that is simply gone.

The boot id is Linux's ``/proc/sys/kernel/random/boot_id`` (new at every
boot); elsewhere it is the boot time the kernel reports, where it can be read.
"""

from __future__ import annotations

import functools
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["HostId", "this_host", "host_name", "boot_id", "is_this_host", "folder_name"]


@dataclass(frozen=True)
class HostId:
    name: str
    boot: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "boot": self.boot}


def host_name() -> str:
    """This machine's host name (as ``hostname`` prints it)."""
    return socket.gethostname() or "localhost"


@functools.lru_cache(maxsize=1)
def boot_id() -> str:
    """An id of this boot of the machine: it changes at every reboot ('' where none can be read)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            done = subprocess.run(["sysctl", "-n", "kern.boottime"], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()
    return ""


def this_host() -> HostId:
    """This machine now: its host name and boot id."""
    return HostId(host_name(), boot_id())


def is_this_host(record: Any) -> bool:
    """Whether ``record`` (a :meth:`HostId.to_dict`) names this machine in this boot; False for anything else."""
    if not isinstance(record, dict):
        return False
    here = this_host()
    return record.get("name") == here.name and record.get("boot") == here.boot


def folder_name(name: str) -> str:
    """``name`` made safe as one folder name (a host name may hold any character)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return safe or "unknown-host"

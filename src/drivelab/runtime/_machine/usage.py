"""What the machine is using now: memory, CPU, the workspace's disk, and each GPU's memory and load.

For the lab's status bar, asked every few seconds: every reading is cheap (no
subprocess, never torch). GPUs: NVIDIA through NVML (``nvidia-ml-py``), AMD
through the amdgpu driver's sysfs files; a GPU whose numbers cannot be read
is listed with ``None`` for them, and a missing driver means no GPU listed.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GpuUsage", "Usage", "resource_usage"]


@dataclass(frozen=True)
class GpuUsage:
    index: int
    name: str
    vendor: str
    memory_used: int | None = None
    memory_total: int | None = None
    utilization: float | None = None
    """Percent of the last sampling period the GPU was busy."""


@dataclass(frozen=True)
class Usage:
    memory_used: int
    memory_total: int
    cpu_percent: float
    """Of the whole machine, since the previous reading in this process."""
    cores: int
    disk_free: int
    disk_total: int
    disk_path: str
    gpus: list[GpuUsage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory": {"used": self.memory_used, "total": self.memory_total},
            "cpu": {"percent": self.cpu_percent, "cores": self.cores},
            "disk": {"free": self.disk_free, "total": self.disk_total, "path": self.disk_path},
            "gpus": [asdict(g) for g in self.gpus],
        }


def resource_usage(path: str | Path, *, nvml: Any = None, sysfs: Path = Path("/sys")) -> Usage:
    """Memory, CPU, the disk holding ``path`` (never a drive's mount: give a local folder) and the GPUs, now.

    ``nvml`` (the ``pynvml`` module by default) and ``sysfs`` are where GPUs are read from; tests give fakes.
    """
    import psutil

    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(path)
    return Usage(
        memory_used=int(memory.total - memory.available),
        memory_total=int(memory.total),
        cpu_percent=float(psutil.cpu_percent(interval=None)),
        cores=psutil.cpu_count() or 1,
        disk_free=int(disk.free),
        disk_total=int(disk.total),
        disk_path=str(path),
        gpus=[*_nvidia(nvml), *_amd(sysfs)],
    )


def _nvidia(nvml: Any) -> list[GpuUsage]:
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return []
    try:
        nvml.nvmlInit()
    except Exception:  # noqa: BLE001 -- no driver, no library: no NVIDIA GPU to show
        return []
    found = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            used = total = util = None
            with contextlib.suppress(Exception):
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                used, total = int(memory.used), int(memory.total)
            with contextlib.suppress(Exception):
                util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            found.append(GpuUsage(index, name.decode() if isinstance(name, bytes) else str(name), "nvidia", used, total, util))
    except Exception:  # noqa: BLE001 -- a driver that stops answering mid-way: what was read so far
        pass
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    return found


def _amd(sysfs: Path) -> list[GpuUsage]:
    found = []
    for card in sorted((sysfs / "class" / "drm").glob("card[0-9]*")):
        device = card / "device"
        if "-" in card.name or _read(device / "vendor") != "0x1002" or not (device / "mem_info_vram_total").exists():
            continue  # a connector (card0-DP-1), another vendor's card, or not an amdgpu compute device
        used, total, busy = _read(device / "mem_info_vram_used"), _read(device / "mem_info_vram_total"), _read(device / "gpu_busy_percent")
        name = _read(device / "product_name") or f"AMD GPU {_read(device / 'device') or ''}".strip()
        found.append(
            GpuUsage(
                len(found),
                name,
                "amd",
                int(used) if used and used.isdigit() else None,
                int(total) if total and total.isdigit() else None,
                float(busy) if busy and busy.isdigit() else None,
            )
        )
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None

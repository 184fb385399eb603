"""The status bar's readings: memory, CPU and disk of this machine; GPUs from a fake NVML and a fake amdgpu sysfs."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from drivelab.runtime import GpuUsage, resource_usage


class FakeNvml:
    """NVML's calls drivelab makes, over a list of GPUs; ``broken`` GPUs fail their memory query."""

    def __init__(self, gpus: list[dict], *, init_fails: bool = False) -> None:
        self.gpus, self.init_fails, self.shut = gpus, init_fails, False

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: dict) -> bytes:
        return handle["name"].encode()

    def nvmlDeviceGetMemoryInfo(self, handle: dict) -> SimpleNamespace:
        if handle.get("broken"):
            raise RuntimeError("GPU is lost")
        return SimpleNamespace(used=handle["used"], total=handle["total"], free=handle["total"] - handle["used"])

    def nvmlDeviceGetUtilizationRates(self, handle: dict) -> SimpleNamespace:
        if handle.get("broken"):
            raise RuntimeError("GPU is lost")
        return SimpleNamespace(gpu=handle["util"], memory=0)


def amd_card(sysfs: Path, name: str, vendor: str, **files: str) -> None:
    device = sysfs / "class" / "drm" / name / "device"
    device.mkdir(parents=True)
    (device / "vendor").write_text(vendor + "\n")
    for key, value in files.items():
        (device / key).write_text(value + "\n")


def test_memory_cpu_and_disk_are_this_machines(tmp_path: Path):
    usage = resource_usage(tmp_path, nvml=FakeNvml([]), sysfs=tmp_path / "nosys")
    assert usage.memory_total == psutil.virtual_memory().total and 0 < usage.memory_used <= usage.memory_total
    assert 0 <= usage.cpu_percent <= 100 and usage.cores == psutil.cpu_count()
    assert usage.disk_total == shutil.disk_usage(tmp_path).total and usage.disk_path == str(tmp_path)
    assert usage.gpus == []
    assert set(usage.to_dict()) == {"memory", "cpu", "disk", "gpus"}


def test_nvidia_gpus_from_nvml_a_lost_one_keeps_its_place(tmp_path: Path):
    nvml = FakeNvml([
        {"name": "NVIDIA H100 80GB HBM3", "used": 3 * 2**30, "total": 80 * 2**30, "util": 35},
        {"name": "NVIDIA H100 80GB HBM3", "broken": True},
    ])  # fmt: skip
    usage = resource_usage(tmp_path, nvml=nvml, sysfs=tmp_path / "nosys")
    assert usage.gpus == [
        GpuUsage(0, "NVIDIA H100 80GB HBM3", "nvidia", 3 * 2**30, 80 * 2**30, 35.0),
        GpuUsage(1, "NVIDIA H100 80GB HBM3", "nvidia", None, None, None),
    ]
    assert nvml.shut
    assert usage.to_dict()["gpus"][0] == {"index": 0, "name": "NVIDIA H100 80GB HBM3", "vendor": "nvidia",
                                          "memory_used": 3 * 2**30, "memory_total": 80 * 2**30, "utilization": 35.0}  # fmt: skip


def test_no_nvidia_driver_means_no_nvidia_gpu(tmp_path: Path):
    assert resource_usage(tmp_path, nvml=FakeNvml([], init_fails=True), sysfs=tmp_path / "nosys").gpus == []


@pytest.mark.parametrize("busy", ["17", "unreadable"])
def test_amd_gpus_from_sysfs_connectors_and_other_vendors_left_out(tmp_path: Path, busy: str):
    sysfs = tmp_path / "sys"
    amd_card(sysfs, "card0", "0x1002", mem_info_vram_used=str(2**30), mem_info_vram_total=str(64 * 2**30), product_name="AMD Instinct MI210",
             **({"gpu_busy_percent": busy} if busy.isdigit() else {}))  # fmt: skip
    amd_card(sysfs, "card0-DP-1", "0x1002", mem_info_vram_total="1")  # a connector of card0
    amd_card(sysfs, "card1", "0x10de", mem_info_vram_total="1")  # not AMD
    amd_card(sysfs, "card2", "0x1002")  # AMD, but no VRAM files: not a compute device
    usage = resource_usage(tmp_path, nvml=FakeNvml([]), sysfs=sysfs)
    assert usage.gpus == [GpuUsage(0, "AMD Instinct MI210", "amd", 2**30, 64 * 2**30, 17.0 if busy.isdigit() else None)]

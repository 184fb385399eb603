"""Intel GPUs that PyTorch's XPU backend supports, found by PCI device ID.

Linux only: each ``/sys/class/drm/cardN/device`` with vendor ``0x8086`` whose
device ID belongs to a family PyTorch's XPU wheels support — Arc A-series
(Alchemist) and B-series (Battlemage), Data Center GPU Flex and Max, and the
Arc iGPUs of Core Ultra processors (Meteor Lake, Arrow Lake, Lunar Lake,
Panther Lake). Older integrated GPUs (UHD, Iris Xe) are not listed: XPU
wheels do not support them. IDs from the kernel's ``include/drm/intel/pciids.h``.
"""

from __future__ import annotations

import re

from drivelab.runtime._machine.probe import Probe
from drivelab.runtime._model.machine import XpuInfo

__all__ = ["detect_xpu", "xpu_device_name"]

DRM = "/sys/class/drm"
INTEL_VENDOR = 0x8086

_NAMED = {
    0x56A0: "Intel Arc A770",
    0x56A1: "Intel Arc A750",
    0x56A5: "Intel Arc A380",
    0x56A6: "Intel Arc A310",
    0x56C0: "Intel Data Center GPU Flex 170",
    0x56C2: "Intel Data Center GPU Flex 170V",
    0x56C1: "Intel Data Center GPU Flex 140",
    0x0BD5: "Intel Data Center GPU Max 1550",
    0x0BDA: "Intel Data Center GPU Max 1100",
    0xE20B: "Intel Arc B580",
    0xE20C: "Intel Arc B570",
}


def _ids(*spans: tuple[int, int]) -> frozenset[int]:
    return frozenset(i for first, last in spans for i in range(first, last + 1))


_FAMILIES: tuple[tuple[frozenset[int], str], ...] = (
    (_ids((0x5690, 0x5697), (0x56A0, 0x56A6), (0x56B0, 0x56B3), (0x56BA, 0x56BF)), "Intel Arc A-series GPU (Alchemist)"),
    (_ids((0x56C0, 0x56C2)), "Intel Data Center GPU Flex"),
    (_ids((0x0B69, 0x0B69), (0x0B6E, 0x0B6E), (0x0BD4, 0x0BDB), (0x0BE0, 0x0BE1), (0x0BE5, 0x0BE5)), "Intel Data Center GPU Max"),
    (_ids((0xE202, 0xE202), (0xE209, 0xE209), (0xE20B, 0xE20D), (0xE210, 0xE216), (0xE220, 0xE223)), "Intel Arc B-series GPU (Battlemage)"),
    (_ids((0x7D40, 0x7D40), (0x7D45, 0x7D45), (0x7D55, 0x7D55), (0x7D60, 0x7D60), (0x7DD5, 0x7DD5)), "Intel Arc Graphics (Core Ultra, Meteor Lake)"),
    (_ids((0x7D41, 0x7D41), (0x7D51, 0x7D51), (0x7D67, 0x7D67), (0x7DD1, 0x7DD1), (0xB640, 0xB640)), "Intel Arc Graphics (Core Ultra 200, Arrow Lake)"),
    (_ids((0x6420, 0x6420), (0x64A0, 0x64A0), (0x64B0, 0x64B0)), "Intel Arc Graphics (Core Ultra 200V, Lunar Lake)"),
    (_ids((0xB080, 0xB082), (0xB090, 0xB092), (0xB0A0, 0xB0A2)), "Intel Arc Graphics (Core Ultra series 3, Panther Lake)"),
)


def xpu_device_name(device_id: int) -> str | None:
    """The name of an Intel GPU PyTorch's XPU backend supports, or None for any other device."""
    for ids, family in _FAMILIES:
        if device_id in ids:
            return _NAMED.get(device_id, f"{family} [{device_id:#06x}]")
    return None


def detect_xpu(probe: Probe) -> XpuInfo | None:
    """The supported Intel GPUs in this machine, or None when there is none."""
    devices = []
    for card in probe.list_dir(DRM) or ():
        if not re.fullmatch(r"card\d+", card):
            continue  # connectors (card0-DP-1) and render nodes
        vendor = _hex(probe.read_text(f"{DRM}/{card}/device/vendor"))
        device = _hex(probe.read_text(f"{DRM}/{card}/device/device"))
        if vendor != INTEL_VENDOR or device is None:
            continue
        name = xpu_device_name(device)
        if name:
            devices.append(name)
    return XpuInfo(devices=tuple(devices)) if devices else None


def _hex(text: str | None) -> int | None:
    try:
        return int((text or "").strip(), 16)
    except ValueError:
        return None

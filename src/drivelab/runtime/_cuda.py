"""NVIDIA's published CUDA facts, in one place: which driver runs which CUDA, and which kernels a GPU runs.

Read by the NVIDIA probe (the CUDA version of a driver no probe asked directly),
by the release table (the driver each CUDA build needs) and by the rule of what
runs where (:mod:`drivelab.runtime._builds.compat`). Nothing here looks at a
machine or a build: these are NVIDIA's tables and rules, with their sources.

Sources:

[driver]  NVIDIA CUDA Toolkit Release Notes, Table 3 "CUDA Toolkit and Corresponding
          Driver Versions", column "Linux x86_64 Driver Version", the GA row of each
          release, as the notes of CUDA 13.2 Update 2 print it
          (https://docs.nvidia.com/cuda/archive/13.2.2/cuda-toolkit-release-notes/).
[minor]   NVIDIA CUDA Compatibility guide, "Minor Version Compatibility" (CUDA 11.x
          ">= 450", 12.x ">= 525", 13.x ">= 580"), and the release notes' Table 2
          "CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version
          Compatibility" with its footnote: CUDA 11.x from the Tesla Recommended
          Drivers 450.80.02 (Linux) / 452.39 (Windows); CUDA 12.x from 525.60.13 /
          527.41, CUDA 12.0 GA's drivers; CUDA 13.x from 580.65.06 (Linux), CUDA 13.0
          GA's driver. From CUDA 13.1 the toolkit bundles no Windows driver, so no
          finer Windows figure than the guide's ">= 580" is used.
[binary]  NVIDIA CUDA C Programming Guide, "Binary Compatibility" and "PTX Compatibility".
[arch]    NVIDIA CUDA Toolkit release notes and features archive, the release that
          first targets each architecture: 8.0 in 11.0, 8.6 in 11.1, 8.9 and 9.0 in
          11.8, 10.0 and 12.0 in 12.8, 10.3 and 12.1 in 12.9, 11.0 in 13.0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = [
    "CC",
    "CUDA_DRIVERS",
    "MINOR_COMPAT_DRIVERS",
    "ARCH_FIRST_CUDA",
    "kernel_runs",
    "driver_tuple",
    "cuda_for_driver",
    "min_driver_for_cuda",
    "minor_compat_minimum",
]

CC = tuple[int, int]
"""A compute capability or a CUDA version: ``(9, 0)``, ``(12, 8)``."""


# ------------------------------------------------------------------- driver -> CUDA

CUDA_DRIVERS: tuple[tuple[CC, str], ...] = (
    ((9, 0), "384.81"),
    ((9, 1), "390.46"),
    ((9, 2), "396.26"),
    ((10, 0), "410.48"),
    ((10, 1), "418.39"),
    ((10, 2), "440.33"),
    ((11, 0), "450.51.05"),  # 11.0.2 GA (11.0.1 RC had 450.36.06)
    ((11, 1), "455.23"),
    ((11, 2), "460.27.03"),
    ((11, 3), "465.19.01"),
    ((11, 4), "470.42.01"),
    ((11, 5), "495.29.05"),
    ((11, 6), "510.39.01"),
    ((11, 7), "515.43.04"),
    ((11, 8), "520.61.05"),
    ((12, 0), "525.60.13"),
    ((12, 1), "530.30.02"),
    ((12, 2), "535.54.03"),
    ((12, 3), "545.23.06"),
    ((12, 4), "550.54.14"),
    ((12, 5), "555.42.02"),
    ((12, 6), "560.28.03"),
    ((12, 8), "570.26"),
    ((12, 9), "575.51.03"),
    ((13, 0), "580.65.06"),
    ((13, 1), "590.44.01"),
    ((13, 2), "595.45.04"),
    ((13, 3), "610.43.02"),
)
"""The oldest Linux x86_64 driver that runs each CUDA version natively (the GA release's) [driver].

Rows 9.0 to 13.2 are Table 3 as the 13.2 Update 2 notes print it. NVIDIA published
no CUDA 12.7: an R565 driver, which reports "12.7", reads as 12.6 here. The 13.3
row (610.43.02) comes from the table this one replaces, which named the same
source; the 13.2 Update 2 notes predate it, so it is not checked against them.
Later releases are not listed: a newer driver reads as 13.3, the newest CUDA the
table vouches for. A Windows driver of a branch is numbered
at or above the Linux one of the same release (all rows but 11.8 GA, Windows
520.06), so it reads right against these figures, or one release low. NVML and
nvidia-smi report the driver's own CUDA version and are asked first; this table
answers only where neither could.
"""

MINOR_COMPAT_DRIVERS: dict[int, tuple[str, str]] = {
    11: ("450.80.02", "452.39"),
    12: ("525.60.13", "527.41"),
    13: ("580.65.06", "580"),
}
"""CUDA major -> the (Linux, Windows) driver from which it runs every build of that major [minor]."""

ARCH_FIRST_CUDA: dict[CC, CC] = {
    (8, 0): (11, 0),
    (8, 6): (11, 1),
    (8, 9): (11, 8),
    (9, 0): (11, 8),
    (10, 0): (12, 8),
    (12, 0): (12, 8),
    (10, 3): (12, 9),
    (12, 1): (12, 9),
    (11, 0): (13, 0),
}
"""GPU architecture -> the first CUDA version that knows it [arch]. Older architectures
predate every CUDA version drivelab plans for."""


def driver_tuple(version: str) -> tuple[int, ...]:
    """``"580.65.06"`` -> ``(580, 65, 6)``, for comparing driver versions."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def cuda_for_driver(driver_version: str) -> CC | None:
    """The newest CUDA version an NVIDIA driver runs natively, by :data:`CUDA_DRIVERS`: ``"580.65.06"`` -> ``(13, 0)``.

    None for a driver older than the table or a version that is not one. Only a
    fallback: NVML's own answer (``cuda_driver_version``) is better. CUDA's
    minor-version compatibility stretches it for builds of the same major (see
    :func:`minor_compat_minimum`).
    """
    have = driver_tuple(driver_version)
    if not have:
        return None
    best: CC | None = None
    for cuda, minimum in CUDA_DRIVERS:
        if have >= driver_tuple(minimum):
            best = cuda
    return best


def min_driver_for_cuda(cuda: Sequence[int]) -> str | None:
    """The oldest Linux driver that runs CUDA ``cuda`` natively (that of the first release at or after it)."""
    want = tuple(cuda[:2])
    for version, minimum in CUDA_DRIVERS:
        if version >= want:
            return minimum
    return None


def minor_compat_minimum(major: int, *, windows: bool = False) -> str | None:
    """The oldest driver that runs every CUDA ``major``.x build through minor-version compatibility [minor]."""
    floors = MINOR_COMPAT_DRIVERS.get(major)
    return None if floors is None else floors[1 if windows else 0]


# --------------------------------------------------------------------------- kernels


def kernel_runs(cc: CC, sm: Iterable[CC], ptx: Iterable[CC] = ()) -> bool:
    """Whether a GPU of compute capability ``cc`` finds a kernel among these archs [binary].

    A cubin for X.y runs on X.z with z >= y (same major only): sm_86 serves an
    RTX 4090 (8.9), sm_60 serves a GTX 1080 (6.1). PTX for X.y is JIT-compiled
    for any GPU of capability >= X.y, never an older one. Pass no ``ptx`` where
    the driver cannot JIT-compile the build's PTX (minor-version compatibility).
    """
    major, minor = cc
    if any(a == major and b <= minor for a, b in sm):
        return True
    return any((major, minor) >= p for p in ptx)

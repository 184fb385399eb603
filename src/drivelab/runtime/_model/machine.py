"""What the runtime layer knows about a machine: plain, JSON-ready dataclasses.

The probes (:mod:`drivelab.runtime._machine`) fill these in; planning and
verifying read them. Versions are tuples of ints where they are compared (``(12, 8)``) and
strings where they are only shown (a driver version ``"580.65.06"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "NvidiaGpu",
    "NvidiaInfo",
    "AmdGpu",
    "AmdInfo",
    "MpsInfo",
    "XpuInfo",
    "SystemInfo",
    "TorchInstall",
    "MachineInfo",
]


@dataclass(frozen=True)
class NvidiaGpu:
    index: int
    name: str
    memory_mib: int | None = None
    compute_capability: tuple[int, int] | None = None
    """``(9, 0)`` for an H100; None when no probe could tell."""


@dataclass(frozen=True)
class NvidiaInfo:
    driver_version: str | None
    """The kernel driver, e.g. ``"580.65.06"``; None when not loaded."""
    cuda_driver_version: tuple[int, int] | None
    """The newest CUDA version this driver supports, e.g. ``(13, 0)``."""
    gpus: tuple[NvidiaGpu, ...] = ()
    source: str = ""
    """Which probe answered: ``"nvml"``, ``"procfs"``, ``"nvidia-smi"``."""
    problems: tuple[str, ...] = ()
    """What went wrong while probing, in plain words (a broken nvidia-smi,
    a driver/library version mismatch, ...)."""


@dataclass(frozen=True)
class AmdGpu:
    name: str
    gfx: str
    """The LLVM target, e.g. ``"gfx90a"``."""


@dataclass(frozen=True)
class AmdInfo:
    rocm_version: tuple[int, int] | None
    gpus: tuple[AmdGpu, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class MpsInfo:
    """Apple's Metal backend: macOS on Apple silicon."""

    available: bool
    macos_version: str | None = None


@dataclass(frozen=True)
class XpuInfo:
    """Intel GPUs that PyTorch's XPU backend supports."""

    devices: tuple[str, ...] = ()


CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimddp", "bf16", "i8mm", "sve", "sve2")
"""CPU features PyTorch's kernels pick among (``/proc/cpuinfo`` names: x86's ``flags``, Arm's ``Features``):
vector width (AVX2, AVX-512, NEON/SVE), and the bfloat16 and int8 matrix units."""


@dataclass(frozen=True)
class SystemInfo:
    os: str
    """``"Linux"``, ``"Darwin"``, ``"Windows"``."""
    os_release: str
    arch: str
    """``"x86_64"``, ``"arm64"``, ``"aarch64"``."""
    python_version: str
    cpu_model: str | None = None
    cpu_cores: int | None = None
    cpu_flags: tuple[str, ...] = ()
    """The instruction sets that decide PyTorch's speed here, of those the CPU reports (:data:`CPU_FLAGS`), in that order."""
    ram_bytes: int | None = None
    disk_free_bytes: dict[str, int] = field(default_factory=dict)
    """Free bytes per named folder (``"workspace"``, ``"scratch"``)."""
    wsl: bool = False

    @property
    def python_tag(self) -> str:
        major, minor = self.python_version.split(".")[:2]
        return f"cp{major}{minor}"


@dataclass(frozen=True)
class TorchInstall:
    """What package metadata says is installed (torch itself is not imported)."""

    torch: str | None
    """``"2.13.0+cpu"`` or None when absent."""
    build: str | None = None
    """``"cpu"``, ``"cu128"``, ``"rocm6.4"``, ``"xpu"``, ``"default"`` (no local tag), or None."""
    torchvision: str | None = None
    torchaudio: str | None = None


@dataclass(frozen=True)
class MachineInfo:
    system: SystemInfo
    nvidia: NvidiaInfo | None = None
    amd: AmdInfo | None = None
    mps: MpsInfo | None = None
    xpu: XpuInfo | None = None
    torch: TorchInstall | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

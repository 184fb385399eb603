"""The machine apart from its accelerators: OS, CPU model and flags, RAM, free disk, WSL, Apple MPS, the installed PyTorch.

Every look goes through the :class:`~drivelab.runtime._machine.probe.Probe`;
:func:`drivelab.runtime._machine.detect.detect_machine` puts these together
with the NVIDIA, AMD and Intel probes.
"""

from __future__ import annotations

import re
from pathlib import Path

from drivelab.runtime._machine.probe import PlatformFacts, Probe
from drivelab.runtime._model.machine import CPU_FLAGS, MpsInfo, SystemInfo, TorchInstall

__all__ = ["detect_system", "detect_mps", "detect_torch", "torch_build", "MPS_MIN_MACOS"]

MPS_MIN_MACOS = (12, 3)
"""The first macOS with the Metal Performance Shaders backend PyTorch uses."""

_ARCH = {"amd64": "x86_64", "x64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "aarch64"}

# /proc/cpuinfo on ARM names no model: (implementer, part) -> core.
_ARM_CORES = {
    (0x41, 0xD03): "ARM Cortex-A53",
    (0x41, 0xD05): "ARM Cortex-A55",
    (0x41, 0xD08): "ARM Cortex-A72",
    (0x41, 0xD0B): "ARM Cortex-A76",
    (0x41, 0xD0C): "ARM Neoverse-N1",
    (0x41, 0xD40): "ARM Neoverse-V1",
    (0x41, 0xD42): "ARM Cortex-A78AE",
    (0x41, 0xD49): "ARM Neoverse-N2",
    (0x41, 0xD4F): "ARM Neoverse-V2",
    (0x41, 0xD84): "ARM Neoverse-V3",
    (0x41, 0xD8E): "ARM Neoverse-N3",
    (0x4E, 0x004): "NVIDIA Carmel",
    (0xC0, 0xAC3): "AmpereOne",
}


def detect_system(probe: Probe, facts: PlatformFacts, workspace: Path, scratch: Path) -> SystemInfo:
    """OS, Python, CPU, RAM, free disk at ``workspace`` and ``scratch``, WSL."""
    free = {}
    for label, path in (("workspace", workspace), ("scratch", scratch)):
        value = probe.disk_free(str(path))
        if value is not None:
            free[label] = value
    return SystemInfo(
        os=facts.system,
        os_release=facts.release,
        arch=_ARCH.get(facts.machine.lower(), facts.machine),
        python_version=facts.python_version,
        cpu_model=_cpu_model(probe, facts),
        cpu_cores=facts.cpu_count,
        cpu_flags=_cpu_flags(probe, facts),
        ram_bytes=_ram(probe, facts),
        disk_free_bytes=free,
        wsl=_is_wsl(probe, facts),
    )


def _is_wsl(probe: Probe, facts: PlatformFacts) -> bool:
    if facts.system != "Linux":
        return False
    version = (probe.read_text("/proc/version") or "").lower()
    return "microsoft" in version or "wsl" in version or bool(probe.env("WSL_DISTRO_NAME"))


def _cpu_flags(probe: Probe, facts: PlatformFacts) -> tuple[str, ...]:
    """Which of :data:`CPU_FLAGS` the first CPU in ``/proc/cpuinfo`` has (Linux only; elsewhere none are known)."""
    if facts.system != "Linux":
        return ()
    text = probe.read_text("/proc/cpuinfo") or ""
    found = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    present = set(found.group(1).split()) if found else set()
    return tuple(flag for flag in CPU_FLAGS if flag in present)


def _cpu_model(probe: Probe, facts: PlatformFacts) -> str | None:
    if facts.system == "Darwin":
        result = probe.run(["sysctl", "-n", "machdep.cpu.brand_string"], timeout=5)
        return (result.stdout.strip() or None) if result.ok else None
    if facts.system == "Windows":
        return facts.processor
    text = probe.read_text("/proc/cpuinfo") or ""
    model = re.search(r"^(?:model name|cpu)\s*:\s*(\S.*?)\s*$", text, re.MULTILINE)
    if model:
        return re.sub(r"\s+", " ", model.group(1))
    implementer = re.search(r"^CPU implementer\s*:\s*(0x[0-9a-fA-F]+)", text, re.MULTILINE)
    part = re.search(r"^CPU part\s*:\s*(0x[0-9a-fA-F]+)", text, re.MULTILINE)
    if implementer and part:
        key = (int(implementer.group(1), 16), int(part.group(1), 16))
        return _ARM_CORES.get(key, f"ARM CPU (implementer {key[0]:#x}, part {key[1]:#x})")
    hardware = re.search(r"^(?:Hardware|Processor)\s*:\s*(\S.*?)\s*$", text, re.MULTILINE)
    return hardware.group(1) if hardware else None


def _ram(probe: Probe, facts: PlatformFacts) -> int | None:
    text = probe.read_text("/proc/meminfo") if facts.system == "Linux" else None
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text or "", re.MULTILINE)
    if match:
        return int(match.group(1)) * 1024
    return facts.ram_bytes


def _version_tuple(text: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text or "")[:3])


def detect_mps(facts: PlatformFacts) -> MpsInfo | None:
    """Apple's Metal backend: None off macOS."""
    if facts.system != "Darwin":
        return None
    arm = facts.machine.lower() == "arm64"
    return MpsInfo(
        available=arm and _version_tuple(facts.mac_version) >= MPS_MIN_MACOS,
        macos_version=facts.mac_version,
    )


def torch_build(version: str | None) -> str | None:
    """The build a torch version's local tag names.

    ``"2.13.0+cpu"`` -> ``"cpu"``, ``"+cu128"`` -> ``"cu128"``, ``"+rocm6.4"``
    -> ``"rocm6.4"``, ``"+xpu"`` -> ``"xpu"``; no tag -> ``"default"`` (the
    PyPI wheel: CUDA on Linux x86_64, CPU elsewhere); any other tag is
    returned as it is (a source build); None when torch is absent.
    """
    if not version:
        return None
    _, plus, local = version.partition("+")
    if not plus or not local:
        return "default"
    match = re.match(r"(cu\d+|rocm\d+(?:\.\d+)*|xpu|cpu)(?![0-9a-z])", local)
    return match.group(1) if match else local


def detect_torch(probe: Probe) -> TorchInstall:
    """The installed torch family, from package metadata (torch is not imported)."""
    version = probe.distribution_version("torch")
    return TorchInstall(
        torch=version,
        build=torch_build(version),
        torchvision=probe.distribution_version("torchvision"),
        torchaudio=probe.distribution_version("torchaudio"),
    )

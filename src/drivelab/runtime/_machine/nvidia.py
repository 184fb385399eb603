"""NVIDIA GPUs: what the driver, NVML, procfs and nvidia-smi say, combined.

Probes, in order of trust, each optional:

1. NVML (nvidia-ml-py): driver version, the CUDA version the driver supports,
   and every GPU's name, memory and compute capability.
2. ``/proc/driver/nvidia/version`` and ``/sys/module/nvidia/version`` (the
   loaded kernel module), and ``/proc/driver/nvidia/gpus/*/information``
   (GPU names).
3. ``nvidia-smi --query-gpu=...`` (names, memory, compute capability, driver),
   then the ``CUDA Version`` in plain ``nvidia-smi``'s header when no probe
   above gave it.

A field no probe gave is filled from a table: the CUDA version from the
driver version (NVIDIA's "CUDA Toolkit and Corresponding Driver Versions", in
:mod:`drivelab.runtime._cuda`), the compute capability from the GPU's name. What went wrong on the way is
kept, in plain words, in :attr:`NvidiaInfo.problems`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from drivelab.runtime._cuda import cuda_for_driver
from drivelab.runtime._machine.probe import (
    NVML_DRIVER_NOT_LOADED,
    NVML_LIBRARY_NOT_FOUND,
    NVML_VERSION_MISMATCH,
    CommandResult,
    PlatformFacts,
    Probe,
)
from drivelab.runtime._model.machine import NvidiaGpu, NvidiaInfo

__all__ = ["detect_nvidia", "compute_capability_for_name"]

PROC_VERSION = "/proc/driver/nvidia/version"
SYS_MODULE_VERSION = "/sys/module/nvidia/version"
PROC_GPUS = "/proc/driver/nvidia/gpus"

QUERY_FIELDS = "index,name,memory.total,compute_cap,driver_version"
# Drivers before R510 do not know the compute_cap field.
QUERY_FIELDS_OLD = "index,name,memory.total,driver_version"


def smi_query(fields: str) -> list[str]:
    return [f"--query-gpu={fields}", "--format=csv,noheader,nounits"]


# Compute capability by GPU name, for when no probe reports it (drivers
# before R510 have no compute_cap in nvidia-smi). First match wins.
_CC_BY_NAME: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"\bGB10\b", (12, 1)),
    (r"RTX 50[5-9]0|Blackwell", (12, 0)),
    (r"\bG?B300\b", (10, 3)),
    (r"\bG?B[12]00\b", (10, 0)),
    (r"\bThor\b", (11, 0)),
    (r"\bG?H(100|200|800|20)\b", (9, 0)),
    (r"RTX 40[5-9]0|\bL(4|20|40|40S)\b|Ada Generation|\bAda\b", (8, 9)),
    (r"\bOrin\b", (8, 7)),
    (r"\bA(100|800|30)\b", (8, 0)),
    (r"RTX 30[5-9]0|\bA(2|10|10G|16|40)\b|RTX A\d{3,4}", (8, 6)),
    (r"RTX 20[5-8]0|GTX 16[5-6]0|\bT4\b|TITAN RTX|Quadro RTX|\bT(400|550|600|1000|1200)\b", (7, 5)),
    (r"\bXavier\b", (7, 2)),
    (r"\bV100S?\b|TITAN V\b|GV100", (7, 0)),
    (r"\bTX2\b", (6, 2)),
    (r"\bP100\b|GP100", (6, 0)),
    (r"GTX 10[5-8]0|GT 1030|TITAN Xp|TITAN X \(Pascal\)|\bP(4|6|40)\b|Quadro P\d{3,4}|\bP10[0-9]\b", (6, 1)),
    (r"\bNano\b|\bTX1\b", (5, 3)),
    (r"GTX 9[5-8]0|GTX TITAN X|\bM(4|6|40|60)\b|Quadro M[2-6]000\b", (5, 2)),
    (r"GTX 7[45]0|\bM10\b|Quadro K(620|1200|2200)|Quadro M(1000M|1200|2000M|500M|600M)|9[34]0MX?", (5, 0)),
    (r"\bK80\b", (3, 7)),
    (r"\bK(20|40)|GTX 7[6-8]0|GTX TITAN( Black| Z)?$", (3, 5)),
)


def compute_capability_for_name(name: str) -> tuple[int, int] | None:
    """The compute capability of a GPU by its marketing name, when it is a known one."""
    for pattern, cc in _CC_BY_NAME:
        if re.search(pattern, name, re.IGNORECASE):
            return cc
    return None


# --------------------------------------------------------------------------- problems

_RELOAD = "sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia"


def _mismatch(kernel: str | None, library: str | None) -> str:
    versions = ""
    if kernel and library:
        versions = f" (kernel module {kernel}, library {library})"
    return (
        "NVIDIA driver/library version mismatch: the loaded kernel module and the user-space driver "
        f"library differ{versions}, which is what a driver upgrade without a reboot leaves behind. "
        f"Reboot, or reload the kernel module ({_RELOAD})."
    )


_NO_DRIVER = (
    "the NVIDIA kernel driver is not loaded, so no NVIDIA GPU can be used. Reboot after installing "
    "or upgrading the driver; with Secure Boot on, the module must be signed with an enrolled key "
    "(MOK) or Secure Boot turned off; `lsmod | grep nvidia` should list it."
)
_NO_DEVICES = "the NVIDIA driver is loaded but sees no GPU (the GPU may be disabled, passed to a VM, or hidden from this container)."
_NVML_UNKNOWN = (
    "NVML failed with \"Unknown Error\": in a container this usually means it lost access to the GPU "
    "device files (e.g. after `systemctl daemon-reload` on the host); restart the container."
)
_GPU_LOST = "a GPU has fallen off the bus or is lost to the driver; reboot the machine (check power and cooling if it recurs)."
_NO_PERMISSION = "no permission to open the NVIDIA device files (/dev/nvidia*); ask an administrator, or check the container's device access."

# nvidia-smi / NVML messages -> cause; the cause's text is said once however many probes hit it.
_SMI_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"Driver/library version mismatch", "mismatch"),
    (r"couldn't communicate with the NVIDIA driver|Driver Not Loaded", "no-driver"),
    (r"No devices were found", "no-devices"),
    (r"Failed to initialize NVML: Unknown Error", "nvml-unknown"),
    (r"GPU is lost|fallen off the bus|Unable to determine the device handle", "gpu-lost"),
    (r"Insufficient Permissions|Permission denied", "no-permission"),
)
_CAUSE_TEXT = {
    "no-driver": _NO_DRIVER,
    "no-devices": _NO_DEVICES,
    "nvml-unknown": _NVML_UNKNOWN,
    "gpu-lost": _GPU_LOST,
    "no-permission": _NO_PERMISSION,
}
_NVML_CAUSE = {
    NVML_VERSION_MISMATCH: "mismatch",
    NVML_DRIVER_NOT_LOADED: "no-driver",
    15: "gpu-lost",  # NVML_ERROR_GPU_IS_LOST
    4: "no-permission",  # NVML_ERROR_NO_PERMISSION
    999: "nvml-unknown",  # NVML_ERROR_UNKNOWN
}


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass
class _Gpu:
    index: int
    name: str | None = None
    memory_mib: int | None = None
    compute_capability: tuple[int, int] | None = None


class _Findings:
    """What the probes found so far; each probe fills what it knows."""

    def __init__(self) -> None:
        self.driver: str | None = None
        self.cuda: tuple[int, int] | None = None
        self.kernel_module: str | None = None
        self.library_version: str | None = None
        self.gpus: dict[str, list[_Gpu]] = {}
        self.sources: list[str] = []
        self.causes: dict[str, list[str]] = {}  # cause -> what each probe said
        self.other: list[str] = []
        self.seen = False  # any sign of an NVIDIA driver or tool

    def cause(self, cause: str, seen_in: str) -> None:
        said = self.causes.setdefault(cause, [])
        if seen_in not in said:
            said.append(seen_in)

    def source(self, name: str) -> None:
        if name not in self.sources:
            self.sources.append(name)


def detect_nvidia(probe: Probe, facts: PlatformFacts, *, wsl: bool) -> NvidiaInfo | None:
    """What this machine's NVIDIA driver and GPUs are, or None when there is no sign of either."""
    found = _Findings()
    _from_nvml(probe, found)
    _from_procfs(probe, found)
    if not _nvml_complete(found):
        _from_nvidia_smi(probe, facts, found, wsl=wsl)
    _from_jetson(probe, found)
    if not found.seen:
        return None

    gpus = _merge(found.gpus)
    cuda = found.cuda
    if cuda is None and found.driver and "jetson" not in found.sources:
        cuda = cuda_for_driver(found.driver)
    problems = _problems(found, gpus)
    return NvidiaInfo(
        driver_version=found.driver,
        cuda_driver_version=cuda,
        gpus=tuple(gpus),
        source="+".join(found.sources),
        problems=tuple(problems),
    )


def _from_nvml(probe: Probe, found: _Findings) -> None:
    snap = probe.nvml()
    if snap.error is not None:
        if snap.error_code == NVML_LIBRARY_NOT_FOUND:
            return  # no NVIDIA user-space driver: the normal case on most machines
        found.seen = True
        cause = _NVML_CAUSE.get(snap.error_code or 0) or _cause_of(snap.error)
        if cause:
            found.cause(cause, f"NVML: {snap.error}")
        else:
            found.other.append(f"NVML could not be read: {snap.error}.")
        return
    found.seen = True
    found.source("nvml")
    found.driver = snap.driver_version or found.driver
    if snap.cuda_driver_version:
        found.cuda = (snap.cuda_driver_version // 1000, snap.cuda_driver_version % 1000 // 10)
    gpus = []
    for gpu in snap.gpus:
        if gpu.error:
            found.cause(_cause_of(gpu.error) or "gpu-lost", f"NVML, GPU {gpu.index}: {gpu.error}")
        gpus.append(
            _Gpu(
                gpu.index,
                gpu.name,
                gpu.memory_bytes // 2**20 if gpu.memory_bytes else None,
                gpu.compute_capability,
            )
        )
    found.gpus["nvml"] = gpus


def _nvml_complete(found: _Findings) -> bool:
    gpus = found.gpus.get("nvml")
    return bool(
        gpus
        and found.driver
        and found.cuda
        and all(g.name and g.memory_mib and g.compute_capability for g in gpus)
    )


def _from_procfs(probe: Probe, found: _Findings) -> None:
    text = probe.read_text(PROC_VERSION)
    version = None
    if text:
        match = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)*)", text)
        version = match.group(1) if match else None
    if version is None:
        module = probe.read_text(SYS_MODULE_VERSION)
        if module and re.fullmatch(r"\s*\d+\.\d+(\.\d+)*\s*", module):
            version = module.strip()
    if version:
        found.seen = True
        found.kernel_module = version
        if found.driver is None:
            found.driver = version
            found.source("procfs")
    gpus = []
    for entry in probe.list_dir(PROC_GPUS) or ():
        info = probe.read_text(f"{PROC_GPUS}/{entry}/information") or ""
        model = re.search(r"^Model:\s*(.+?)\s*$", info, re.MULTILINE)
        minor = re.search(r"^Device Minor:\s*(\d+)", info, re.MULTILINE)
        if model:
            gpus.append((int(minor.group(1)) if minor else len(gpus), entry, model.group(1)))
    if gpus:
        found.seen = True
        found.source("procfs")
        # nvidia-smi and NVML number GPUs in PCI bus order (the folder names).
        found.gpus["procfs"] = [_Gpu(i, name) for i, (_, _, name) in enumerate(sorted(gpus, key=lambda g: g[1]))]


def _smi_candidates(facts: PlatformFacts, wsl: bool) -> list[str]:
    candidates = ["nvidia-smi"]
    if wsl:
        candidates.append("/usr/lib/wsl/lib/nvidia-smi")  # the Windows driver's, mapped into WSL
    if facts.system == "Windows":
        candidates += [
            r"C:\Windows\System32\nvidia-smi.exe",
            r"C:\Program Files\NVIDIA Corporation\NVSMI\nvidia-smi.exe",
        ]
    if facts.system == "Linux":
        candidates.append("/opt/bin/nvidia-smi")  # where Colab keeps it
    return candidates


def _from_nvidia_smi(probe: Probe, facts: PlatformFacts, found: _Findings, *, wsl: bool) -> None:
    smi = None
    result: CommandResult | None = None
    for candidate in _smi_candidates(facts, wsl):
        result = probe.run([candidate, *smi_query(QUERY_FIELDS)])
        if result.found:
            smi = candidate
            break
    if smi is None or result is None:
        return
    found.seen = True
    if not result.ok and re.search(r"not a valid field|compute_cap", result.output, re.IGNORECASE):
        result = probe.run([smi, *smi_query(QUERY_FIELDS_OLD)])
    if result.timed_out:
        found.other.append(f"{smi} did not answer in time: the NVIDIA driver may be hung; a reboot usually clears it.")
        return
    if not result.ok:
        _smi_failed(smi, result, found)
        return
    gpus = _parse_query(result.stdout)
    if gpus:
        found.source("nvidia-smi")
        found.gpus["nvidia-smi"] = [gpu for gpu, _ in gpus]
        if found.driver is None:
            found.driver = next((driver for _, driver in gpus if driver), None)
    if found.cuda is None:
        header = probe.run([smi])
        if header.ok:
            # "CUDA Version: 13.0"; drivers from 616 say "CUDA UMD Version: 13.4".
            match = re.search(r"CUDA(?:\s+\w+)?\s+Version:\s*(\d+)\.(\d+)", header.stdout)
            if match:
                found.cuda = (int(match.group(1)), int(match.group(2)))
                found.source("nvidia-smi")
            if found.driver is None:
                driver = re.search(r"Driver Version:\s*(\d+\.\d+(?:\.\d+)*)", header.stdout)
                found.driver = driver.group(1) if driver else None


def _smi_failed(smi: str, result: CommandResult, found: _Findings) -> None:
    output = result.output
    library = re.search(r"NVML library version:\s*(\d+\.\d+(?:\.\d+)*)", output)
    if library:
        found.library_version = library.group(1)
    cause = _cause_of(output)
    said = f"{smi} said: {_first_line(output)}" if output else f"{smi} exited with {result.returncode}"
    if cause:
        found.cause(cause, said)
    else:
        found.other.append(f"nvidia-smi failed (exit {result.returncode}): {_first_line(output) or 'no output'}.")


def _cause_of(message: str) -> str | None:
    for pattern, cause in _SMI_MESSAGES:
        if re.search(pattern, message, re.IGNORECASE):
            return cause
    return None


def _parse_query(stdout: str) -> list[tuple[_Gpu, str | None]]:
    gpus = []
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) not in (4, 5) or not cells[0].isdigit():
            continue
        cc = None
        if len(cells) == 5:
            match = re.fullmatch(r"(\d+)\.(\d+)", cells[3])
            cc = (int(match.group(1)), int(match.group(2))) if match else None
        driver = cells[-1] if re.fullmatch(r"\d+\.\d+(\.\d+)*", cells[-1]) else None
        gpus.append((_Gpu(int(cells[0]), cells[1] or None, _int(cells[2]), cc), driver))
    return gpus


def _int(text: str) -> int | None:
    text = text.strip()
    return int(float(text)) if re.fullmatch(r"\d+(\.\d+)?", text) else None


_JETSON_MODEL = "/proc/device-tree/model"


def _from_jetson(probe: Probe, found: _Findings) -> None:
    """NVIDIA Jetson boards: an integrated GPU that NVML and procfs may not show."""
    model = (probe.read_text(_JETSON_MODEL) or "").replace("\x00", "").strip()
    if "jetson" not in model.lower():
        return
    found.seen = True
    found.source("jetson")
    if not any(found.gpus.values()):
        found.gpus["jetson"] = [_Gpu(0, model)]
    if not re.search(r"\bThor\b", model):
        found.other.append(
            f"{model} is an NVIDIA Jetson (Tegra) board: the PyTorch wheels on PyPI and download.pytorch.org "
            "have no build for its integrated GPU; use the wheels NVIDIA publishes for your JetPack release."
        )


def _merge(sources: dict[str, list[_Gpu]]) -> list[NvidiaGpu]:
    """The most trusted non-empty list, its gaps filled from the others (same position, same count)."""
    order = [name for name in ("nvml", "nvidia-smi", "procfs", "jetson") if sources.get(name)]
    if not order:
        return []
    base = [replace(gpu) for gpu in sources[order[0]]]
    for name in order[1:]:
        other = sources[name]
        if len(other) != len(base):
            continue
        for gpu, more in zip(base, other):
            gpu.name = gpu.name or more.name
            gpu.memory_mib = gpu.memory_mib or more.memory_mib
            gpu.compute_capability = gpu.compute_capability or more.compute_capability
    result = []
    for gpu in base:
        name = gpu.name or f"NVIDIA GPU {gpu.index}"
        cc = gpu.compute_capability or compute_capability_for_name(name)
        result.append(NvidiaGpu(index=gpu.index, name=name, memory_mib=gpu.memory_mib, compute_capability=cc))
    return result


def _problems(found: _Findings, gpus: Iterable[NvidiaGpu]) -> list[str]:
    problems = []
    for cause, seen_in in found.causes.items():
        if cause == "mismatch":
            text = _mismatch(found.kernel_module, found.library_version)
        else:
            text = _CAUSE_TEXT[cause]
            text = text[0].upper() + text[1:]
        problems.append(f"{text} ({'; '.join(s.rstrip('.') for s in seen_in)})")
    problems += found.other
    if found.driver and not list(gpus) and not found.causes:
        problems.append(
            f"The NVIDIA driver {found.driver} is loaded but no probe could list its GPUs (no NVML library, "
            "no working nvidia-smi). In a container, start it with GPU access (`docker run --gpus all`, "
            "NVIDIA Container Toolkit); otherwise reinstall the driver's user-space part."
        )
    return problems

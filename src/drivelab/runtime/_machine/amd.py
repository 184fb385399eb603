"""AMD GPUs (ROCm): each GPU's gfx target, and the ROCm version installed.

Probes, in order, each optional (Linux only):

1. ``rocminfo``: every HSA agent's name (the gfx target) and marketing name;
   CPU agents are skipped.
2. ``rocm_agent_enumerator``: the gfx targets alone (``gfx000`` is the CPU).
3. The kernel's KFD topology (``/sys/class/kfd/kfd/topology/nodes/*/properties``,
   ``gfx_target_version``): present whenever the amdgpu driver runs, even
   before any ROCm package is installed (PyTorch's ROCm wheels bring their own).

The ROCm version comes from ``$ROCM_PATH/.info/version`` (default
``/opt/rocm``), else from ``hipconfig --version``.
"""

from __future__ import annotations

import re

from drivelab.runtime._machine.probe import CommandResult, Probe
from drivelab.runtime._model.machine import AmdGpu, AmdInfo

__all__ = ["detect_amd", "gfx_from_target_version"]

KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"

# A readable family for a gfx target, shown when no marketing name is known.
_FAMILY = {
    "gfx803": "Radeon RX 470/480/580 (Polaris)",
    "gfx900": "Radeon RX Vega / Instinct MI25",
    "gfx906": "Instinct MI50/MI60 / Radeon VII",
    "gfx908": "Instinct MI100",
    "gfx90a": "Instinct MI200 series (MI210/MI250)",
    "gfx942": "Instinct MI300 series",
    "gfx950": "Instinct MI350 series",
    "gfx1010": "Radeon RX 5700 (RDNA 1)",
    "gfx1030": "Radeon RX 6800/6900 (RDNA 2)",
    "gfx1100": "Radeon RX 7900 (RDNA 3)",
    "gfx1101": "Radeon RX 7800/7700 (RDNA 3)",
    "gfx1102": "Radeon RX 7600 (RDNA 3)",
    "gfx1151": "Ryzen AI Max (Strix Halo) iGPU",
    "gfx1200": "Radeon RX 9060 (RDNA 4)",
    "gfx1201": "Radeon RX 9070 (RDNA 4)",
}


def gfx_from_target_version(value: int) -> str | None:
    """KFD's ``gfx_target_version`` as an LLVM target: ``90010`` -> ``"gfx90a"``, ``110000`` -> ``"gfx1100"``."""
    if value <= 0:
        return None
    major, minor, stepping = value // 10000, value // 100 % 100, value % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def _name_for(gfx: str) -> str:
    family = _FAMILY.get(gfx)
    return f"AMD {family}" if family else f"AMD GPU ({gfx})"


def _rocm_root(probe: Probe) -> str:
    return (probe.env("ROCM_PATH") or "/opt/rocm").rstrip("/")


def _run_rocm_tool(probe: Probe, root: str, tool: str, *args: str) -> CommandResult:
    """A ROCm tool from PATH, else from ``$ROCM_PATH/bin`` (ROCm does not always put it on PATH)."""
    result = probe.run([tool, *args])
    if not result.found:
        result = probe.run([f"{root}/bin/{tool}", *args])
    return result


def detect_amd(probe: Probe) -> AmdInfo | None:
    """The AMD GPUs ROCm can see and the installed ROCm version, or None when there is neither."""
    root = _rocm_root(probe)
    problems: list[str] = []
    gpus: list[AmdGpu] = []
    tools_found = False

    info = _run_rocm_tool(probe, root, "rocminfo")
    if info.found:
        tools_found = True
        if info.ok:
            gpus = _parse_rocminfo(info.stdout)
        else:
            problems.append(_rocminfo_problem(info))
    if not gpus:
        enum = _run_rocm_tool(probe, root, "rocm_agent_enumerator")
        if enum.found:
            tools_found = True
            if enum.ok:
                targets = [t for t in re.findall(r"\bgfx[0-9a-f]+\b", enum.stdout) if t != "gfx000"]
                gpus = [AmdGpu(_name_for(t), t) for t in targets]
    if not gpus:
        gpus = _from_kfd(probe)

    version = _rocm_version(probe, root, tools_found)
    if not gpus and version is None and not tools_found:
        return None
    return AmdInfo(rocm_version=version, gpus=tuple(gpus), problems=tuple(dict.fromkeys(problems)))


def _parse_rocminfo(stdout: str) -> list[AmdGpu]:
    gpus = []
    # Agents are blocks opened by "Agent N" between rows of asterisks.
    for block in re.split(r"^\*+\s*\n\s*Agent \d+\s*\n\*+\s*$", stdout, flags=re.MULTILINE)[1:]:
        name = re.search(r"^\s*Name:\s*(\S.*?)\s*$", block, re.MULTILINE)
        kind = re.search(r"^\s*Device Type:\s*(\S+)", block, re.MULTILINE)
        marketing = re.search(r"^\s*Marketing Name:\s*(\S.*?)\s*$", block, re.MULTILINE)
        if not name or (kind and kind.group(1).upper() != "GPU"):
            continue
        gfx = name.group(1)
        if not re.fullmatch(r"gfx[0-9a-f]+", gfx) or gfx == "gfx000":
            continue
        label = marketing.group(1) if marketing and marketing.group(1) else _name_for(gfx)
        gpus.append(AmdGpu(label, gfx))
    return gpus


def _rocminfo_problem(result: CommandResult) -> str:
    output = result.output
    if result.timed_out:
        return "rocminfo did not answer in time: the amdgpu driver may be hung; a reboot usually clears it."
    if re.search(r"/dev/kfd.*Permission denied|video group|render group", output, re.IGNORECASE):
        return (
            "Your user may not open /dev/kfd, so ROCm cannot use the GPU: add yourself to the render and "
            "video groups (sudo usermod -aG render,video $USER) and log in again."
        )
    if re.search(r"ROCk module is NOT loaded|Unable to open /dev/kfd|No such file", output, re.IGNORECASE):
        return (
            "The amdgpu kernel driver (KFD) is not loaded, so ROCm sees no GPU: install the amdgpu driver "
            "for your ROCm release and reboot; in a container, pass --device=/dev/kfd --device=/dev/dri."
        )
    first = next((line.strip() for line in output.splitlines() if line.strip()), "no output")
    return f"rocminfo failed (exit {result.returncode}): {first}"


def _from_kfd(probe: Probe) -> list[AmdGpu]:
    gpus = []
    for node in probe.list_dir(KFD_NODES) or ():
        properties = probe.read_text(f"{KFD_NODES}/{node}/properties") or ""
        match = re.search(r"^gfx_target_version\s+(\d+)", properties, re.MULTILINE)
        gfx = gfx_from_target_version(int(match.group(1))) if match else None
        if gfx:
            gpus.append(AmdGpu(_name_for(gfx), gfx))
    return gpus


def _rocm_version(probe: Probe, root: str, tools_found: bool) -> tuple[int, int] | None:
    text = probe.read_text(f"{root}/.info/version")
    if not text and tools_found:
        result = _run_rocm_tool(probe, root, "hipconfig", "--version")
        text = result.stdout if result.ok else None
    match = re.match(r"\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None

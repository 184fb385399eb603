"""The runtime panel for notebooks: ``drivelab.runtime.info()`` shows as a table.

The rows are those of ``drivelab runtime``; the object renders as an HTML
table in Jupyter and as aligned text elsewhere (``print(info())``).
"""

from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from drivelab.runtime._detect import detect_machine
from drivelab.runtime._model import MachineInfo

__all__ = ["RuntimeInfo", "info"]


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def _version(v: tuple[int, int] | None) -> str:
    return "?" if v is None else f"{v[0]}.{v[1]}"


def panel_rows(machine: MachineInfo, paths: dict[str, Path] | None = None) -> list[tuple[str, str]]:
    """``(label, value)`` rows describing ``machine``, accelerators and PyTorch included."""
    paths = paths or {}
    s = machine.system
    rows = [
        ("OS", f"{s.os} {s.os_release} ({s.arch})" + ("  [WSL]" if s.wsl else "")),
        ("Python", s.python_version),
        ("CPU", f"{s.cpu_model or 'unknown'}" + (f", {s.cpu_cores} cores" if s.cpu_cores else "")),
        ("RAM", _gib(s.ram_bytes)),
    ]
    for label, free in s.disk_free_bytes.items():
        where = paths.get(label)
        rows.append((f"Disk ({label})", f"{_gib(free)} free" + (f" at {where}" if where else "")))
    accelerators = 0
    nv = machine.nvidia
    if nv is not None:
        rows.append(("NVIDIA", f"driver {nv.driver_version or '?'}, supports CUDA {_version(nv.cuda_driver_version)}"))
        for gpu in nv.gpus:
            accelerators += 1
            memory = f"{gpu.memory_mib / 1024:.1f} GiB" if gpu.memory_mib else "? GiB"
            rows.append((f"GPU {gpu.index}", f"{gpu.name}, {memory}, compute capability {_version(gpu.compute_capability)}"))
    amd = machine.amd
    if amd is not None:
        rows.append(("AMD", f"ROCm {_version(amd.rocm_version)}" if amd.rocm_version else "ROCm not installed"))
        for i, agpu in enumerate(amd.gpus):
            accelerators += 1
            rows.append((f"GPU {i}", f"{agpu.name} ({agpu.gfx})"))
    if machine.mps is not None:
        accelerators += machine.mps.available
        state = "available" if machine.mps.available else "not available (needs Apple silicon and macOS 12.3+)"
        rows.append(("Apple MPS", f"{state}, macOS {machine.mps.macos_version or '?'}"))
    if machine.xpu is not None:
        for name in machine.xpu.devices:
            accelerators += 1
            rows.append(("Intel XPU", name))
    if not accelerators:
        rows.append(("Accelerator", "none found: PyTorch will run on the CPU"))
    t = machine.torch
    if t is None or t.torch is None:
        rows.append(("PyTorch", "not installed (drivelab setup torch installs the build that fits)"))
    else:
        extras = ", ".join(f"{n} {v}" for n, v in (("torchvision", t.torchvision), ("torchaudio", t.torchaudio)) if v)
        rows.append(("PyTorch", f"{t.torch} (build {t.build})" + (f"; {extras}" if extras else "")))
    for problem in [*(nv.problems if nv else ()), *(amd.problems if amd else ())]:
        rows.append(("Problem", problem))
    return rows


@dataclass(frozen=True)
class RuntimeInfo:
    """This machine as :func:`detect_machine` sees it, with the panel's rows."""

    machine: MachineInfo
    rows: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        width = max((len(label) for label, _ in self.rows), default=0)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str(self))  # type: ignore[attr-defined]

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th><td style='text-align:left'>{html.escape(value)}</td></tr>"
            for label, value in self.rows
        )
        return f"<table class='drivelab-runtime'><caption style='text-align:left'>Runtime</caption>{body}</table>"


def info(workspace: Path | str | None = None) -> RuntimeInfo:
    """The runtime panel: probes the machine (never imports torch).

    Free disk is measured at ``workspace`` (default: the current folder) and
    at the temporary folder.
    """
    folder = Path(workspace).expanduser().resolve() if workspace is not None else Path.cwd()
    scratch = Path(tempfile.gettempdir())
    machine = detect_machine(workspace=folder, scratch=scratch)
    return RuntimeInfo(machine, panel_rows(machine, {"workspace": folder, "scratch": scratch}))

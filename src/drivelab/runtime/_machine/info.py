"""The runtime panel: the rows ``drivelab runtime`` shows, and ``drivelab.runtime.info()`` for notebooks.

:func:`panel_rows` is the one place the panel's content is decided; the CLI
renders those rows on the terminal, and :class:`RuntimeInfo` renders the same
rows as an HTML table in Jupyter and as aligned text elsewhere (``print(info())``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from drivelab.runtime._machine.detect import detect_machine
from drivelab.runtime._model.machine import MachineInfo

__all__ = ["RuntimeInfo", "PanelRow", "info", "panel_rows"]


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def _version(v: tuple[int, int] | None) -> str:
    return "?" if v is None else f"{v[0]}.{v[1]}"


class PanelRow(NamedTuple):
    """One row of the panel: plain text, no markup."""

    label: str
    value: str
    kind: str = "fact"
    """``"fact"``; ``"device"``, one accelerator under the row above it; or
    ``"problem"``, something the probes found wrong (shown after the facts)."""


def panel_rows(machine: MachineInfo, paths: dict[str, Path] | None = None) -> list[PanelRow]:
    """The panel for ``machine``: system, accelerators, PyTorch, then problems.

    ``paths`` names where free disk was measured (``{"workspace": folder}``).
    Facts come first in a fixed order; problems come last.
    """
    paths = paths or {}
    s = machine.system
    rows = [
        PanelRow("OS", f"{s.os} {s.os_release} ({s.arch})" + ("  [WSL]" if s.wsl else "")),
        PanelRow("Python", s.python_version),
        PanelRow("CPU", f"{s.cpu_model or 'unknown'}" + (f", {s.cpu_cores} cores" if s.cpu_cores else "")),
    ]
    if s.cpu_flags:
        rows.append(PanelRow("CPU flags", " ".join(s.cpu_flags)))
    rows.append(PanelRow("RAM", _gib(s.ram_bytes)))
    for label, free in s.disk_free_bytes.items():
        where = paths.get(label)
        rows.append(PanelRow(f"Disk ({label})", f"{_gib(free)} free" + (f" at {where}" if where else "")))
    accelerators = 0
    nv = machine.nvidia
    if nv is not None:
        driver = f"driver {nv.driver_version or '?'}, supports CUDA {_version(nv.cuda_driver_version)}"
        rows.append(PanelRow("NVIDIA", driver + (f"  (from {nv.source})" if nv.source else "")))
        for gpu in nv.gpus:
            accelerators += 1
            memory = f"{gpu.memory_mib / 1024:.1f} GiB" if gpu.memory_mib else "? GiB"
            rows.append(PanelRow(f"GPU {gpu.index}", f"{gpu.name}, {memory}, compute capability {_version(gpu.compute_capability)}", "device"))
    amd = machine.amd
    if amd is not None:
        rows.append(PanelRow("AMD", f"ROCm {_version(amd.rocm_version)}" if amd.rocm_version else "ROCm not installed"))
        for i, agpu in enumerate(amd.gpus):
            accelerators += 1
            rows.append(PanelRow(f"GPU {i}", f"{agpu.name} ({agpu.gfx})", "device"))
    if machine.mps is not None:
        accelerators += machine.mps.available
        state = "available" if machine.mps.available else "not available (needs Apple silicon and macOS 12.3+)"
        rows.append(PanelRow("Apple MPS", f"{state}, macOS {machine.mps.macos_version or '?'}"))
    if machine.xpu is not None:
        for name in machine.xpu.devices:
            accelerators += 1
            rows.append(PanelRow("Intel XPU", name))
    if not accelerators:
        rows.append(PanelRow("Accelerator", "none found: PyTorch will run on the CPU"))
    t = machine.torch
    if t is None or t.torch is None:
        rows.append(PanelRow("PyTorch", "not installed (drivelab setup torch installs the build that fits)"))
    else:
        extras = ", ".join(f"{n} {v}" for n, v in (("torchvision", t.torchvision), ("torchaudio", t.torchaudio)) if v)
        rows.append(PanelRow("PyTorch", f"{t.torch} (build {t.build})" + (f"; {extras}" if extras else "")))
    for problem in [*(nv.problems if nv else ()), *(amd.problems if amd else ())]:
        rows.append(PanelRow("Problem", problem, "problem"))
    return rows


@dataclass(frozen=True)
class RuntimeInfo:
    """This machine as :func:`detect_machine` sees it, with the panel's rows."""

    machine: MachineInfo
    rows: list[PanelRow] = field(default_factory=list)

    def __str__(self) -> str:
        labels = [("  " if row.kind == "device" else "") + row.label for row in self.rows]
        width = max(map(len, labels), default=0)
        return "\n".join(f"{label:<{width}}  {row.value}" for label, row in zip(labels, self.rows))

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str(self))  # type: ignore[attr-defined]

    def _repr_html_(self) -> str:
        import html  # only notebooks ask: html.entities costs the terminal ~1.5 ms to load

        body = "".join(
            f"<tr class='drivelab-{row.kind}'><th style='text-align:left'>{html.escape(row.label)}</th>"
            f"<td style='text-align:left'>{html.escape(row.value)}</td></tr>"
            for row in self.rows
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

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from drivelab.cli._output import console, emit_json, escape
from drivelab.cli.commands._common import JsonOption, WorkspaceOption
from drivelab.errors import WorkspaceError
from drivelab.workspace import find_workspace

if TYPE_CHECKING:
    from drivelab.runtime import MachineInfo


def runtime(
    json_output: JsonOption = False,
    check: Annotated[bool, typer.Option("--check", help="Also import PyTorch in a fresh interpreter and test each device (slower).")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show this machine's runtime: OS, Python, CPU, RAM, free disk, GPUs and drivers, installed PyTorch.

    Probes only (NVML, /proc, nvidia-smi, rocminfo, ...): PyTorch is not
    imported unless --check is given. With --check the exit code is 1 when a
    check fails.

    Example: drivelab runtime --check
    """
    import tempfile

    from drivelab.runtime import detect_machine

    folder = _workspace_folder(workspace)
    scratch = Path(tempfile.gettempdir())
    machine = detect_machine(workspace=folder, scratch=scratch)
    report = None
    if check:
        from drivelab.runtime import verify_torch

        report = verify_torch(machine)
    if json_output:
        payload: dict[str, Any] = machine.to_dict()
        if report is not None:
            payload["check"] = report.to_dict()
        emit_json("runtime", payload)
    else:
        _show(machine, {"workspace": folder, "scratch": scratch})
        if report is not None:
            _show_report(report)
    if report is not None and not report.ok:
        raise typer.Exit(1)


def _workspace_folder(option: Path | None) -> Path:
    """The workspace holding ``option`` (or the cwd); else that folder itself."""
    try:
        return find_workspace(option).root
    except WorkspaceError:
        folder = (option or Path.cwd()).expanduser()
        if not folder.is_dir():
            raise WorkspaceError(f"{folder} is not a folder", hint="pass --workspace an existing folder") from None
        return folder.resolve()


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def _version(v: tuple[int, int] | None) -> str:
    return "?" if v is None else f"{v[0]}.{v[1]}"


def _show(machine: MachineInfo, paths: dict[str, Path]) -> None:
    from rich.table import Table

    s = machine.system
    panel = Table.grid(padding=(0, 2))
    panel.add_column(style="bold")
    panel.add_column()
    os_line = f"{s.os} {s.os_release} ({s.arch})" + ("  [WSL]" if s.wsl else "")
    panel.add_row("OS", escape(os_line))
    panel.add_row("Python", s.python_version)
    cores = f", {s.cpu_cores} cores" if s.cpu_cores else ""
    panel.add_row("CPU", escape(f"{s.cpu_model or 'unknown'}{cores}"))
    panel.add_row("RAM", _gib(s.ram_bytes))
    for label, free in s.disk_free_bytes.items():
        where = paths.get(label)
        panel.add_row(f"Disk ({label})", escape(f"{_gib(free)} free" + (f" at {where}" if where else "")))
    accelerators = 0

    nv = machine.nvidia
    if nv is not None:
        driver = f"driver {nv.driver_version or '?'}, supports CUDA {_version(nv.cuda_driver_version)}"
        panel.add_row("NVIDIA", escape(driver + (f"  (from {nv.source})" if nv.source else "")))
        for gpu in nv.gpus:
            accelerators += 1
            memory = f"{gpu.memory_mib / 1024:.1f} GiB" if gpu.memory_mib else "? GiB"
            panel.add_row(f"  GPU {gpu.index}", escape(f"{gpu.name}, {memory}, compute capability {_version(gpu.compute_capability)}"))
    amd = machine.amd
    if amd is not None:
        panel.add_row("AMD", f"ROCm {_version(amd.rocm_version)}" if amd.rocm_version else "ROCm not installed")
        for i, gpu in enumerate(amd.gpus):
            accelerators += 1
            panel.add_row(f"  GPU {i}", escape(f"{gpu.name} ({gpu.gfx})"))
    if machine.mps is not None:
        mps = machine.mps
        accelerators += mps.available
        state = "available" if mps.available else "not available (needs Apple silicon and macOS 12.3+)"
        panel.add_row("Apple MPS", escape(f"{state}, macOS {mps.macos_version or '?'}"))
    if machine.xpu is not None:
        for i, name in enumerate(machine.xpu.devices):
            accelerators += 1
            panel.add_row("Intel XPU" if i == 0 else "", escape(name))
    if not accelerators:
        panel.add_row("Accelerator", "none found: PyTorch will run on the CPU")

    t = machine.torch
    if t is None or t.torch is None:
        panel.add_row("PyTorch", "not installed (drivelab setup torch installs the build that fits)")
    else:
        extras = ", ".join(f"{name} {version}" for name, version in (("torchvision", t.torchvision), ("torchaudio", t.torchaudio)) if version)
        panel.add_row("PyTorch", escape(f"{t.torch} (build {t.build})" + (f"; {extras}" if extras else "")))

    console.print(panel)
    problems = [*(nv.problems if nv else ()), *(amd.problems if amd else ())]
    for problem in problems:
        console.print(f"[yellow]problem:[/] {escape(problem)}", soft_wrap=True)


def _show_report(report: Any) -> None:
    from rich.table import Table

    table = Table(title="PyTorch check", title_justify="left", show_edge=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    for item in report.checks:
        mark = "[green]ok[/]" if item.ok else "[red]FAILED[/]"
        table.add_row(escape(item.name), mark, escape(item.detail or ""))
    console.print(table)
    for item in report.checks:
        if not item.ok and item.fix:
            console.print(f"[yellow]fix ({escape(item.name)}):[/] {escape(item.fix)}", soft_wrap=True)
    console.print("[bold green]PyTorch works on this machine.[/]" if report.ok else "[bold red]PyTorch does not work as it should.[/]")

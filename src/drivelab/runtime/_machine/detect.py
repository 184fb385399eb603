"""What this machine is: :func:`detect_machine` asks a :class:`Probe` and fills a :class:`MachineInfo`.

Nothing here imports torch or any accelerator library; every look at the
machine goes through the probe, so a :class:`RecordedProbe` can stand in for
the real machine. Accelerators are probed by ``nvidia``, ``amd`` and
``intel``; the system, Apple MPS and the installed PyTorch by ``system``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from drivelab.errors import SetupError
from drivelab.runtime._machine.amd import detect_amd
from drivelab.runtime._machine.intel import detect_xpu
from drivelab.runtime._machine.nvidia import detect_nvidia
from drivelab.runtime._machine.probe import Probe, SystemProbe
from drivelab.runtime._machine.system import detect_mps, detect_system, detect_torch
from drivelab.runtime._model.machine import MachineInfo

__all__ = ["detect_machine", "load_machine"]


def detect_machine(
    probe: Probe | None = None,
    *,
    workspace: Path | None = None,
    scratch: Path | None = None,
) -> MachineInfo:
    """Probe the machine: system, NVIDIA / AMD / Apple / Intel accelerators, installed PyTorch.

    Never imports torch and never raises for what it cannot find: a probe
    that fails leaves its part None (no such accelerator) or records a
    problem in plain words (``NvidiaInfo.problems``, ``AmdInfo.problems``).
    Free disk space is measured at ``workspace`` (default: the current
    folder) and ``scratch`` (default: the temporary folder).
    """
    probe = probe or SystemProbe()
    facts = probe.platform()
    system = detect_system(probe, facts, workspace or Path.cwd(), scratch or Path(tempfile.gettempdir()))
    linux = facts.system == "Linux"
    return MachineInfo(
        system=system,
        nvidia=detect_nvidia(probe, facts, wsl=system.wsl) if facts.system != "Darwin" else None,
        amd=detect_amd(probe) if linux and not system.wsl else None,
        mps=detect_mps(facts),
        xpu=detect_xpu(probe) if linux else None,
        torch=detect_torch(probe),
    )


def load_machine(path: str | os.PathLike[str] | None = None) -> MachineInfo:
    """The machine to work on: the recorded description at ``path`` (the JSON of
    ``drivelab runtime --json``), else this machine, probed.

    Raises :class:`SetupError` for a file that cannot be read as one.
    """
    if path is None:
        return detect_machine()
    from drivelab.runtime._machine.serial import machine_from_dict

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return machine_from_dict(data)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SetupError(
            f"cannot read the machine description {path}: {exc}",
            hint="pass the JSON written by `drivelab runtime --json`",
        ) from exc

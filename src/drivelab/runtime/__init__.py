"""What this machine is, and which PyTorch build fits it: plan -> install -> verify.

::

    from drivelab.runtime import detect_machine, plan_torch_install, require_torch, verify_torch
    machine = detect_machine()              # probes only; never imports torch
    plan = plan_torch_install(machine)      # offline, from the release table
    report = verify_torch(machine)          # imports torch in a fresh interpreter
    require_torch("my command")             # TorchMissingError (hint: drivelab setup torch) without torch

Every probe of the machine goes through one injectable :class:`Probe`
(``SystemProbe`` for the real machine, ``RecordedProbe`` for recorded outputs).
Names load on first use, so probing stays fast.
"""

from __future__ import annotations

from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_model": ["MachineInfo", "SystemInfo", "NvidiaInfo", "NvidiaGpu", "AmdInfo", "AmdGpu", "MpsInfo", "XpuInfo", "TorchInstall"],
    "_probe": ["Probe", "SystemProbe", "RecordedProbe", "CommandResult"],
    "_detect": ["detect_machine"],
    "_release_table": ["RELEASES", "TorchRelease", "Backend"],
    "_wheel_tags": ["DEFAULT_INDEX_ROOT"],
    "_refresh": ["refresh_releases"],
    "_serial": ["machine_from_dict"],
    "_plan": ["TorchPlan", "plan_torch_install"],
    "_install": ["InstallResult", "install_torch"],
    "_verify": ["Check", "VerifyReport", "verify_torch"],
    "_info": ["RuntimeInfo", "PanelRow", "info", "panel_rows"],
    "_usage": ["GpuUsage", "Usage", "resource_usage"],
    "_require": ["require_torch", "torch_installed"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

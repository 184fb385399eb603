"""What this machine is, and which PyTorch build fits it: plan -> install -> verify.

::

    from drivelab.runtime import detect_machine, plan_torch_install, require_torch, setup_torch, verify_torch
    machine = detect_machine()              # probes only; never imports torch
    plan = plan_torch_install(machine)      # offline, from the release table
    report = verify_torch(machine)          # imports torch in a fresh interpreter
    result = setup_torch(if_needed=True)    # all of it, as `drivelab setup torch` does
    require_torch("my command")             # TorchMissingError (hint: drivelab setup torch) without torch

Every probe of the machine goes through one injectable :class:`Probe`
(``SystemProbe`` for the real machine, ``RecordedProbe`` for recorded outputs).
Names load on first use, so probing stays fast.

Inside, one idea a room, each importing only the rooms below it:

* ``_model``: the types the rooms share (the machine, releases and plans, results);
* ``_cuda``: NVIDIA's tables (driver -> CUDA, minor-version compatibility, kernels);
* ``_builds``: the release table, wheel tags, refreshing, and the rule of what runs where;
* ``_machine``: facts from the machine (probes; NVIDIA, AMD, Intel, the system; the panel; usage);
* ``_install``: the user's overrides, the plan, pip or uv;
* ``_verify``: proving it works (and whether torch is there at all);
* ``_setup``: ``setup_torch``, the steps together.
"""

from __future__ import annotations

from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_model.machine": ["MachineInfo", "SystemInfo", "NvidiaInfo", "NvidiaGpu", "AmdInfo", "AmdGpu", "MpsInfo", "XpuInfo", "TorchInstall"],
    "_model.pytorch": ["TorchRelease", "Backend", "TorchPlan"],
    "_model.results": ["InstallResult", "Check", "VerifyReport", "RefreshResult"],
    "_model.setup": ["SetupResult"],
    "_machine.probe": ["Probe", "SystemProbe", "RecordedProbe", "RecordingProbe", "CommandResult"],
    "_machine.detect": ["detect_machine", "load_machine"],
    "_machine.serial": ["machine_from_dict"],
    "_machine.info": ["RuntimeInfo", "PanelRow", "info", "panel_rows"],
    "_machine.usage": ["GpuUsage", "Usage", "resource_usage"],
    "_builds.releases": ["RELEASES"],
    "_builds.wheel_tags": ["DEFAULT_INDEX_ROOT"],
    "_builds.refresh": ["refresh_releases"],
    "_install.plan": ["plan_torch_install"],
    "_install.pip": ["install_torch"],
    "_verify.verify": ["verify_torch"],
    "_verify.require": ["require_torch", "torch_installed"],
    "_setup": ["setup_torch"],
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS)

__all__ = [
    # the machine
    "MachineInfo",
    "SystemInfo",
    "NvidiaInfo",
    "NvidiaGpu",
    "AmdInfo",
    "AmdGpu",
    "MpsInfo",
    "XpuInfo",
    "TorchInstall",
    "Probe",
    "SystemProbe",
    "RecordedProbe",
    "RecordingProbe",
    "CommandResult",
    "detect_machine",
    "machine_from_dict",
    "load_machine",
    "RuntimeInfo",
    "PanelRow",
    "info",
    "panel_rows",
    "GpuUsage",
    "Usage",
    "resource_usage",
    # releases and builds
    "RELEASES",
    "TorchRelease",
    "Backend",
    "DEFAULT_INDEX_ROOT",
    "RefreshResult",
    "refresh_releases",
    # plan, install, verify
    "TorchPlan",
    "plan_torch_install",
    "InstallResult",
    "install_torch",
    "Check",
    "VerifyReport",
    "verify_torch",
    "require_torch",
    "torch_installed",
    "SetupResult",
    "setup_torch",
]

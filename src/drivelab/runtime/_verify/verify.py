"""Prove that the installed PyTorch works on this machine, in a fresh interpreter.

:func:`verify_torch` runs a small probe (``script.py``, beside this module) with the
interpreter being checked: it imports torch, lists the devices torch sees, runs
a matmul and a conv on each, and loads torchvision's compiled ops. The findings
are turned into :class:`Check` results here, against what the machine is and
what :func:`plan_torch_install` would install on it, each failure in plain words
with the fix. torch is never imported into this process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from drivelab.errors import PlanError
from drivelab.runtime._builds.compat import MINOR_COMPAT, NvidiaDriver
from drivelab.runtime._builds.releases import expected_torchaudio, find_release
from drivelab.runtime._cuda import kernel_runs, min_driver_for_cuda
from drivelab.runtime._install.plan import plan_torch_install
from drivelab.runtime._model.machine import MachineInfo
from drivelab.runtime._model.pytorch import TorchPlan
from drivelab.runtime._model.results import Check, VerifyReport

__all__ = ["verify_torch", "checks_from_findings", "run_probe"]

_MARK = "@@drivelab-verify@@ "
_SCRIPT = Path(__file__).with_name("script.py")

NO_KERNEL = "no kernel image is available for execution on the device"
NOT_COMPILED = "Torch not compiled with CUDA enabled"
DRIVER_TOO_OLD = "The NVIDIA driver on your system is too old"
NMS_MISSING = "operator torchvision::nms does not exist"


# -------------------------------------------------------------------------- probe


def run_probe(python: str, timeout: float) -> dict[str, Any]:
    """Run the probe in ``python``; the findings by stage, plus how the run ended."""
    source = _SCRIPT.read_text(encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONWARNINGS", "default")
    stdout, stderr, returncode, timed_out = "", "", None, False
    try:
        done = subprocess.run(
            [python, "-c", source],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),  # a ./torch folder in the current directory must not shadow the real one
            env=env,
        )
        stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        timed_out = True
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    except OSError as exc:
        return {"run": {"started": False, "error": f"{type(exc).__name__}: {exc}"}}
    findings: dict[str, Any] = {"compute": []}
    last_step = None
    for line in stdout.splitlines():
        if not line.startswith(_MARK):
            continue
        try:
            data = json.loads(line[len(_MARK):])
        except json.JSONDecodeError:
            continue
        stage = data.pop("stage", "?")
        if stage == "start":
            last_step = data.get("step")
        elif stage == "compute":
            findings["compute"].append(data)
        else:
            findings[stage] = data
    findings["run"] = {
        "started": True,
        "returncode": returncode,
        "timed_out": timed_out,
        "last_step": last_step,
        "stderr_tail": stderr.strip().splitlines()[-12:],
    }
    return findings


# ------------------------------------------------------------------------ helpers


def _local(version: str | None) -> str | None:
    if not version:
        return None
    try:
        return Version(version).local
    except InvalidVersion:
        return None


def _public(version: str | None) -> str | None:
    if not version:
        return None
    try:
        return Version(version).public
    except InvalidVersion:
        return version.split("+")[0]


def _arch_ccs(arch_list: list[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    sm, ptx = [], []
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)([a-z]?)", arch)
        if not match:
            continue
        digits = match.group(2)
        cc = (int(digits[:-1]), int(digits[-1]))
        (sm if match.group(1) == "sm" else ptx).append(cc)
    return sm, ptx


def _build_kind(imported: dict[str, Any]) -> str:
    if imported.get("cuda"):
        return "cuda"
    if imported.get("hip"):
        return "rocm"
    if imported.get("xpu_built"):
        return "xpu"
    if imported.get("mps_built"):
        return "mps"
    return "cpu"


def _build_words(kind: str, imported: dict[str, Any]) -> str:
    return {
        "cuda": f"a CUDA {imported.get('cuda')} build",
        "rocm": f"a ROCm (HIP {imported.get('hip')}) build",
        "xpu": "an XPU build",
        "mps": "a build with Apple MPS",
        "cpu": "a CPU-only build",
    }[kind]


def _expected_kind(plan: TorchPlan | None) -> str | None:
    if plan is None:
        return None
    if plan.backend.startswith("cu"):
        return "cuda"
    if plan.backend.startswith("rocm"):
        return "rocm"
    if plan.backend == "xpu":
        return "xpu"
    if plan.backend == "default" and plan.platform == "macos_arm64":
        return "mps"
    return "cpu"


def _setup_fix(plan: TorchPlan | None, extra: str = "") -> str:
    if plan is None:
        return "run `drivelab setup torch --dry-run` to see which build fits this machine"
    return f"run `drivelab setup torch{extra}`: it installs {', '.join(plan.requirements())} from {plan.index_url or plan.find_links}"


def _nvidia_gpus(machine: MachineInfo) -> list[tuple[str, tuple[int, int] | None]]:
    if machine.nvidia is None:
        return []
    return [(gpu.name, gpu.compute_capability) for gpu in machine.nvidia.gpus]


def _driver_cuda(machine: MachineInfo) -> tuple[int, int] | None:
    driver = NvidiaDriver.of(machine)
    return driver.cuda if driver else None


def _version_tuple(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    parts = re.findall(r"\d+", text)
    return (int(parts[0]), int(parts[1])) if len(parts) >= 2 else None


# ------------------------------------------------------------------------- checks


def checks_from_findings(machine: MachineInfo, findings: dict[str, Any], expected: TorchPlan | None, python: str) -> list[Check]:
    """Turn the probe's findings into checks (pure: testable with recorded findings)."""
    checks: list[Check] = []
    run = findings.get("run", {})
    if not run.get("started", True):
        return [Check("python", False, f"{python} could not be started: {run.get('error')}", "pass a working Python interpreter")]
    info = findings.get("python")
    if info is None:
        tail = " / ".join(run.get("stderr_tail", [])[-3:])
        return [Check("python", False, f"{python} did not run the check (exit code {run.get('returncode')}): {tail}", "pass a working Python interpreter")]

    imported = findings.get("import")
    packages = info.get("packages") or {}
    if imported is None or not imported.get("ok"):
        checks.append(_import_failure(imported, packages, expected, python))
        checks.extend(_crash_checks(run))
        return checks
    torch_version = imported.get("version")
    kind = _build_kind(imported)
    checks.append(Check("torch", True, f"torch {torch_version} imports: {_build_words(kind, imported)} (Python {info.get('version')})"))

    gpus = _nvidia_gpus(machine)
    expected_kind = _expected_kind(expected)
    cuda = findings.get("cuda") or {}
    cuda_text = " ".join(cuda.get("warnings", []) + [cuda.get("error") or ""])

    # The build fits the machine?
    checks.append(_build_check(machine, kind, expected_kind, expected, torch_version, imported, gpus))

    # The driver runs this CUDA build (natively, or through minor-version compatibility)?
    driver = NvidiaDriver.of(machine)
    driver_cuda = driver.cuda if driver else None
    built_cuda = _version_tuple(imported.get("cuda"))
    mode = driver.runs(built_cuda) if driver is not None else None
    no_jit: str | None = None
    driver_failed = False
    if kind == "cuda" and (gpus or machine.nvidia is not None):
        too_old = DRIVER_TOO_OLD.lower() in cuda_text.lower() or (
            driver_cuda is not None and built_cuda is not None and mode is None
        )
        if too_old:
            driver_failed = True
            need = min_driver_for_cuda(built_cuda) if built_cuda else None
            driver = machine.nvidia.driver_version if machine.nvidia else None
            checks.append(
                Check(
                    "driver",
                    False,
                    f'"{DRIVER_TOO_OLD}": torch {torch_version} is built for CUDA {imported.get("cuda")}, but driver '
                    f"{driver or '(unknown)'} supports CUDA {'.'.join(map(str, driver_cuda)) if driver_cuda else '(unknown)'} "
                    "at most, so CUDA cannot start.",
                    f"upgrade the NVIDIA driver to {need or 'a newer one'} or later, or install the build that fits this driver: "
                    + _setup_fix(expected),
                )
            )
        elif mode == MINOR_COMPAT:
            assert driver is not None
            no_jit = (
                f"built with CUDA {imported.get('cuda')}, newer than the driver's CUDA {'.'.join(map(str, driver_cuda or ()))}, which "
                "cannot JIT-compile its PTX"
            )
            checks.append(
                Check(
                    "driver",
                    True,
                    f"driver {driver.version} runs CUDA {imported.get('cuda')} builds through CUDA's minor-version compatibility "
                    f"(natively it supports CUDA {'.'.join(map(str, driver_cuda or ()))}): GPUs need kernels compiled for them, "
                    "and features that need a newer driver may be missing",
                )
            )
        else:
            checks.append(Check("driver", True, f"driver {machine.nvidia.driver_version if machine.nvidia else '?'} runs CUDA {imported.get('cuda')} builds"))
    elif gpus and expected is not None and expected.backend == "cpu" and expected.warnings:
        checks.append(
            Check("driver", False, expected.warnings[0], "upgrade the NVIDIA driver, then run `drivelab setup torch` again")
        )

    # Devices seen.
    checks.extend(_device_checks(machine, kind, expected_kind, findings, gpus, driver_failed, cuda_text))

    # Kernels for each GPU.
    checks.extend(_kernel_checks(kind, cuda, expected, no_jit=no_jit))

    # Compute on each device.
    for result in findings.get("compute", []):
        device = result.get("device")
        if result.get("ok"):
            checks.append(Check(f"compute {device}", True, f"a matmul and a conv run on {device} ({result.get('seconds', 0):.2f} s)"))
            continue
        error = result.get("error") or "failed"
        if NO_KERNEL in error:
            checks.append(
                Check(
                    f"compute {device}",
                    False,
                    f'Running on {device} fails with "{NO_KERNEL}": this build has no kernels for the GPU.',
                    _setup_fix(expected) if expected and expected.backend != _local(torch_version) else "no PyTorch build has kernels for this GPU",
                )
            )
        else:
            checks.append(Check(f"compute {device}", False, f"a matmul/conv on {device} failed: {error}", _setup_fix(expected, " --reinstall")))
    checks.extend(_crash_checks(run))

    checks.extend(_torchvision_checks(findings, packages, torch_version, expected))
    checks.extend(_torchaudio_checks(findings, packages, torch_version, expected))
    checks.extend(_probe_checks(machine))
    return checks


def _import_failure(imported: dict[str, Any] | None, packages: dict[str, Any], expected: TorchPlan | None, python: str) -> Check:
    error = (imported or {}).get("error") or "the probe stopped before importing torch"
    if packages.get("torch") is None and "ModuleNotFoundError" in error:
        return Check("torch", False, f"PyTorch is not installed for {python}.", _setup_fix(expected))
    why = ""
    low = error.lower()
    if re.search(r"lib(cudart|cublas|cudnn|nccl|nvrtc|cusparse|cufft|curand|nvjitlink)", low):
        why = " A CUDA library that torch needs is missing or of another version: the install is incomplete or mixed."
    elif "undefined symbol" in low:
        why = " torch's libraries do not match each other: an upgrade was interrupted or two builds were mixed."
    elif "numpy" in low:
        why = " The installed NumPy does not match this torch (a torch built for NumPy 1.x with NumPy 2?)."
    elif "libamdhip" in low or "libhsa" in low:
        why = " A ROCm library is missing: the ROCm build needs AMD's GPU driver (amdgpu) installed."
    version = (packages.get("torch") or {}).get("version")
    return Check(
        "torch",
        False,
        f"import torch fails{f' (torch {version} is installed)' if version else ''}: {error}.{why}",
        _setup_fix(expected, " --reinstall"),
    )


def _build_check(
    machine: MachineInfo,
    kind: str,
    expected_kind: str | None,
    expected: TorchPlan | None,
    torch_version: str | None,
    imported: dict[str, Any],
    gpus: list[tuple[str, tuple[int, int] | None]],
) -> Check:
    words = _build_words(kind, imported)
    if expected_kind is None:
        return Check("build", True, f"torch {torch_version} is {words}; no plan fits this machine to compare with")
    if expected_kind == kind or (expected_kind == "cpu" and kind == "mps"):
        return Check("build", True, f"torch {torch_version} is {words}, the kind this machine needs")
    if expected_kind == "cpu":
        return Check("build", True, f"torch {torch_version} is {words}; this machine has no GPU it can use, so it runs on the CPU")
    names = ", ".join(sorted({name for name, _ in gpus})) or "a GPU"
    if expected_kind == "cuda":
        detail = (
            f'torch {torch_version} is {words}, but this machine has {names}: using the GPU fails with "{NOT_COMPILED}" '
            "(and torch.cuda.is_available() is False)."
        )
    elif expected_kind == "rocm":
        amd = ", ".join(f"{g.name} ({g.gfx})" for g in (machine.amd.gpus if machine.amd else ()))
        detail = f"torch {torch_version} is {words}, but this machine's GPU is AMD {amd}: it needs a ROCm build, or the GPU goes unused."
    elif expected_kind == "xpu":
        detail = f"torch {torch_version} is {words}, but this machine's GPU is an Intel GPU: it needs the XPU build, or the GPU goes unused."
    else:
        detail = f"torch {torch_version} is {words}, without Apple's MPS: on Apple silicon the PyPI build has it."
    return Check("build", False, detail, _setup_fix(expected))


def _device_checks(
    machine: MachineInfo,
    kind: str,
    expected_kind: str | None,
    findings: dict[str, Any],
    gpus: list[tuple[str, tuple[int, int] | None]],
    driver_failed: bool,
    cuda_text: str,
) -> list[Check]:
    cuda = findings.get("cuda") or {}
    out: list[Check] = []
    if kind == "cuda" and gpus and not driver_failed:
        count = int(cuda.get("count") or 0)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if not cuda.get("available"):
            out.append(
                Check(
                    "devices",
                    False,
                    f"torch.cuda.is_available() is False although this machine has {len(gpus)} NVIDIA GPU(s)"
                    + (f": {cuda_text.strip()}" if cuda_text.strip() else "")
                    + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""),
                    "check that `nvidia-smi` works and that CUDA_VISIBLE_DEVICES does not hide the GPUs; after a driver update, reboot",
                )
            )
        elif count < len(gpus) and visible is None:
            out.append(
                Check(
                    "devices",
                    False,
                    f"CUDA sees {count} of the {len(gpus)} NVIDIA GPUs on this machine",
                    "check `nvidia-smi` for a GPU in a bad state (Xid errors); a reboot or `nvidia-smi -r` may bring it back",
                )
            )
        else:
            note = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None and count < len(gpus) else ""
            out.append(Check("devices", True, f"CUDA sees {count} GPU(s){note}: " + ", ".join(d["name"] for d in cuda.get("devices", []))))
    elif kind == "rocm" and machine.amd is not None and machine.amd.gpus:
        count = int(cuda.get("count") or 0)
        ok = bool(cuda.get("available")) and count >= 1
        out.append(
            Check(
                "devices",
                ok,
                f"ROCm sees {count} of {len(machine.amd.gpus)} AMD GPU(s)" + ("" if ok else f": {cuda_text.strip()}"),
                None if ok else "check that `rocminfo` lists the GPU and that your user is in the render and video groups",
            )
        )
    elif expected_kind == "mps" and kind == "mps":
        mps = findings.get("mps") or {}
        ok = bool(mps.get("available"))
        out.append(
            Check(
                "devices",
                ok,
                "MPS (Apple GPU) is available" if ok else "torch has MPS built in, but MPS is not available on this Mac",
                None if ok else "MPS needs macOS 12.3 or later (14+ recommended) on Apple silicon; update macOS",
            )
        )
    elif kind == "xpu":
        xpu = findings.get("xpu") or {}
        ok = bool(xpu.get("available"))
        out.append(
            Check(
                "devices",
                ok or not (machine.xpu and machine.xpu.devices),
                f"XPU sees {xpu.get('count', 0)} Intel GPU(s)",
                None if ok else "install Intel's GPU driver (the level-zero runtime) for the XPU build",
            )
        )
    elif not gpus and expected_kind in (None, "cpu"):
        out.append(Check("devices", True, "no GPU on this machine: torch runs on the CPU"))
    return out


def _kernel_checks(kind: str, cuda: dict[str, Any], expected: TorchPlan | None, *, no_jit: str | None = None) -> list[Check]:
    """One check per GPU: does the build carry kernels that run on it? ``no_jit`` says why the
    driver cannot JIT-compile the build's PTX (minor-version compatibility), when it cannot."""
    out: list[Check] = []
    arch_list = list(cuda.get("arch_list") or [])
    if kind == "cuda":
        sm, ptx = _arch_ccs(arch_list)
        for device in cuda.get("devices", []):
            cc = tuple(device.get("capability") or ())
            if len(cc) != 2:
                continue
            label = f"GPU {device['index']} ({device['name']}, compute capability {cc[0]}.{cc[1]})"
            if kernel_runs(cc, sm, () if no_jit else ptx):  # type: ignore[arg-type]
                out.append(Check(f"kernels cuda:{device['index']}", True, f"{label}: this build has kernels for it"))
            elif no_jit and kernel_runs(cc, (), ptx):  # type: ignore[arg-type]
                out.append(
                    Check(
                        f"kernels cuda:{device['index']}",
                        False,
                        f"{label}: this build has it covered only by PTX ({', '.join(a for a in arch_list if a.startswith('compute_'))}), "
                        f"{no_jit}, so its kernels do not load on this GPU.",
                        "upgrade the NVIDIA driver, or install the build that fits this driver: " + _setup_fix(expected),
                    )
                )
            else:
                out.append(
                    Check(
                        f"kernels cuda:{device['index']}",
                        False,
                        f'{label}: this build carries {", ".join(arch_list) or "no"} kernels and none run on it, so every '
                        f'GPU operation fails with "{NO_KERNEL}".',
                        _setup_fix(expected),
                    )
                )
    elif kind == "rocm":
        for device in cuda.get("devices", []):
            gfx = (device.get("gcn_arch") or "").split(":")[0]
            if not gfx or not arch_list:
                continue
            ok = gfx in arch_list
            out.append(
                Check(
                    f"kernels cuda:{device['index']}",
                    ok,
                    f"GPU {device['index']} ({device['name']}, {gfx}): "
                    + ("this build has kernels for it" if ok else f"this build carries {', '.join(arch_list)}, not {gfx}"),
                    None if ok else _setup_fix(expected),
                )
            )
    return out


def _crash_checks(run: dict[str, Any]) -> list[Check]:
    if run.get("timed_out"):
        return [
            Check(
                "finished",
                False,
                f"the check did not finish in time (stuck at: {run.get('last_step') or 'start-up'}); a GPU that hangs or a very slow first CUDA start",
                "run `nvidia-smi` (or `rocm-smi`) to see whether the GPU answers; retry with a longer --timeout",
            )
        ]
    code = run.get("returncode")
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return [
            Check(
                "finished",
                False,
                f"the interpreter crashed ({name}) during: {run.get('last_step') or 'start-up'}",
                "a crash inside the GPU runtime usually means a GPU this build does not support, or a broken driver; "
                "run `drivelab setup torch --dry-run` to see the build that fits",
            )
        ]
    return []


def _requires_mismatch(requires: list[str], torch_public: str) -> str | None:
    """The first ``torch`` requirement the installed torch does not meet."""
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.name.lower() == "torch" and req.specifier and not req.specifier.contains(torch_public, prereleases=True):
            return str(req)
    return None


def _family_fix(torch_version: str, package: str, expected: TorchPlan | None) -> str:
    release = find_release(_public(torch_version) or "")
    want = release.package_version(package) if release else None
    build = _local(torch_version)
    pin = f"{package}=={want}+{build}" if want and build else (f"{package}=={want}" if want else None)
    if expected is not None and expected.torch_release == _public(torch_version):
        return _setup_fix(expected)
    if pin:
        return f"install the {package} of this torch: `{pin}` from the same index as torch, or run `drivelab setup torch` for a whole matching set"
    return "run `drivelab setup torch` to install a matching set"


def _torchvision_checks(findings: dict[str, Any], packages: dict[str, Any], torch_version: str, expected: TorchPlan | None) -> list[Check]:
    meta = packages.get("torchvision")
    if meta is None:
        return [Check("torchvision", True, "torchvision is not installed (optional)")]
    out: list[Check] = []
    version = meta.get("version")
    torch_public = _public(torch_version) or ""
    problems = []
    mismatch = _requires_mismatch(meta.get("requires_torch", []), torch_public)
    if mismatch:
        problems.append(f"torchvision {version} was built for {mismatch.replace('==', ' ')}, but torch {torch_version} is installed")
    release = find_release(torch_public)
    if release is not None and _public(version) != release.torchvision and not mismatch:
        problems.append(f"torchvision {version} does not go with torch {torch_public} (that is torchvision {release.torchvision})")
    if _local(version) and _local(torch_version) and _local(version) != _local(torch_version):
        problems.append(f"torchvision is the {_local(version)} build but torch is the {_local(torch_version)} build")
    if problems:
        out.append(Check("torchvision version", False, "; ".join(problems) + ".", _family_fix(torch_version, "torchvision", expected)))
    else:
        out.append(Check("torchvision version", True, f"torchvision {version} matches torch {torch_version}"))

    result = findings.get("torchvision")
    if result is None:
        out.append(Check("torchvision ops", False, "torchvision was not tested (the check stopped before it)", None))
    elif result.get("ok"):
        out.append(Check("torchvision ops", True, "torchvision's compiled ops load (torchvision.ops.nms runs)"))
    else:
        error = result.get("error") or "failed"
        if NMS_MISSING in error or "torchvision::" in error:
            detail = (
                f'import torchvision fails with "{NMS_MISSING}": torchvision\'s compiled operators do not load into this '
                "torch, because torchvision and torch come from different releases or builds"
                + (f" ({problems[0]})" if problems else "")
                + "."
            )
        else:
            detail = f"torchvision.ops.nms fails: {error}"
        out.append(Check("torchvision ops", False, detail, _family_fix(torch_version, "torchvision", expected)))
    return out


def _torchaudio_checks(findings: dict[str, Any], packages: dict[str, Any], torch_version: str, expected: TorchPlan | None) -> list[Check]:
    meta = packages.get("torchaudio")
    if meta is None:
        return [Check("torchaudio", True, "torchaudio is not installed (optional)")]
    version = meta.get("version")
    problems = []
    torch_public = _public(torch_version) or ""
    mismatch = _requires_mismatch(meta.get("requires_torch", []), torch_public)
    want = expected_torchaudio(torch_public)
    if mismatch:
        problems.append(f"torchaudio {version} was built for {mismatch.replace('==', ' ')}, but torch {torch_version} is installed")
    elif want is not None and _public(version) != want:
        problems.append(f"torchaudio {version} does not go with torch {torch_public} (that is torchaudio {want})")
    if _local(version) and _local(torch_version) and _local(version) != _local(torch_version):
        problems.append(f"torchaudio is the {_local(version)} build but torch is the {_local(torch_version)} build")
    result = findings.get("torchaudio") or {}
    if result and not result.get("ok"):
        problems.append(f"import torchaudio fails: {result.get('error')}")
    if problems:
        return [Check("torchaudio", False, "; ".join(problems) + ".", _family_fix(torch_version, "torchaudio", expected))]
    return [Check("torchaudio", True, f"torchaudio {version} matches torch {torch_version} and imports")]


def _probe_checks(machine: MachineInfo) -> list[Check]:
    problems = []
    for info in (machine.nvidia, machine.amd):
        if info is not None:
            problems.extend(info.problems)
    if not problems:
        return []
    unusable = machine.nvidia is not None and machine.nvidia.problems and _driver_cuda(machine) is None
    return [
        Check(
            "machine probes",
            not unusable,
            "probing the GPU reported: " + "; ".join(problems),
            "a driver/library version mismatch clears after a reboot (or reloading the nvidia kernel module); "
            "a missing nvidia-smi means the driver is not installed"
            if unusable
            else None,
        )
    ]


# --------------------------------------------------------------------------- main


def verify_torch(machine: MachineInfo, *, python: str | os.PathLike[str] = sys.executable, timeout: float = 120) -> VerifyReport:
    """Check the PyTorch of ``python`` against ``machine``, in a fresh interpreter.

    Never raises for a broken environment: every problem is a failed
    :class:`Check` with a ``fix``. ``timeout`` bounds the probe (a hung GPU).
    """
    start = time.perf_counter()
    python = str(python)
    findings = run_probe(python, timeout)
    info = findings.get("python") or {}
    checked = machine
    if info.get("version"):
        # Plan for the interpreter that was checked, not the one running drivelab.
        checked = replace(machine, system=replace(machine.system, python_version=info["version"]))
    try:
        expected: TorchPlan | None = plan_torch_install(checked, env={})
    except PlanError:
        expected = None
    checks = checks_from_findings(checked, findings, expected, python)
    imported = findings.get("import") or {}
    return VerifyReport(
        python=python,
        checks=tuple(checks),
        python_version=info.get("version"),
        torch=imported.get("version") if imported.get("ok") else None,
        expected=expected,
        findings=findings,
        seconds=time.perf_counter() - start,
    )

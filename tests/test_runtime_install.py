"""Installing and verifying PyTorch: commands, logs, verification, and the real thing offline.

The slow tests install the real CPU torch into a fresh virtual environment with
``--no-index --find-links`` (no index, no network): the wheelhouse is built
once per session from what this environment has installed, each wheel
rebuilt from its installed files and RECORD (torch and its dependencies), so
nothing is downloaded. torchvision is a tiny wheel built here: one that goes
with the installed torch (its ``torchvision::nms`` op defined in Python), and
one built "for torch 2.9.1" whose op does not load.

Tests that need an installed torch, or a CPU build of it, skip without one, and
fail instead under ``CI=true`` (``tests/_guards.py``).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import zipfile
from importlib import metadata
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest
from _guards import skip_or_fail
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from drivelab import _subprocess
from drivelab.errors import InstallError, SetupError
from drivelab.runtime import (
    Check,
    InstallResult,
    MachineInfo,
    NvidiaGpu,
    NvidiaInfo,
    SetupResult,
    SystemInfo,
    TorchInstall,
    TorchPlan,
    VerifyReport,
    install_torch,
    plan_torch_install,
    setup_torch,
    verify_torch,
)
from drivelab.runtime._builds.releases import find_release
from drivelab.runtime._install.pip import build_matches, installer_argv
from drivelab.runtime._verify.verify import checks_from_findings

PY = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


def system(python: str = PY) -> SystemInfo:
    return SystemInfo(os="Linux", os_release="6.8.0", arch="x86_64", python_version=python)


NO_GPU = MachineInfo(system=system())
H100 = MachineInfo(
    system=system(),
    nvidia=NvidiaInfo("580.65.06", (13, 0), (NvidiaGpu(0, "NVIDIA H100 80GB HBM3", 81559, (9, 0)),), source="nvml"),
)


def installed_torch() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


@pytest.fixture
def torch_here() -> str:
    """The installed torch's version; the test skips without one (fails under CI)."""
    version = installed_torch()
    if version is None:
        skip_or_fail("torch is not installed in the test environment")
    return version


def require_cpu_torch() -> str:
    """The installed torch's version when it is a CPU build (``+cpu``); else skip (fail under CI)."""
    version = installed_torch()
    if version is None:
        skip_or_fail("torch is not installed in the test environment")
    if Version(version).local != "cpu":
        skip_or_fail(f"the installed torch ({version}) is not a CPU build")
    return version


@pytest.fixture
def cpu_torch() -> str:
    return require_cpu_torch()


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_plan(**changes) -> TorchPlan:
    fields = dict(
        backend="cpu",
        index_url="https://download.pytorch.org/whl/cpu",
        find_links=None,
        packages={"torch": "2.13.0+cpu", "torchvision": "0.28.0+cpu"},
        torch_release="2.13.0",
        python="3.11",
        platform="linux_x86_64",
        explanation="test",
    )
    fields.update(changes)
    return TorchPlan(**fields)


# ------------------------------------------------------------------ commands


def test_pip_installs_from_one_index_with_exact_build_pins():
    argv = installer_argv(cpu_plan(), python="/venv/bin/python", installer="pip")
    assert argv[:4] == ["/venv/bin/python", "-m", "pip", "install"]
    assert argv[argv.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "--extra-index-url" not in argv and "--no-deps" not in argv
    assert argv[-2:] == ["torch==2.13.0+cpu", "torchvision==0.28.0+cpu"]


def test_find_links_installs_offline():
    argv = installer_argv(cpu_plan(index_url=None, find_links="/wheels"), python="py", installer="pip")
    assert argv[argv.index("--no-index") + 1 : argv.index("--no-index") + 3] == ["--find-links", "/wheels"]
    assert "--index-url" not in argv


def test_forced_step_reinstalls_only_the_family_without_dependencies():
    argv = installer_argv(cpu_plan(), python="py", installer="pip", requirements=["torch==2.13.0+cpu"], force=True)
    assert "--force-reinstall" in argv and "--no-deps" in argv and argv[-1] == "torch==2.13.0+cpu"


def test_uv_command():
    argv = installer_argv(cpu_plan(), python="/venv/bin/python", installer="uv", uv="/usr/bin/uv")
    assert argv[:6] == ["/usr/bin/uv", "pip", "install", "--python", "/venv/bin/python", "--no-config"]
    assert "--extra-index-url" not in argv and "--index-url" in argv
    forced = installer_argv(cpu_plan(), python="py", installer="uv", requirements=["torch==2.13.0+cpu"], force=True)
    assert "--reinstall-package=torch" in forced and "--no-deps" in forced


@pytest.mark.parametrize(
    "installed,pin,build,ok",
    [
        ("2.13.0+cpu", "2.13.0+cpu", "cpu", True),
        ("2.13.0+cpu", "2.13.0+cu130", "cu130", False),  # the trap: +cpu never satisfies a CUDA pin
        ("2.13.0", "2.13.0+cu130", "cu130", False),
        ("2.12.0+cu130", "2.13.0+cu130", "cu130", False),
        ("2.13.0", "2.13.0", "default", True),
        ("2.13.0+cpu", "2.13.0", "default", False),
        ("2.13.0+cpu", "2.13.0", "cpu", True),  # aarch64 CPU pins carry no tag
        (None, "2.13.0+cpu", "cpu", False),
    ],
)
def test_build_matches(installed, pin, build, ok):
    assert build_matches(installed, pin, build) is ok


def test_redact_hides_credentials():
    text = "Looking in indexes: https://alice:s3cr3t@mirror.example/whl/cu130 token=abc123&x=1"
    out = _subprocess.redact(text, secrets=["extra-secret"])
    assert "s3cr3t" not in out and "abc123" not in out and "https://alice:***@mirror.example" in out


def test_stream_keeps_a_redacted_log(tmp_path):
    log = tmp_path / "logs" / "run.log"
    code = "print('https://bob:hunter2@example.org/simple'); import sys; sys.exit(3)"
    done = _subprocess.stream([sys.executable, "-c", code], log=log)
    assert done.returncode == 3 and done.log == log
    text = log.read_text()
    assert "hunter2" not in text and "bob:***@example.org" in text and "[exit code 3]" in text
    assert done.tail == ["https://bob:***@example.org/simple"]


def test_install_failure_names_the_log_and_quotes_it(tmp_path):
    # Nothing in the folder matches: pip fails before touching this environment.
    (tmp_path / "wheels").mkdir()
    plan = cpu_plan(index_url=None, find_links=str(tmp_path / "wheels"), packages={"torch": "0.0.1+cpu"})
    with pytest.raises(InstallError) as err:
        install_torch(plan, python=sys.executable, installer="pip", log_dir=tmp_path / "logs")
    message = str(err.value)
    (log,) = (tmp_path / "logs").glob("setup-torch-*.log")
    assert str(log) in message and "| " in message
    assert "torch==0.0.1+cpu" in log.read_text()
    assert "no wheel for torch==0.0.1+cpu" in err.value.hint


def test_install_into_a_missing_interpreter_is_an_install_error(tmp_path):
    with pytest.raises(InstallError, match="cannot run the Python interpreter"):
        install_torch(cpu_plan(), python=str(tmp_path / "nope" / "python"))


def test_unreachable_index_says_so_and_names_both_ways_out(tmp_path, monkeypatch):
    # A version no index has, from a loopback port that refuses connections: pip fails
    # before it could change anything in this environment.
    monkeypatch.setenv("PIP_RETRIES", "0")
    port = closed_port()
    plan = cpu_plan(index_url=f"http://alice:s3cr3t@127.0.0.1:{port}/whl/cpu", packages={"torch": "0.0.1+cpu"})
    with pytest.raises(InstallError) as err:
        install_torch(plan, python=sys.executable, installer="pip", log_dir=tmp_path / "logs")
    message = str(err.value)
    assert f"the package index http://alice:***@127.0.0.1:{port}/whl/cpu could not be reached" in message
    assert "s3cr3t" not in message + err.value.hint
    assert "Connection refused" in message and "full output in" in message
    assert "DRIVELAB_TORCH_SPEC" in err.value.hint and "--find-links" in err.value.hint


# ------------------------------------------------------------------ verify: recorded findings


def findings(torch="2.13.0+cu130", cuda="13.0", devices=((0, "NVIDIA GeForce GTX 1080", [6, 1]),), arch=("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"), compute_error=None, cuda_warnings=(), available=True, torchvision=None):
    out = {
        "run": {"started": True, "returncode": 0, "timed_out": False, "last_step": None, "stderr_tail": []},
        "python": {"version": PY, "packages": {"torch": {"version": torch, "requires_torch": []}, "torchvision": None, "torchaudio": None}},
        "import": {"ok": True, "version": torch, "cuda": cuda, "hip": None, "xpu_built": False, "mps_built": False, "warnings": []},
        "cuda": {
            "available": available,
            "count": len(devices) if available else 0,
            "arch_list": list(arch),
            "devices": [{"index": i, "name": n, "capability": cc} for i, n, cc in devices] if available else [],
            "warnings": list(cuda_warnings),
            "error": None,
        },
        "mps": {"built": False, "available": False},
        "xpu": {"available": False, "count": 0},
        "compute": [{"device": "cpu", "ok": True, "error": None, "seconds": 0.01}],
    }
    if available:
        for i, _, _ in devices:
            out["compute"].append({"device": f"cuda:{i}", "ok": compute_error is None, "error": compute_error, "seconds": 0.1})
    if torchvision is not None:
        meta, result = torchvision
        out["python"]["packages"]["torchvision"] = meta
        out["torchvision"] = result
    return out


def pascal_machine(driver="580.82.07", cuda=(13, 0)):
    gpu = NvidiaGpu(0, "NVIDIA GeForce GTX 1080", 8192, (6, 1))
    return MachineInfo(system=system(), nvidia=NvidiaInfo(driver, cuda, (gpu,), source="nvml"))


def by_name(checks):
    return {c.name: c for c in checks}


def test_no_kernel_image_is_explained_with_the_build_that_fits():
    m = pascal_machine()
    expected = plan_torch_install(m, env={})
    error = "AcceleratorError: CUDA error: no kernel image is available for execution on the device"
    checks = by_name(checks_from_findings(m, findings(compute_error=error), expected, "python"))
    kernels = checks["kernels cuda:0"]
    assert not kernels.ok and "no kernel image is available" in kernels.detail and "6.1" in kernels.detail
    assert "torch==2.14.1+cu126" in kernels.fix and "drivelab setup torch" in kernels.fix
    assert not checks["compute cuda:0"].ok and "cu126" in checks["compute cuda:0"].fix
    assert checks["build"].ok  # a CUDA build is the right kind; its archs are the problem


def test_driver_too_old_is_explained():
    m = pascal_machine(driver="550.54.14", cuda=(12, 4))
    warning = "CUDA initialization: The NVIDIA driver on your system is too old (found version 12040)."
    f = findings(torch="2.13.0+cu126", cuda="12.6", arch=("sm_50", "sm_60"), available=False, cuda_warnings=[warning])
    checks = by_name(checks_from_findings(m, f, plan_torch_install(m, env={}), "python"))
    driver = checks["driver"]
    assert not driver.ok and "The NVIDIA driver on your system is too old" in driver.detail
    assert "560.28.03" in driver.fix  # what CUDA 12.6 needs
    assert "devices" not in checks  # one explanation, not two


def a100_r535() -> MachineInfo:
    return MachineInfo(system=system(), nvidia=NvidiaInfo("535.183.01", (12, 2), (NvidiaGpu(0, "NVIDIA A100-SXM4-40GB", 40960, (8, 0)),), source="nvml"))


def test_a_build_the_driver_runs_by_minor_version_compatibility_passes():
    m = a100_r535()
    a100 = ((0, "NVIDIA A100-SXM4-40GB", [8, 0]),)
    f = findings(torch="2.14.1+cu126", cuda="12.6", devices=a100, arch=("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"))
    checks = by_name(checks_from_findings(m, f, plan_torch_install(m, env={}), "python"))
    assert checks["driver"].ok and "minor-version compatibility" in checks["driver"].detail
    assert checks["kernels cuda:0"].ok
    # Its only kernel for this GPU as PTX of a newer CUDA than the driver's: nothing loads.
    f = findings(torch="2.14.1+cu126", cuda="12.6", devices=a100, arch=("sm_70", "sm_75", "compute_75"))
    kernels = by_name(checks_from_findings(m, f, plan_torch_install(m, env={}), "python"))["kernels cuda:0"]
    assert not kernels.ok and "only by PTX (compute_75)" in kernels.detail and "cannot JIT-compile" in kernels.detail
    assert "torch==2.14.1+cu126" in kernels.fix
    # The same build on a driver that runs CUDA 12.6 natively JIT-compiles that PTX.
    native = MachineInfo(system=system(), nvidia=NvidiaInfo("560.35.03", (12, 6), m.nvidia.gpus, source="nvml"))
    assert by_name(checks_from_findings(native, f, plan_torch_install(native, env={}), "python"))["kernels cuda:0"].ok


def test_cpu_build_on_a_gpu_machine_is_not_compiled_with_cuda():
    f = findings(torch="2.13.0+cpu", cuda=None, available=False, arch=())
    checks = by_name(checks_from_findings(H100, f, plan_torch_install(H100, env={}), "python"))
    assert not checks["build"].ok and "Torch not compiled with CUDA enabled" in checks["build"].detail
    assert "cu130" in checks["build"].fix


def test_mismatched_torchvision_is_explained():
    meta = {"version": "0.24.1+cpu", "requires_torch": ["torch==2.9.1"]}
    result = {"ok": False, "error": "RuntimeError: operator torchvision::nms does not exist"}
    f = findings(torch="2.13.0+cpu", cuda=None, available=False, arch=(), torchvision=(meta, result))
    checks = by_name(checks_from_findings(NO_GPU, f, plan_torch_install(NO_GPU, env={}), "python"))
    version = checks["torchvision version"]
    assert not version.ok and "built for torch 2.9.1" in version.detail and "torch 2.13.0+cpu is installed" in version.detail
    ops = checks["torchvision ops"]
    assert not ops.ok and "operator torchvision::nms does not exist" in ops.detail
    assert "torchvision==0.28.0+cpu" in ops.fix


def test_a_crash_and_a_missing_torch_are_explained():
    f = findings()
    f["run"].update(returncode=-11, last_step="compute on cuda:0")
    f["compute"] = f["compute"][:1]
    checks = by_name(checks_from_findings(pascal_machine(), f, None, "python"))
    assert not checks["finished"].ok and "SIGSEGV" in checks["finished"].detail and "cuda:0" in checks["finished"].detail
    f = {"run": {"started": True, "returncode": 0, "timed_out": False, "stderr_tail": []},
         "python": {"version": PY, "packages": {"torch": None, "torchvision": None, "torchaudio": None}},
         "import": {"ok": False, "error": "ModuleNotFoundError: No module named 'torch'"}, "compute": []}  # fmt: skip
    (check,) = checks_from_findings(NO_GPU, f, plan_torch_install(NO_GPU, env={}), "/venv/bin/python")
    assert not check.ok and "not installed" in check.detail and "drivelab setup torch" in check.fix


# ------------------------------------------------------------------ verify: this environment


def test_verify_this_environment_without_gpu_passes(torch_here):
    report = verify_torch(NO_GPU)
    assert report.ok, [c for c in report.checks if not c.ok]
    assert report.torch == torch_here
    names = [c.name for c in report.checks]
    assert "torch" in names and "compute cpu" in names
    json.dumps(report.to_dict())


def test_verify_this_cpu_build_on_a_claimed_nvidia_gpu_says_it_does_not_fit(cpu_torch):
    report = verify_torch(H100)
    assert not report.ok
    (failure,) = report.failures
    assert failure.name == "build"
    assert "Torch not compiled with CUDA enabled" in failure.detail and "NVIDIA H100" in failure.detail
    assert "drivelab setup torch" in failure.fix and "+cu130" in failure.fix


def test_verify_a_python_without_torch(tmp_path):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    report = verify_torch(NO_GPU, python=venv / "bin" / "python")
    assert not report.ok
    assert report.checks[0].detail.startswith("PyTorch is not installed")


# ------------------------------------------------------------------ the real install, offline


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(folder: Path, name: str, version: str, files: dict[str, str], requires: list[str]) -> Path:
    """A minimal pure-Python wheel (PEP 427): the files, METADATA, WHEEL and RECORD."""
    dist = f"{name}-{version}.dist-info"
    content = {path: text.encode() for path, text in files.items()}
    content[f"{dist}/METADATA"] = (
        "Metadata-Version: 2.1\n" f"Name: {name}\n" f"Version: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    content[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: drivelab-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in content.items()) + f"{dist}/RECORD,,\n"
    content[f"{dist}/RECORD"] = record.encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in content.items():
            zf.writestr(member, data)
    return path


def good_torchvision(version: str) -> dict[str, str]:
    """A torchvision stand-in of ``version`` whose ``torchvision::nms`` op is defined in Python."""
    return {
        "torchvision/__init__.py": f'''"""Test stand-in for torchvision: its nms op is defined in Python."""
import torch

__version__ = "{version}"
'''
        + '''

def _nms(dets, scores, iou_threshold):
    keep = []
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool)
    area = (dets[:, 2] - dets[:, 0]) * (dets[:, 3] - dets[:, 1])
    for i in scores.argsort(descending=True).tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(dets[i, 2], dets[:, 2]) - torch.maximum(dets[i, 0], dets[:, 0])).clamp(min=0)
        h = (torch.minimum(dets[i, 3], dets[:, 3]) - torch.maximum(dets[i, 1], dets[:, 1])).clamp(min=0)
        suppressed |= (w * h) / (area[i] + area - w * h) > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


_lib = torch.library.Library("torchvision", "DEF")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.impl("nms", _nms, "CPU")
''',
        "torchvision/ops/__init__.py": '''import torch


def nms(boxes, scores, iou_threshold):
    return torch.ops.torchvision.nms(boxes, scores, iou_threshold)
''',
    }


# Like a real torchvision whose compiled library did not load into this torch:
# registering a fake kernel for its op fails at import.
BAD_TORCHVISION = {
    "torchvision/__init__.py": '''import torch

__version__ = "0.24.1+cpu"


@torch.library.register_fake("torchvision::nms")
def _fake_nms(dets, scores, iou_threshold):
    return dets.new_empty(0, dtype=torch.long)
''',
}


def _compressed_tags(tags: list[str]) -> str:
    """``["py2-none-any", "py3-none-any"]`` -> ``"py2.py3-none-any"`` (a wheel file name's tag part)."""
    parts: list[list[str]] = [[], [], []]
    for tag in tags:
        for seen, part in zip(parts, tag.split("-")):
            if part not in seen:
                seen.append(part)
    return "-".join(".".join(seen) for seen in parts)


def wheel_from_installed(name: str, folder: Path) -> Path:
    """A wheel of the installed distribution ``name``, rebuilt from its files and RECORD.

    The same files, metadata and tags as the wheel it was installed from, minus
    what installing adds (bytecode, INSTALLER, scripts outside site-packages,
    which pip writes again from the entry points). Nothing is downloaded.
    """
    dist = metadata.distribution(name)
    root = Path(dist.locate_file(""))
    files = dist.files or []
    record = next(f for f in files if f.name == "RECORD" and f.parent.name.endswith(".dist-info"))
    info = PurePosixPath(record.parent)
    wheel_text = (root / str(info) / "WHEEL").read_text(encoding="utf-8")
    tags = [line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")]
    hashes = {row[0]: (row[1], row[2]) for row in csv.reader(io.StringIO((root / str(record)).read_text(encoding="utf-8"))) if len(row) == 3}
    leave_out = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    project = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    path = folder / f"{project}-{dist.version}-{_compressed_tags(tags)}.whl"
    rows = []
    # Stored, not deflated: the wheel lives for one session, and torch is hundreds of MB.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for member in files:
            arcname = member.as_posix()
            if arcname.startswith("../") or member.suffix == ".pyc" or arcname in leave_out:
                continue
            source = root / arcname
            digest, size = hashes.get(arcname, ("", ""))
            if not digest:
                data = source.read_bytes()
                digest, size = _record_hash(data), str(len(data))
            zf.write(source, arcname)
            rows.append(f"{arcname},{digest},{size}\n")
        zf.writestr(f"{info}/RECORD", "".join(rows) + f"{info}/RECORD,,\n")
    return path


def installed_requirements(name: str) -> list[str]:
    """``name`` and every distribution it needs here (markers evaluated for this interpreter), installed names."""
    found: dict[str, str] = {}
    todo = [name]
    while todo:
        wanted = canonicalize_name(todo.pop())
        if wanted in found:
            continue
        dist = metadata.distribution(wanted)
        found[wanted] = dist.metadata["Name"]
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Real torch (this environment's CPU build) with its dependencies, and the good test torchvision.

    Decided before anything is built: the installed torch must be a CPU build
    drivelab's release table knows. Every real wheel is rebuilt from the
    installed files (see :func:`wheel_from_installed`), so no test reaches an
    index. The torchvision built for another torch is in ``<wheelhouse>/../bad``.
    """
    version = require_cpu_torch()
    release = find_release(Version(version).public)
    if release is None:
        skip_or_fail(f"the installed torch {version} is not in drivelab's release table")
    root = tmp_path_factory.mktemp("wheelhouse")
    folder = root / "good"
    folder.mkdir()
    for name in installed_requirements("torch"):
        wheel_from_installed(name, folder)
    torchvision = f"{release.torchvision}+cpu"
    build_wheel(folder, "torchvision", torchvision, good_torchvision(torchvision), [f"torch=={release.version}"])
    (root / "bad").mkdir()
    build_wheel(root / "bad", "torchvision", "0.24.1+cpu", BAD_TORCHVISION, ["torch==2.9.1"])
    return folder


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    return venv / "bin" / "python"


def expected_torchvision(torch_version: str) -> str:
    release = find_release(Version(torch_version).public)
    assert release is not None
    return f"{release.torchvision}+cpu"


@pytest.mark.slow
def test_install_offline_into_a_fresh_venv_then_verify(wheelhouse, fresh_venv, tmp_path):
    version = installed_torch()
    torchvision = expected_torchvision(version)
    plan = plan_torch_install(NO_GPU, find_links=wheelhouse, env={})
    assert plan.packages == {"torch": version, "torchvision": torchvision}
    lines: list[str] = []
    result = install_torch(plan, python=fresh_venv, installer="pip", log_dir=tmp_path / "logs", on_line=lines.append)
    assert result.installed == {"torch": version, "torchvision": torchvision, "torchaudio": None}
    assert result.before == {"torch": None, "torchvision": None, "torchaudio": None}
    assert not result.forced_reinstall and result.log.is_file() and lines
    command = result.commands[0]
    assert "--no-index" in command and "--extra-index-url" not in command

    report = verify_torch(NO_GPU, python=fresh_venv)
    assert report.ok, [c for c in report.checks if not c.ok]
    checks = by_name(report.checks)
    assert checks["torchvision ops"].ok and checks["torchvision version"].ok

    # Installing again changes nothing: the pinned builds are in place.
    again = install_torch(plan, python=fresh_venv, installer="pip", log_dir=tmp_path / "logs")
    assert not again.changed and not again.forced_reinstall


@pytest.mark.slow
def test_inconsistent_torchvision_is_refused_by_the_installer_and_reported_by_verify(wheelhouse, fresh_venv, tmp_path):
    version = installed_torch()
    torchvision = expected_torchvision(version)
    bad = wheelhouse.parent / "bad"
    # The plan never pairs them...
    plan = plan_torch_install(NO_GPU, find_links=wheelhouse, env={})
    assert plan.packages["torchvision"] == torchvision
    # ...and a hand-made inconsistent set fails in the installer, explained.
    mixed = cpu_plan(index_url=None, find_links=str(bad), packages={"torch": version, "torchvision": "0.24.1+cpu"})
    install_torch(plan, python=fresh_venv, installer="pip", log_dir=tmp_path / "logs")
    with pytest.raises(InstallError) as err:
        install_torch(mixed, python=fresh_venv, installer="pip", log_dir=tmp_path / "logs")
    assert "torch==2.9.1" in str(err.value) and "contradict each other" in err.value.hint

    # Forced in anyway (as `pip install --no-deps` would), verify names the mismatch and the fix.
    subprocess.run(
        [str(fresh_venv), "-m", "pip", "install", "--no-deps", "--no-index", "--find-links", str(bad), "--force-reinstall", "torchvision==0.24.1+cpu"],
        check=True,
        capture_output=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )
    try:
        report = verify_torch(NO_GPU, python=fresh_venv)
        assert not report.ok
        checks = by_name(report.checks)
        assert {c.name for c in report.failures} == {"torchvision version", "torchvision ops"}
        assert "built for torch 2.9.1" in checks["torchvision version"].detail
        assert "operator torchvision::nms does not exist" in checks["torchvision ops"].detail
        assert f"torchvision=={torchvision}" in checks["torchvision ops"].fix
    finally:
        install_torch(plan, python=fresh_venv, installer="pip", log_dir=tmp_path / "logs")


# ------------------------------------------------------------------ setup_torch, the steps together


@pytest.fixture
def steps(monkeypatch):
    """setup_torch on this machine with the installer and the verifier replaced: what ran, in order."""
    from drivelab.runtime._install import pip
    from drivelab.runtime._verify import verify

    ran: list[str] = []
    passes = {"before": True, "after": True}

    def fake_verify(machine, **_):
        stage = "after" if any(step.startswith("install") for step in ran) else "before"
        ran.append(f"verify {stage}")
        return VerifyReport(python="python", checks=(Check("torch", passes[stage], stage),), torch="2.14.1+cpu")

    def fake_install(plan, *, installer, workspace, reinstall, on_line):
        ran.append(f"install {installer}")
        if on_line is not None:
            on_line("Successfully installed torch")
        return InstallResult(plan, installer, "python", (), Path("setup.log"), {}, dict(plan.packages))

    monkeypatch.setattr(verify, "verify_torch", fake_verify)
    monkeypatch.setattr(pip, "install_torch", fake_install)
    monkeypatch.setattr("drivelab.runtime._machine.detect.detect_machine", lambda: replace(NO_GPU, torch=TorchInstall("2.9.1+cpu", "cpu")))
    return ran, passes


def test_setup_torch_dry_run_plans_only(tmp_path, steps):
    ran, _ = steps
    recorded = tmp_path / "h100.json"
    recorded.write_text(json.dumps(H100.to_dict()))
    result = setup_torch(machine_file=recorded, dry_run=True, before_install=lambda *_: ran.append("asked"))
    assert isinstance(result, SetupResult) and result.ok and ran == []
    assert result.plan.backend == "cu130" and (result.install, result.checked, result.verify) == (None, None, None)
    doc = result.to_dict()
    assert set(doc) == SETUP_KEYS - {"kind", "version"} and doc["plan"] == result.plan.to_dict()


def test_setup_torch_installs_then_verifies_telling_the_caller_as_it_goes(steps):
    ran, _ = steps
    heard: list[str] = []
    result = setup_torch(
        installer="pip",
        before_install=lambda plan, checked: heard.append(f"before {plan.backend} {checked}"),
        on_line=heard.append,
        after_install=lambda installed: heard.append(f"after {installed.installer}"),
    )
    assert ran == ["install pip", "verify after"]
    assert heard == ["before cpu None", "Successfully installed torch", "after pip"]
    assert result.ok and not result.kept and result.install is not None and result.verify is not None
    assert json.loads(json.dumps(result.to_dict()))["install"]["installer"] == "pip"


def test_setup_torch_if_needed_keeps_a_torch_that_passes(steps):
    ran, _ = steps
    result = setup_torch(if_needed=True, before_install=lambda *_: ran.append("asked"))
    assert ran == ["verify before"] and result.kept and result.ok
    assert result.install is None and result.verify is None and result.checked is not None


def test_setup_torch_if_needed_installs_over_a_torch_that_fails(steps):
    ran, passes = steps
    passes.update(before=False, after=False)
    checked_seen = []
    result = setup_torch(if_needed=True, before_install=lambda plan, checked: checked_seen.append(checked))
    assert ran == ["verify before", "install auto", "verify after"]
    assert checked_seen == [result.checked] and not result.checked.ok
    assert not result.ok and not result.kept  # the check after installing failed: ok is False, no exception


def test_setup_torch_stops_before_installing(tmp_path, steps):
    ran, _ = steps
    recorded = tmp_path / "nogpu.json"
    recorded.write_text(json.dumps(NO_GPU.to_dict()))
    with pytest.raises(SetupError, match="recorded machine"):
        setup_torch(machine_file=recorded)
    with pytest.raises(InstallError, match="unknown installer 'conda'"):
        setup_torch(installer="conda", if_needed=True)

    def refuse(plan, checked):
        raise SetupError("not now")

    with pytest.raises(SetupError, match="not now"):
        setup_torch(before_install=refuse)
    assert ran == []


def test_a_machine_file_that_is_not_one_is_a_setup_error(tmp_path):
    from drivelab.runtime import load_machine

    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else"}')
    with pytest.raises(SetupError, match="cannot read the machine description") as err:
        load_machine(bad)
    assert "drivelab runtime --json" in err.value.hint


# ------------------------------------------------------------------ the CLI, as a subprocess


SETUP_KEYS = {"kind", "version", "dry_run", "refresh", "plan", "kept", "checked", "install", "verify", "ok"}
"""``drivelab setup torch --json``: the one shape (docs/runtime.md)."""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    child.update(COLUMNS="200", NO_COLOR="1")
    child.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "drivelab", *args], cwd=cwd, env=child, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def recorded_h100(tmp_path) -> Path:
    path = tmp_path / "h100.json"
    path.write_text(json.dumps({"kind": "runtime", "version": 1, "machine": H100.to_dict()}))
    return path


def test_cli_dry_run_json_offline(tmp_path, recorded_h100):
    # An unreachable proxy: any network access would fail loudly.
    done = cli("setup", "torch", "--dry-run", "--json", "--machine", str(recorded_h100), cwd=tmp_path, env={"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["kind"], doc["version"], doc["dry_run"]) == ("setup.torch", 1, True)
    assert set(doc) == SETUP_KEYS  # one shape, whatever happened: the steps that did not run are null
    assert (doc["kept"], doc["checked"], doc["install"], doc["verify"], doc["refresh"], doc["ok"]) == (False, None, None, None, None, True)
    plan = doc["plan"]
    assert plan["backend"] == "cu130" and plan["index_url"] == "https://download.pytorch.org/whl/cu130"
    assert plan["requirements"] == ["torch==2.14.1+cu130", "torchvision==0.29.1+cu130", "torchaudio==2.11.0+cu130"]
    assert isinstance(plan["explanation"], str) and isinstance(plan["warnings"], list)
    assert set(plan) >= {"backend", "index_url", "find_links", "packages", "torch_release", "explanation", "warnings"}


def test_cli_dry_run_probes_this_machine(tmp_path):
    done = cli("setup", "torch", "--dry-run", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"]["packages"]["torch"]


def test_cli_bad_backend_is_a_clear_error(tmp_path, recorded_h100):
    done = cli("setup", "torch", "--dry-run", "--backend", "cu999", "--machine", str(recorded_h100), cwd=tmp_path)
    assert done.returncode == 2  # a usage error
    assert "unknown PyTorch backend 'cu999'" in done.stderr and "hint:" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    done = cli("setup", "torch", "--dry-run", "--machine", str(recorded_h100), cwd=tmp_path, env={"DRIVELAB_TORCH_BACKEND": "rocm9"})
    assert done.returncode == 2 and "DRIVELAB_TORCH_BACKEND" in done.stderr and "Traceback" not in done.stderr


def test_cli_human_plan_and_no_silent_install(tmp_path, recorded_h100):
    done = cli("setup", "torch", "--dry-run", "--machine", str(recorded_h100), cwd=tmp_path)
    assert done.returncode == 0
    assert "torch==2.14.1+cu130" in done.stderr and "why" in done.stderr
    a100 = tmp_path / "a100.json"
    a100.write_text(json.dumps(a100_r535().to_dict()))
    done = cli("setup", "torch", "--dry-run", "--machine", str(a100), cwd=tmp_path)
    assert done.returncode == 0 and "torch==2.14.1+cu126" in done.stderr
    assert "note" in done.stderr and "minor-version compatibility" in done.stderr
    nogpu = tmp_path / "nogpu.json"
    nogpu.write_text(json.dumps(NO_GPU.to_dict()))
    done = cli("setup", "torch", "--machine", str(nogpu), cwd=tmp_path)
    assert done.returncode == 1 and "--dry-run" in done.stderr  # a recorded machine is for planning only


def test_cli_doctor(tmp_path, torch_here):
    nogpu = tmp_path / "nogpu.json"
    nogpu.write_text(json.dumps(NO_GPU.to_dict()))
    done = cli("doctor", "--json", "--machine", str(nogpu), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["kind"] == "doctor" and doc["ok"] is True and doc["report"]["checks"]


def test_cli_doctor_explains_a_cpu_build_on_a_gpu_machine(tmp_path, recorded_h100, cpu_torch):
    done = cli("doctor", "--machine", str(recorded_h100), cwd=tmp_path)
    assert done.returncode == 1
    assert "Torch not compiled with CUDA enabled" in done.stderr and "fix:" in done.stderr


def test_cli_setup_if_needed_keeps_a_working_torch_without_the_network(tmp_path, torch_here):
    # The index refuses connections: installing anything would fail. A torch that passes
    # the checks is kept, whatever the plan says, so nothing is installed.
    index = f"http://127.0.0.1:{closed_port()}/whl/cpu"
    done = cli("setup", "torch", "--yes", "--if-needed", "--json", "--index-url", index, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == SETUP_KEYS and doc["dry_run"] is False
    assert doc["kept"] is True and doc["ok"] is True and doc["checked"]["torch"] == torch_here
    assert doc["install"] is None and doc["verify"] is None
    done = cli("setup", "torch", "--yes", "--if-needed", "--index-url", index, cwd=tmp_path)
    assert done.returncode == 0 and "Kept: torch" in done.stderr and "PyTorch works here" in done.stderr

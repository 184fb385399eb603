"""Planning the PyTorch install: the rules, the traps, the overrides, the release table.

Machines are built here as :class:`MachineInfo` values, so no probe runs; the
release table is drivelab's own (offline). Refreshing the table from an index
is tested against a loopback server only.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivelab.errors import PlanError
from drivelab.runtime import (
    RELEASES,
    AmdGpu,
    AmdInfo,
    Backend,
    MachineInfo,
    MpsInfo,
    NvidiaGpu,
    NvidiaInfo,
    RecordedProbe,
    SystemInfo,
    TorchRelease,
    XpuInfo,
    detect_machine,
    plan_torch_install,
)
from drivelab.runtime._builds.compat import NvidiaDriver
from drivelab.runtime._builds.refresh import refresh_releases
from drivelab.runtime._builds.releases import KNOWN_BACKENDS, MACOS_X86_64_LAST, find_release
from drivelab.runtime._builds.wheel_files import parse_wheel
from drivelab.runtime._cuda import CUDA_DRIVERS, cuda_for_driver, kernel_runs, min_driver_for_cuda, minor_compat_minimum

NEWEST = max(RELEASES, key=lambda r: r.parsed)
# The newest release whose GPU builds the table lists (2.15.0 lists only CPU and macOS builds so far).
NEWEST_GPU = max((r for r in RELEASES if any(b.kind == "cuda" for b in r.backends)), key=lambda r: r.parsed)


# ---------------------------------------------------------------------- machines


def system(python: str = "3.11.7", os: str = "Linux", arch: str = "x86_64") -> SystemInfo:
    return SystemInfo(os=os, os_release="6.8.0", arch=arch, python_version=python, cpu_cores=8)


def nvidia(driver: str | None, cuda: tuple[int, int] | None, *gpus: tuple[str, tuple[int, int] | None], problems: tuple[str, ...] = ()) -> NvidiaInfo:
    return NvidiaInfo(
        driver_version=driver,
        cuda_driver_version=cuda,
        gpus=tuple(NvidiaGpu(index=i, name=name, memory_mib=16000, compute_capability=cc) for i, (name, cc) in enumerate(gpus)),
        source="nvml",
        problems=problems,
    )


def machine(python: str = "3.11.7", **parts) -> MachineInfo:
    return MachineInfo(system=system(python), **parts)


H100 = ("NVIDIA H100 80GB HBM3", (9, 0))
GTX1080 = ("NVIDIA GeForce GTX 1080", (6, 1))
RTX3090 = ("NVIDIA GeForce RTX 3090", (8, 6))
RTX4090 = ("NVIDIA GeForce RTX 4090", (8, 9))
RTX5090 = ("NVIDIA GeForce RTX 5090", (12, 0))
V100 = ("Tesla V100-SXM2-16GB", (7, 0))
T4 = ("Tesla T4", (7, 5))
K80 = ("Tesla K80", (3, 7))


def plan(m: MachineInfo, **kwargs):
    kwargs.setdefault("env", {})
    return plan_torch_install(m, **kwargs)


def assert_consistent(p) -> None:
    """One release line, one build, one index."""
    release = MACOS_X86_64_LAST if p.platform == "macos_x86_64" else find_release(p.torch_release)
    assert release is not None
    assert p.packages["torch"].split("+")[0] == release.version
    if "torchvision" in p.packages:
        assert p.packages["torchvision"].split("+")[0] == release.torchvision
    if "torchaudio" in p.packages:
        assert p.packages["torchaudio"].split("+")[0] == release.torchaudio
    tags = {v.partition("+")[2] for v in p.packages.values()}
    untagged = p.backend == "default" or (p.backend == "cpu" and p.platform == "linux_aarch64")
    assert tags == ({""} if untagged else {p.backend})
    if p.find_links is None:
        assert p.index_url is not None
        assert p.index_url.endswith("/" + p.backend) or (p.backend == "default" and p.index_url == "https://pypi.org/simple")
    json.dumps(p.to_dict())  # JSON-ready
    assert p.explanation and "\n" not in p.explanation


# ---------------------------------------------------------------------- the rules


def test_no_gpu_gets_the_cpu_build_of_the_newest_release():
    p = plan(machine())
    assert p.backend == "cpu"
    assert p.torch_release == NEWEST.version == "2.15.0"
    assert p.packages == {"torch": "2.15.0+cpu", "torchvision": "0.29.2+cpu", "torchaudio": "2.11.1+cpu"}
    assert p.index_url == "https://download.pytorch.org/whl/cpu"
    assert p.warnings == ()
    assert_consistent(p)


def test_h100_on_r580_gets_cu130_of_the_newest_release_with_gpu_builds():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), H100)))
    assert (p.backend, p.torch_release, p.cuda) == ("cu130", NEWEST_GPU.version, "13.0")
    # Why not 2.15.0: the table does not promise its CUDA builds yet, and the paragraph says so.
    assert "newest release with a CUDA build in drivelab's release table" in p.explanation and "none of torch 2.15.0" in p.explanation
    assert p.requirements() == ["torch==2.14.1+cu130", "torchvision==0.29.1+cu130", "torchaudio==2.11.0+cu130"]
    assert p.index_url == "https://download.pytorch.org/whl/cu130"
    assert "sm_90" in p.archs
    # Why not cu132: the driver runs it (CUDA 13.x minor-version compatibility) but torchaudio has no cu132 build.
    assert "cu132 has no torchaudio build" in p.explanation
    assert p.notes == ()  # cu130 runs natively
    assert_consistent(p)


def test_pascal_on_r580_gets_cu126_because_cu130_has_no_pascal_kernels():
    # The trap: the driver allows CUDA 13.0, but cu130 (and cu128) carry sm_75 and newer only.
    p = plan(machine(nvidia=nvidia("580.82.07", (13, 0), GTX1080)))
    assert p.backend == "cu126"
    assert p.torch_release == NEWEST_GPU.version  # the newest release with GPU builds still ships cu126
    assert "sm_60" in p.archs  # a cubin for 6.0 runs on 6.1
    assert "cu130 has kernels for sm_75" in p.explanation and "6.1" in p.explanation
    assert_consistent(p)


def test_rtx5090_on_r570_gets_cu128_the_newest_release_that_has_it():
    p = plan(machine(nvidia=nvidia("570.86.10", (12, 8), RTX5090)))
    assert p.backend == "cu128"
    assert p.torch_release == "2.11.0"  # cu128 was dropped in 2.12; cu130 needs driver 580
    assert "sm_120" in p.archs
    assert "driver >= 580.65.06" in p.explanation
    assert_consistent(p)


def test_rtx5090_on_r580_gets_cu130_and_never_cu126():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), RTX5090)))
    assert p.backend == "cu130" and p.torch_release == NEWEST_GPU.version
    for driver, cuda in [("575.51.03", (12, 9)), ("570.26", (12, 8))]:
        assert plan(machine(nvidia=nvidia(driver, cuda, RTX5090))).backend in ("cu128", "cu129")


def test_rtx5090_on_a_driver_before_570_has_no_build():
    p = plan(machine(nvidia=nvidia("560.35.03", (12, 6), RTX5090)))
    assert p.backend == "cpu"
    assert any("no cuda build fits" in w.lower() or "no pytorch cuda build" in w.lower() for w in p.warnings)


@pytest.mark.parametrize("driver,cuda,gpu", [("450.51.06", (11, 0), T4), ("440.64.00", (10, 2), GTX1080), ("418.87.01", (10, 1), K80)])
def test_driver_too_old_for_any_cuda_build_plans_cpu_with_an_upgrade_warning(driver, cuda, gpu):
    # Below 450.80.02, CUDA 11.x's minor-version compatibility minimum: no cu118 either.
    p = plan(machine(nvidia=nvidia(driver, cuda, gpu)))
    assert p.backend == "cpu"
    assert len(p.warnings) == 1
    warning = p.warnings[0]
    assert "driver is too old" in warning and driver in warning
    # What cu126 needs: 525.60.13 through minor-version compatibility, 560.28.03 natively.
    assert "upgrade the NVIDIA driver (>= 525.60.13" in warning and "560.28.03 runs it natively" in warning
    assert f"for torch {NEWEST_GPU.version}+cu126" in warning  # a build the table lists, not one of 2.15.0
    assert_consistent(p)


def test_cuda11_drivers_run_cu118_through_minor_version_compatibility():
    # R470 (CUDA 11.4), common on older clusters: 2.7.1's cu118 build, from SASS, with the note.
    p = plan(machine(nvidia=nvidia("470.82.01", (11, 4), V100)))
    assert (p.backend, p.torch_release) == ("cu118", "2.7.1")
    assert "through CUDA's minor-version compatibility, as it runs any CUDA 11.x build from driver 450.80.02 on" in p.explanation
    assert "not PTX generated by a CUDA newer than the driver's" in p.explanation
    assert len(p.notes) == 1 and "A driver >= 520.61.05 runs it natively" in p.notes[0]
    assert_consistent(p)
    # NVIDIA's minimum exactly, and just below it.
    assert plan(machine(nvidia=nvidia("450.80.02", (11, 0), T4))).backend == "cu118"
    assert plan(machine(nvidia=nvidia("450.66", (11, 0), T4))).backend == "cpu"
    # The driver must still know the GPU: CUDA 11.8 first supports Ada, so an R470 driver runs nothing on an RTX 4090.
    assert plan(machine(nvidia=nvidia("470.82.01", (11, 4), RTX4090))).backend == "cpu"


def test_a_driver_below_the_cuda12_minimum_keeps_the_old_rule():
    # 520.61.05 runs CUDA 11.8 and is below 525.60.13: no cu12x build, so the newest release with cu118.
    p = plan(machine(nvidia=nvidia("520.61.05", (11, 8), T4)))
    assert (p.backend, p.torch_release) == ("cu118", "2.7.1")
    assert "torch 2.7.1 is the newest release with a build that runs here" in p.explanation
    assert "cu126 needs CUDA 12.6 (driver >= 560.28.03, or >= 525.60.13 through CUDA's minor-version compatibility)" in p.explanation
    assert p.notes == ()
    # Newest release first, then its best build: 2.7.1's cu118 beats 2.6.0's cu124.
    p = plan(machine(nvidia=nvidia("520.61.05", (11, 8), RTX4090)))  # sm_86 cubins run on 8.9
    assert (p.backend, p.torch_release) == ("cu118", "2.7.1")
    p = plan(machine(nvidia=nvidia("550.54.14", (12, 4), RTX4090)), torch_version="2.6")
    assert (p.backend, p.torch_release) == ("cu124", "2.6.0")  # run natively, cu126 is experimental in 2.6


def test_two_gpus_of_different_generations_get_a_build_serving_both():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), RTX3090, GTX1080)))
    assert p.backend == "cu126" and p.torch_release == NEWEST_GPU.version
    assert "every GPU here" in p.explanation
    assert p.warnings == ()


def test_volta_and_blackwell_go_back_to_the_last_release_serving_both():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), RTX5090, V100)))
    assert (p.backend, p.torch_release) == ("cu128", "2.10.0")  # 2.8-2.10 cu128 kept sm_70
    assert_consistent(p)


def test_gpus_no_build_can_serve_together_get_the_newest_gpu_served_and_a_warning():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), GTX1080, RTX5090)))
    assert p.backend == "cu130"
    (warning,) = p.warnings
    assert "No PyTorch build has kernels for every GPU" in warning
    assert "CUDA_VISIBLE_DEVICES=1" in warning and "GTX 1080" in warning


# ---------------------------------------------------------------------- CUDA compatibility

MACHINES_DIR = Path(__file__).resolve().parent / "runtime_machines"


def recorded(name: str) -> MachineInfo:
    record = json.loads((MACHINES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return detect_machine(RecordedProbe(record), workspace=Path("/work"), scratch=Path("/tmp"))


def test_minor_version_compatibility_minimums_are_nvidias():
    # NVIDIA's CUDA Compatibility guide and release notes: CUDA 11.x from 450.80.02 (Windows 452.39), 12.x from
    # 525.60.13 (Windows 527.41), 13.x from 580.65.06.
    assert (minor_compat_minimum(11), minor_compat_minimum(11, windows=True)) == ("450.80.02", "452.39")
    assert (minor_compat_minimum(12), minor_compat_minimum(12, windows=True)) == ("525.60.13", "527.41")
    assert (minor_compat_minimum(13), minor_compat_minimum(13, windows=True)) == ("580.65.06", "580")
    assert minor_compat_minimum(10) is None  # before CUDA 11 a driver runs its own CUDA version and older only


@pytest.mark.parametrize(
    "driver,cuda,windows,build,mode",
    [
        ("535.183.01", (12, 2), False, (12, 6), "minor-compat"),
        ("535.183.01", (12, 2), False, (11, 8), "native"),
        ("535.183.01", (12, 2), False, (13, 0), None),  # another CUDA major: never by minor-version compatibility
        ("525.60.13", (12, 0), False, (12, 9), "minor-compat"),  # exactly the minimum
        ("525.53", (12, 0), False, (12, 1), None),  # a 12.0 driver below the minimum
        ("520.61.05", (11, 8), False, (12, 6), None),  # below the minimum: the driver's CUDA rules
        ("520.61.05", (11, 8), False, (11, 8), "native"),
        ("580.65.06", (13, 0), False, (13, 2), "minor-compat"),
        ("575.64.03", (12, 9), False, (13, 0), None),
        ("527.41", (12, 0), True, (12, 6), "minor-compat"),  # Windows' own figure
        ("526.98", (12, 0), True, (12, 6), None),
        (None, (12, 2), False, (12, 6), None),  # no driver version: minor-version compatibility cannot be shown
    ],
)
def test_driver_runs_a_cuda_version_natively_or_by_minor_version_compatibility(driver, cuda, windows, build, mode):
    assert NvidiaDriver(driver, cuda, windows).runs(build) == mode


def test_wsl_compares_the_windows_driver_with_windows_figures():
    gpu = ("NVIDIA GeForce RTX 3060", (8, 6))
    wsl = MachineInfo(system=SystemInfo(os="Linux", os_release="5.15", arch="x86_64", python_version="3.12.1", wsl=True), nvidia=nvidia("526.98", (12, 0), gpu))
    assert NvidiaDriver.of(wsl).windows
    assert plan(wsl).backend == "cu118"  # 526.98 is below Windows' 527.41
    wsl = MachineInfo(system=wsl.system, nvidia=nvidia("527.41", (12, 0), gpu))
    assert (plan(wsl).backend, plan(wsl).torch_release) == ("cu126", NEWEST_GPU.version)


def test_a100_on_r535_gets_the_newest_release_with_a_cu12_build():
    p = plan(recorded("a100-535"))
    assert (p.backend, p.torch_release, p.cuda) == ("cu126", NEWEST_GPU.version, "12.6")
    assert "sm_80" in p.archs
    # The explanation says how the driver runs it, and the PTX caveat; the note, what may be missing.
    assert "driver 535.183.01 runs it through CUDA's minor-version compatibility" in p.explanation
    assert "from driver 525.60.13 on" in p.explanation
    assert "(SASS)" in p.explanation and "not PTX generated by a CUDA newer than the driver's" in p.explanation
    assert "cu130 needs CUDA 13.0 (driver >= 580.65.06)" in p.explanation
    (note,) = p.notes
    assert "may be missing" in note and "560.28.03 runs it natively" in note
    assert p.warnings == ()
    assert p.to_dict()["notes"] == [note]


def test_a_driver_below_the_minimum_keeps_the_old_rule_on_a_recorded_machine():
    p = plan(recorded("rtx3090-520"))
    assert (p.backend, p.torch_release) == ("cu118", "2.7.1")
    assert "cu126 needs CUDA 12.6 (driver >= 560.28.03, or >= 525.60.13 through CUDA's minor-version compatibility)" in p.explanation
    assert p.notes == ()
    with pytest.raises(PlanError, match="cu126 build .* cannot run on this machine.*525.60.13"):
        plan(recorded("rtx3090-520"), backend="cu126")


def test_a_driver_from_580_65_06_runs_cu13x_builds():
    h100 = recorded("h100-580-nvml")  # 580.65.06: CUDA 13.0
    p = plan(h100, backend="cu132")
    assert (p.backend, p.cuda, p.torch_release) == ("cu132", "13.2", NEWEST_GPU.version)
    assert "runs it through CUDA's minor-version compatibility" in p.explanation and p.notes
    assert plan(h100).backend == "cu130"  # on its own, the full set the driver runs natively
    # A CUDA 13.x build needs a 580 driver: 575 runs CUDA 12.9 at most.
    with pytest.raises(PlanError, match="needs CUDA 13.0 .driver >= 580.65.06.* supports CUDA 12.9"):
        plan(recorded("rtx5080-575-smi"), backend="cu130")


def test_minor_version_compatibility_runs_sass_not_ptx():
    # A build whose only kernel for Hopper is PTX (compute_86): a driver older than the build's CUDA
    # cannot JIT-compile PTX of that CUDA, so the H100 finds nothing to run on 535 (CUDA 12.2).
    ptx_only = Backend("cu126", "cuda", ("linux_x86_64",), (12, 6), sm=((8, 0), (8, 6)), ptx=((8, 6),), min_driver="560.28.03")
    table = (TorchRelease("2.14.1", "0.29.1", "2.11.0", ("3.11",), (Backend("cpu", "cpu", ("linux_x86_64",)), ptx_only), "2026-10"),)
    h100_r535 = machine(nvidia=nvidia("535.183.01", (12, 2), H100))
    p = plan(h100_r535, releases=table)
    assert p.backend == "cpu"
    (warning,) = p.warnings
    assert "covered only by PTX (compute_86)" in warning and "cannot JIT-compile" in warning
    with pytest.raises(PlanError, match="only through CUDA's minor-version compatibility.*only by PTX"):
        plan(h100_r535, releases=table, backend="cu126")
    # A driver that runs CUDA 12.6 natively JIT-compiles it.
    p = plan(machine(nvidia=nvidia("560.35.03", (12, 6), H100)), releases=table)
    assert p.backend == "cu126" and p.notes == ()
    # An A100 has SASS (sm_80): minor-version compatibility serves it.
    p = plan(machine(nvidia=nvidia("535.183.01", (12, 2), ("NVIDIA A100-SXM4-80GB", (8, 0)))), releases=table)
    assert p.backend == "cu126" and p.notes


def test_a_driver_older_than_the_gpu_runs_no_build_on_it():
    # Minor-version compatibility would let 560 run a cu128 build, but 560 predates Blackwell (CUDA 12.8).
    p = plan(machine(nvidia=nvidia("560.35.03", (12, 6), RTX5090)))
    assert p.backend == "cpu" and "which CUDA 12.8 first supports" in p.warnings[0]
    with pytest.raises(PlanError, match="which CUDA 12.8 first supports: no build runs on it before driver 570.26"):
        plan(machine(nvidia=nvidia("560.35.03", (12, 6), RTX5090)), torch_version="2.11.0", backend="cu128")


def test_driver_version_alone_is_mapped_to_cuda_by_nvidias_table():
    p = plan(machine(nvidia=nvidia("580.95.05", None, H100)))
    assert p.backend == "cu130"
    assert "by NVIDIA's driver table" in p.explanation


def test_unknown_compute_capability_gets_the_widest_build_and_a_warning():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), ("NVIDIA GPU", None))))
    assert p.backend == "cu126"
    assert any("compute capability" in w for w in p.warnings)


def test_broken_probe_plans_cpu_and_names_the_problem():
    problem = "nvidia-smi: Failed to initialize NVML: Driver/library version mismatch"
    p = plan(machine(nvidia=nvidia(None, None, problems=(problem,))))
    assert p.backend == "cpu"
    assert any(problem in w for w in p.warnings)
    assert "see the warnings" in p.explanation


@pytest.mark.parametrize("gfx", ["gfx90a", "gfx942", "gfx1100", "gfx90a:sramecc+:xnack-"])
def test_supported_amd_gpus_get_the_newest_rocm_build(gfx):
    p = plan(machine(amd=AmdInfo(rocm_version=(6, 4), gpus=(AmdGpu("AMD Instinct", gfx),))))
    assert p.backend == "rocm7.2" and p.rocm == "7.2"
    assert p.torch_release == NEWEST_GPU.version
    assert "none of torch 2.15.0" in p.explanation
    assert gfx.split(":")[0] in p.explanation
    assert_consistent(p)


@pytest.mark.parametrize("gfx", ["gfx803", "gfx1010", "gfx1031"])
def test_unsupported_amd_gpu_plans_cpu_with_a_warning(gfx):
    p = plan(machine(amd=AmdInfo(rocm_version=(6, 4), gpus=(AmdGpu("AMD Radeon", gfx),))))
    assert p.backend == "cpu"
    assert any("No PyTorch ROCm build carries" in w and gfx in w for w in p.warnings)
    if gfx == "gfx1031":
        assert "HSA_OVERRIDE_GFX_VERSION=10.3.0" in p.warnings[0]


def test_apple_silicon_gets_pypis_default_build():
    m = MachineInfo(system=system(os="Darwin", arch="arm64"), mps=MpsInfo(available=True, macos_version="15.1"))
    p = plan(m)
    assert p.backend == "default"
    assert p.index_url == "https://pypi.org/simple"
    assert p.packages == {"torch": "2.15.0", "torchvision": "0.29.2", "torchaudio": "2.11.1"}
    assert "MPS" in p.explanation
    assert_consistent(p)


def test_intel_mac_gets_the_last_release_with_intel_mac_wheels():
    m = MachineInfo(system=system(os="Darwin", arch="x86_64"))
    p = plan(m)
    assert p.packages == {"torch": "2.2.2", "torchvision": "0.17.2", "torchaudio": "2.2.2"}
    assert any("numpy<2" in w for w in p.warnings)
    with pytest.raises(PlanError, match="Intel Macs") as err:
        plan(MachineInfo(system=system("3.13.0", os="Darwin", arch="x86_64")))
    assert "3.12" in err.value.hint


def test_intel_gpu_gets_the_xpu_build():
    p = plan(machine(xpu=XpuInfo(devices=("Intel(R) Arc(TM) A770 Graphics",))))
    assert p.backend == "xpu" and p.index_url == "https://download.pytorch.org/whl/xpu"
    assert_consistent(p)


def test_nvidia_wins_over_amd_on_a_mixed_machine():
    p = plan(machine(nvidia=nvidia("580.65.06", (13, 0), H100), amd=AmdInfo((6, 4), (AmdGpu("MI210", "gfx90a"),))))
    assert p.backend == "cu130"
    assert any("AMD GPUs are present too" in w for w in p.warnings)


# ---------------------------------------------------------------------- Python versions


def test_python_without_newest_wheels_gets_the_newest_release_that_has_them():
    p = plan(machine("3.9.18"))
    assert p.torch_release == "2.8.0"
    assert "newest release with wheels for Python 3.9" in p.explanation


@pytest.mark.parametrize("python", ["3.7.17", "3.16.0"])
def test_python_without_any_wheels_is_a_plan_error(python):
    with pytest.raises(PlanError, match=f"Python {python[:4]}") as err:
        plan(machine(python))
    assert err.value.hint


def test_python_315_gets_torch_without_torchaudio_where_torchaudio_has_no_cp315_and_says_so():
    # torchaudio 2.11.0 (of torch 2.12-2.14) has no cp315 wheels; 2.11.1 (of 2.15) is a py3 wheel.
    p = plan(machine("3.15.0", nvidia=nvidia("580.65.06", (13, 0), H100)))
    assert p.torch_release == "2.14.1" and set(p.packages) == {"torch", "torchvision"}
    assert any("torchaudio" in w and "3.15" in w for w in p.warnings)
    p = plan(machine("3.15.0"))
    assert p.torch_release == "2.15.0" and p.packages["torchaudio"] == "2.11.1+cpu" and p.warnings == ()


def test_python_310_gets_the_newest_release_with_its_wheels():
    p = plan(machine("3.10.14"))
    assert p.torch_release == "2.14.1" and p.backend == "cpu"
    assert "newest release with wheels for Python 3.10 (torch 2.15.0 supports Python 3.11 to 3.15)" in p.explanation


# ---------------------------------------------------------------------- overrides


GPU_R580 = machine(nvidia=nvidia("580.65.06", (13, 0), H100))
PASCAL_R580 = machine(nvidia=nvidia("580.82.07", (13, 0), GTX1080))


def test_backend_override_and_the_environment_variable():
    assert plan(GPU_R580, backend="cu126").backend == "cu126"
    p = plan(GPU_R580, env={"DRIVELAB_TORCH_BACKEND": "cu126"})
    assert p.backend == "cu126" and p.overrides["backend"] == "cu126 ($DRIVELAB_TORCH_BACKEND)"
    assert plan(GPU_R580, backend="cpu", env={"DRIVELAB_TORCH_BACKEND": "cu126"}).backend == "cpu"  # the argument wins
    assert plan(GPU_R580, env={"DRIVELAB_TORCH_BACKEND": "auto"}).backend == "cu130"
    assert "You asked for the cu126 build" in plan(GPU_R580, backend="cu126").explanation


def test_environment_variable_is_read_when_called(monkeypatch):
    monkeypatch.setenv("DRIVELAB_TORCH_BACKEND", "cpu")
    assert plan_torch_install(GPU_R580).backend == "cpu"
    monkeypatch.delenv("DRIVELAB_TORCH_BACKEND")
    assert plan_torch_install(GPU_R580).backend == "cu130"


def test_gpu_build_forced_on_a_machine_without_that_gpu_installs_with_a_warning():
    p = plan(machine(), backend="cu130")
    assert p.backend == "cu130"
    assert any("no NVIDIA GPU was found" in w for w in p.warnings)


def test_impossible_overrides_are_plan_errors_with_a_hint():
    with pytest.raises(PlanError, match="cu130 build .* cannot run on this machine.*6.1") as err:
        plan(PASCAL_R580, backend="cu130")
    assert "cu126" in err.value.hint
    with pytest.raises(PlanError, match="needs CUDA 13.2") as err:
        plan(machine(nvidia=nvidia("570.86.10", (12, 8), RTX5090)), backend="cu132")
    assert "cu128" in err.value.hint
    with pytest.raises(PlanError, match="DRIVELAB_TORCH_BACKEND"):
        plan(PASCAL_R580, env={"DRIVELAB_TORCH_BACKEND": "cu130"})
    with pytest.raises(PlanError, match="unknown PyTorch backend 'cu999'") as err:
        plan(GPU_R580, backend="cu999")
    assert "cu130" in err.value.hint
    with pytest.raises(PlanError, match="not a PyTorch build name"):
        plan(GPU_R580, backend="cuda")
    with pytest.raises(PlanError, match="torch 2.4.1 has no cu130 build") as err:
        plan(GPU_R580, torch_version="2.4.1", backend="cu130")
    assert "cu124" in err.value.hint
    with pytest.raises(PlanError, match="no wheels for Python 3.13"):
        plan(machine("3.13.1"), torch_version="2.4.1")
    with pytest.raises(PlanError, match="not a release drivelab knows"):
        plan(GPU_R580, torch_version="9.9.9")
    with pytest.raises(PlanError, match="cannot be used together"):
        plan(GPU_R580, index_url="https://mirror.example/whl/cu130", find_links="/tmp")
    with pytest.raises(PlanError, match="rocm7.2 build .* cannot run.*gfx803"):
        plan(machine(amd=AmdInfo((6, 4), (AmdGpu("RX 580", "gfx803"),))), backend="rocm7.2")
    with pytest.raises(PlanError, match="macOS arm64"):
        plan(MachineInfo(system=system(os="Darwin", arch="arm64")), backend="rocm7.2")


def test_torch_version_override():
    p = plan(GPU_R580, torch_version="2.9")
    assert p.torch_release == "2.9.1" and p.backend == "cu128"  # cu130 was experimental in 2.9
    p = plan(GPU_R580, torch_version="2.13.0")
    assert p.requirements()[0] == "torch==2.13.0+cu130"
    p = plan(GPU_R580, torch_version="2.13.0+cu126")
    assert (p.backend, p.torch_release) == ("cu126", "2.13.0")
    with pytest.raises(PlanError, match="asks for the cu126 build but --backend asks for cu130"):
        plan(GPU_R580, torch_version="2.13.0+cu126", backend="cu130")


def test_index_url_override_is_the_one_index_and_can_name_the_build():
    p = plan(GPU_R580, index_url="https://mirror.example/pytorch/whl/cu126/")
    assert p.backend == "cu126" and p.index_url == "https://mirror.example/pytorch/whl/cu126/"
    p = plan(GPU_R580, index_url="https://mirror.example/simple")
    assert p.backend == "cu130" and p.index_url == "https://mirror.example/simple"
    with pytest.raises(PlanError, match="index of the cu126 build"):
        plan(GPU_R580, index_url="https://mirror.example/whl/cu126", backend="cu130")


# ---------------------------------------------------------------------- --find-links


def touch_wheels(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def test_find_links_plans_from_the_wheels_in_the_folder(tmp_path):
    folder = touch_wheels(
        tmp_path / "wheels",
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl",
        "torchvision-0.28.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "torchvision-0.24.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "filelock-3.20.0-py3-none-any.whl",
    )
    p = plan(machine(), find_links=folder)
    assert p.find_links == str(folder) and p.index_url is None
    assert p.packages == {"torch": "2.13.0+cpu", "torchvision": "0.28.0+cpu"}
    assert "offline" in p.explanation
    assert any("torchaudio" in w for w in p.warnings)


def test_find_links_leaves_out_a_torchvision_of_another_release(tmp_path):
    folder = touch_wheels(
        tmp_path / "wheels",
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "torchvision-0.24.1+cpu-py3-none-any.whl",
    )
    p = plan(machine(), find_links=folder)
    assert p.packages == {"torch": "2.13.0+cpu"}
    assert any("torchvision 0.24.1+cpu" in w and "would not match torch 2.13.0" in w for w in p.warnings)


def test_find_links_without_a_fitting_gpu_build_falls_back_to_what_is_there(tmp_path):
    folder = touch_wheels(tmp_path / "w", "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
    p = plan(GPU_R580, find_links=folder)
    assert p.backend == "cpu"
    assert p.warnings


def test_find_links_errors(tmp_path):
    with pytest.raises(PlanError, match="no such folder"):
        plan(machine(), find_links=tmp_path / "missing")
    with pytest.raises(PlanError, match="holds no torch wheel"):
        plan(machine(), find_links=touch_wheels(tmp_path / "empty", "numpy-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl"))
    folder = touch_wheels(tmp_path / "py312", "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl")
    with pytest.raises(PlanError, match="fits Python 3.11"):
        plan(machine(), find_links=folder)


# ---------------------------------------------------------------------- every plan


@pytest.mark.parametrize(
    "m",
    [
        machine(),
        GPU_R580,
        PASCAL_R580,
        machine("3.10.4", nvidia=nvidia("535.104.05", (12, 2), V100)),
        machine("3.12.1", nvidia=nvidia("595.45.04", (13, 2), RTX5090, RTX4090)),
        machine("3.13.0", nvidia=nvidia("570.124.06", (12, 8), T4)),
        machine("3.14.0", amd=AmdInfo((7, 2), (AmdGpu("RX 7900 XTX", "gfx1100"), AmdGpu("RX 7900 XTX", "gfx1100")))),
        MachineInfo(system=system("3.12.0", arch="aarch64"), nvidia=nvidia("580.65.06", (13, 0), ("NVIDIA GH200", (9, 0)))),
        MachineInfo(system=system("3.12.0", os="Windows", arch="AMD64"), nvidia=nvidia("581.57", (13, 0), RTX4090)),
    ],
    ids=["cpu", "h100", "pascal", "volta-535", "5090+4090-595", "t4-570", "rdna3x2", "gh200-aarch64", "windows-4090"],
)
def test_every_plan_is_one_consistent_set(m):
    p = plan(m)
    assert_consistent(p)
    if m.nvidia and p.backend.startswith("cu"):
        release = find_release(p.torch_release)
        backend = release.backend(p.backend, p.platform)
        mode = NvidiaDriver.of(m).runs(backend.version)
        assert mode == ("native" if backend.version <= m.nvidia.cuda_driver_version else "minor-compat")
        assert all(backend.serves(g.compute_capability, jit=mode == "native") for g in m.nvidia.gpus)
        assert bool(p.notes) is (mode == "minor-compat")


def test_aarch64_cpu_pins_without_the_build_tag():
    p = plan(MachineInfo(system=system("3.12.0", arch="aarch64")))
    assert p.backend == "cpu" and p.packages["torch"] == NEWEST.version


# ---------------------------------------------------------------------- the table


def test_release_table_facts():
    versions = [r.parsed for r in RELEASES]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert RELEASES[0].version == "2.4.0" and NEWEST.version == "2.15.0" and NEWEST_GPU.version == "2.14.1"
    for release in RELEASES:
        minor = release.parsed.minor
        # torchvision followed torch's minor + 15 up to 0.29; 0.29.2 (stable ABI, torch>=2.14) goes with 2.15.
        assert release.torchvision == (f"0.{minor + 15}.{release.parsed.micro}" if minor <= 14 else "0.29.2")
        assert release.backend("cpu", "linux_x86_64") is not None
        assert release.torchaudio == (release.version if minor <= 11 else "2.11.0" if minor <= 14 else "2.11.1")
        for backend in release.backends:
            assert backend.name in KNOWN_BACKENDS
            if backend.kind == "cuda":
                assert backend.min_driver and list(backend.sm) == sorted(backend.sm)
                if backend.name == "cu126":  # Maxwell to Hopper, everywhere on x86_64
                    assert backend.platforms != ("linux_x86_64",) or backend.sm == ((5, 0), (6, 0), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0))
                if backend.name in ("cu130", "cu132"):
                    assert not backend.serves((6, 1)) and not backend.serves((7, 0)) and backend.serves((12, 0))
                if backend.name in ("cu128", "cu129") and "linux_x86_64" in backend.platforms:
                    assert backend.serves((12, 0)) and not backend.serves((6, 1))
    assert find_release("2.13").version == "2.13.0" and find_release("2.12").version == "2.12.1"
    assert {"cu126", "cu130", "cu132", "rocm7.2", "xpu"} <= set(NEWEST_GPU.backend_names("linux_x86_64"))
    assert "cu128" not in NEWEST_GPU.backend_names()
    # 2.15.0: only builds that cannot carry the wrong kernels; Python 3.11 to 3.15.
    assert NEWEST.backend_names() == ["cpu", "default"] and NEWEST.python == ("3.11", "3.12", "3.13", "3.14", "3.15")
    assert NEWEST.backend("default", "macos_arm64") is not None


@pytest.mark.parametrize(
    "cc,sm,ptx,runs",
    [
        ((6, 1), [(6, 0)], [], True),  # same major, newer minor
        ((8, 9), [(8, 0), (8, 6)], [], True),
        ((8, 6), [(8, 9)], [], False),  # a cubin never runs on an older minor
        ((12, 0), [(9, 0)], [], False),  # nor on another major
        ((12, 1), [(12, 0)], [(12, 0)], True),
        ((10, 3), [(9, 0)], [(9, 0)], True),  # PTX JIT runs forward
        ((7, 5), [(8, 0)], [(12, 0)], False),  # never backward
    ],
)
def test_kernel_compatibility(cc, sm, ptx, runs):
    assert kernel_runs(cc, sm, ptx) is runs


# NVIDIA CUDA Toolkit Release Notes, Table 3 "CUDA Toolkit and Corresponding Driver Versions", column
# "Linux x86_64 Driver Version", the GA row of each release, as the CUDA 13.2 Update 2 notes print it
# (CUDA 11.0's GA is 11.0.2). No CUDA 12.7 was published. 13.3's row is from the 13.3 notes.
NVIDIA_GA_DRIVERS = [
    ((9, 0), "384.81"),
    ((9, 1), "390.46"),
    ((9, 2), "396.26"),
    ((10, 0), "410.48"),
    ((10, 1), "418.39"),
    ((10, 2), "440.33"),
    ((11, 0), "450.51.05"),
    ((11, 1), "455.23"),
    ((11, 2), "460.27.03"),
    ((11, 3), "465.19.01"),
    ((11, 4), "470.42.01"),
    ((11, 5), "495.29.05"),
    ((11, 6), "510.39.01"),
    ((11, 7), "515.43.04"),
    ((11, 8), "520.61.05"),
    ((12, 0), "525.60.13"),
    ((12, 1), "530.30.02"),
    ((12, 2), "535.54.03"),
    ((12, 3), "545.23.06"),
    ((12, 4), "550.54.14"),
    ((12, 5), "555.42.02"),
    ((12, 6), "560.28.03"),
    ((12, 8), "570.26"),
    ((12, 9), "575.51.03"),
    ((13, 0), "580.65.06"),
    ((13, 1), "590.44.01"),
    ((13, 2), "595.45.04"),
    ((13, 3), "610.43.02"),
]


def _just_below(version: str) -> str:
    """``"570.26"`` -> ``"570.25"``, ``"465.19.01"`` -> ``"465.19.00"``: the driver one step older."""
    head, _, last = version.rpartition(".")
    return f"{head}.{int(last) - 1:0{len(last)}d}"


# Each minimum gives its CUDA; a driver one step older, the CUDA of the row before (none before 9.0).
DRIVER_BOUNDARIES = [
    case
    for i, (cuda, minimum) in enumerate(NVIDIA_GA_DRIVERS)
    for case in ((minimum, cuda), (_just_below(minimum), NVIDIA_GA_DRIVERS[i - 1][0] if i else None))
]


def test_one_driver_table_and_it_is_nvidias():
    assert list(CUDA_DRIVERS) == NVIDIA_GA_DRIVERS


@pytest.mark.parametrize(("driver", "cuda"), DRIVER_BOUNDARIES, ids=[driver for driver, _ in DRIVER_BOUNDARIES])
def test_driver_to_cuda_at_each_minimum_and_just_below_it(driver, cuda):
    assert cuda_for_driver(driver) == cuda


def test_driver_to_cuda_between_and_beyond_the_rows():
    assert cuda_for_driver("565.57.01") == (12, 6)  # R565 says 12.7 itself; NVIDIA published no CUDA 12.7 toolkit
    assert cuda_for_driver("570.86.10") == (12, 8)
    assert cuda_for_driver("470.82.01") == (11, 4)
    assert cuda_for_driver("595.58.03") == (13, 2)
    assert cuda_for_driver("615.71.09") == (13, 3)  # a release after the table: the newest CUDA it vouches for
    assert cuda_for_driver("450.36.06") == (10, 2)  # CUDA 11.0's release candidate driver, below 11.0 GA's
    assert cuda_for_driver("390.1") == (9, 0)  # 390.46 is 9.1 GA's
    assert cuda_for_driver("367.48") is None and cuda_for_driver("weird") is None  # older than the table; not a version


@pytest.mark.parametrize(("cuda", "minimum"), NVIDIA_GA_DRIVERS)
def test_min_driver_for_each_cuda_is_its_ga_driver(cuda, minimum):
    assert min_driver_for_cuda(cuda) == minimum


def test_min_driver_for_a_cuda_without_a_row():
    assert min_driver_for_cuda((12, 7)) == "570.26"  # no 12.7: the first release after it
    assert min_driver_for_cuda((13, 4)) is None  # beyond the table
    assert min_driver_for_cuda((8, 0)) == "384.81"


def test_wheel_names():
    w = parse_wheel("torch-2.13.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl")
    assert (w.package, w.version, w.backend, set(w.pythons), set(w.platforms)) == ("torch", "2.13.0", "cu130", {"cp312"}, {"linux_x86_64"})
    assert parse_wheel("torch-2.9.0-cp312-none-macosx_11_0_arm64.whl").backend == "default"
    assert parse_wheel("torchaudio-2.11.0+rocm7.2-cp310-cp310-manylinux_2_28_x86_64.whl").backend == "rocm7.2"
    assert parse_wheel("not-a-wheel.txt") is None


# ---------------------------------------------------------------------- refresh


class _Index(http.server.BaseHTTPRequestHandler):
    pages: dict[str, tuple[str, str]] = {}

    def do_GET(self):  # noqa: N802
        page = self.pages.get(self.path)
        if page is None:
            self.send_error(404)
            return
        content_type, body = page
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def simple_index() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whl"
    finally:
        server.shutdown()
        server.server_close()


def html(*names: str) -> tuple[str, str]:
    links = "\n".join(f'<a href="../../files/{n.replace("+", "%2B")}#sha256=00">{n}</a><br/>' for n in names)
    return "text/html", f"<!DOCTYPE html><html><body>{links}</body></html>"


def test_refresh_learns_python_tags_and_newer_releases(simple_index):
    _Index.pages = {
        "/whl/torch/": (
            "application/vnd.pypi.simple.v1+json",
            json.dumps(
                {
                    "meta": {"api-version": "1.1"},
                    "files": [
                        {"filename": "torch-2.14.1+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"},
                        {"filename": "torch-2.16.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"},
                        {"filename": "torch-2.16.0+cu130-cp313-cp313-manylinux_2_28_x86_64.whl"},
                        {"filename": "torch-2.17.0.dev20261201+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"},
                    ],
                }
            ),
        ),
        "/whl/torchvision/": html(
            "torchvision-0.29.1+cu130-cp312-cp312-manylinux_2_28_x86_64.whl",
            "torchvision-0.31.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl",
        ),
        "/whl/torchaudio/": html("torchaudio-2.11.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"),
    }
    result = refresh_releases(simple_index)
    assert result.online
    newest = max(result.releases, key=lambda r: r.parsed)
    assert (newest.version, newest.torchvision, newest.source) == ("2.16.0", "0.31.0", "index")
    assert any("2.16.0" in n for n in result.notes)
    h100_312 = MachineInfo(system=system("3.12.1"), nvidia=nvidia("580.65.06", (13, 0), H100))
    p = plan_torch_install(h100_312, env={}, releases=result.releases)
    assert p.requirements()[:2] == ["torch==2.16.0+cu130", "torchvision==0.31.0+cu130"]
    # Its architectures come from the newest release the table lists cu130 for (2.15.0 lists none).
    assert newest.backend("cu130", "linux_x86_64").note == "architectures assumed from 2.14.1"
    # The index listed cu130 wheels of 2.14.1 for cp312 only: on Python 3.11 that build is gone,
    # while builds the index did not list (cu126) keep the table's word.
    known = next(r for r in result.releases if r.version == "2.14.1")
    assert not known.has_wheel("torch", "cu130", "3.11", "linux_x86_64")
    assert known.has_wheel("torch", "cu126", "3.11", "linux_x86_64")


def test_refresh_offline_is_a_no_op_with_a_note():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = refresh_releases(f"http://127.0.0.1:{port}/whl", timeout=2)
    assert not result.online
    assert result.releases == RELEASES
    assert "built-in release table" in result.notes[0]


# ---------------------------------------------------------------------- recorded machines

# Recorded machine -> (backend, torch release, warns): the plan each must get. Every
# recorded machine has one. CPU-only machines and Macs on Python 3.11+ get 2.15.0; GPU
# machines get 2.14.1 until the table lists 2.15.0's GPU builds, and NVIDIA drivers from
# 525.60.13 on its cu126 build (CUDA 12.x minor-version compatibility).
EXPECTED_PLANS = {
    "a100-535": ("cu126", "2.14.1", False),  # CUDA 12.2: cu126 through minor-version compatibility
    "a10g-535-smi-only": ("cu126", "2.14.1", False),
    "b200-580": ("cu130", "2.14.1", False),
    "broken-smi-no-driver": ("cpu", "2.15.0", True),
    "docker-nvml-unknown-error": ("cu126", "2.14.1", True),  # GPUs unseen: the widest build
    "driver-library-mismatch": ("cu126", "2.14.1", True),  # reboot first, says the warning
    "gh200-aarch64-580": ("cu130", "2.14.1", False),
    "gpu-lost": ("cu126", "2.14.1", True),
    "gtx1080-580-pascal": ("cu126", "2.14.1", False),  # the Pascal trap
    "gtx750ti-450": ("cu118", "2.4.1", False),  # Python 3.8; 450.80.02 runs cu118 through CUDA 11.x minor-version compatibility
    "gtx970-545": ("cu126", "2.14.1", False),  # sm_50 cubins run on 5.2
    "h100-580-nvml": ("cu130", "2.14.1", False),
    "h200-x8-580": ("cu130", "2.14.1", False),
    "intel-arc-a770": ("xpu", "2.14.1", False),
    "intel-core-ultra-lunar-lake": ("xpu", "2.14.1", False),
    "intel-max-1550": ("xpu", "2.14.1", False),
    "jetson-agx-orin": ("cpu", "2.14.1", True),
    "l4-570": ("cu126", "2.14.1", False),
    "laptop-intel-uhd-cpu-torch": ("cpu", "2.15.0", False),
    "macos-arm64-m1-macos12": ("default", "2.15.0", False),
    "macos-arm64-m3max": ("default", "2.15.0", False),
    "macos-x86_64": ("default", "2.2.2", True),
    "mi210-rocm64": ("rocm7.2", "2.14.1", False),
    "mi250x-rocm63-opt-path": ("rocm7.2", "2.14.1", False),
    "mi300x-kfd-permission": ("rocm7.2", "2.14.1", True),
    "no-gpu-cloud-vm": ("cpu", "2.15.0", False),
    "nvml-absent-procfs": ("cu126", "2.14.1", False),
    "p100-560": ("cu126", "2.14.1", False),
    "rtx-pro-6000-590": ("cu130", "2.14.1", False),
    "rtx2080ti-525": ("cu126", "2.14.1", False),  # 525.147.05 >= 525.60.13
    "rtx5080-575-smi": ("cu129", "2.11.0", False),  # Blackwell on CUDA 12.9
    "rtx5090-570": ("cu128", "2.11.0", False),  # Blackwell on CUDA 12.8: natively, before cu129 by minor-version compatibility
    "rtx3090-520": ("cu118", "2.7.1", False),  # below 525.60.13: the old rule, CUDA <= 11.8
    "rtx5090-595": ("cu130", "2.14.1", False),  # cu132 fits too, but has no torchaudio
    "rx5700-gfx1010-kfd-only": ("cpu", "2.15.0", True),
    "rx580-gfx803-unsupported": ("cpu", "2.15.0", True),
    "rx7900xtx-rocm64-hipconfig": ("rocm7.2", "2.14.1", False),
    "smi-timeout": ("cu126", "2.14.1", True),
    "sys-module-only-container": ("cu126", "2.14.1", True),
    "t4-colab-550": ("cu126", "2.14.1", False),
    "tesla-m10-470": ("cu118", "2.7.1", False),  # CUDA 11.4 driver: cu118 through minor-version compatibility, sm_50 SASS
    "two-gpus-3090-1080": ("cu126", "2.14.1", False),
    "v100-470-old-smi": ("cu118", "2.7.1", False),  # the same on R470, sm_70 SASS
    "windows-rtx4070-616": ("cu130", "2.14.1", False),
    "wsl-rtx3060-nvml": ("cu126", "2.14.1", False),
    "wsl-rtx4090-smi": ("cu126", "2.14.1", False),
}


def recorded_machines() -> list[Path]:
    return sorted(MACHINES_DIR.glob("*.json")) if MACHINES_DIR.is_dir() else []


@pytest.mark.parametrize("path", recorded_machines(), ids=lambda p: p.stem)
def test_recorded_machine_gets_the_expected_plan(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    m = detect_machine(RecordedProbe(record), workspace=Path("/work"), scratch=Path("/tmp"))
    p = plan(m)
    assert_consistent(p)
    assert path.stem in EXPECTED_PLANS, f"add the plan {path.stem} must get to EXPECTED_PLANS: {p.backend} {p.torch_release}"
    backend, release, warns = EXPECTED_PLANS[path.stem]
    assert (p.backend, p.torch_release) == (backend, release), p.explanation
    assert bool(p.warnings) is warns, p.warnings
    given = record.get("expected_plan")
    if isinstance(given, dict):
        for key, value in given.items():
            assert p.to_dict().get(key) == value, key


def test_the_recorded_machines_table_covers_at_least_30_machines():
    recorded = {p.stem for p in recorded_machines()}
    assert len(recorded) >= 30, f"{MACHINES_DIR} holds {len(recorded)} recorded machines"
    assert set(EXPECTED_PLANS) == recorded, set(EXPECTED_PLANS) ^ recorded

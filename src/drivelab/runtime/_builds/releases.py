"""The PyTorch releases drivelab knows, offline: versions, builds, and what each build carries.

One :class:`TorchRelease` per torch version holds the matching torchvision and
torchaudio, the Python versions with wheels, and one :class:`Backend` per build
("cpu", "cu130", "rocm7.2", "xpu", "default") and platform: the CUDA or ROCm
version, the GPU architectures its kernels were compiled for, and the oldest
NVIDIA driver that runs its CUDA version natively. Both types are the model's
(:mod:`drivelab.runtime._model.pytorch`); whether a build runs on a machine is
:mod:`.compat`'s to say; refreshing the table from an index is :mod:`.refresh`'s.

The table is kept by hand from public sources, named next to each fact:

[matrix]   pytorch/pytorch RELEASE.md, "Release Compatibility Matrix" (Python range,
           stable/experimental CUDA, ROCm per release) and, for 2.12-2.14, its
           "PyTorch CUDA Support Matrix" (architectures per CUDA build, x86 and aarch64).
[arch]     pytorch/pytorch .ci/manywheel/build_cuda.sh at the release tags (the
           TORCH_CUDA_ARCH_LIST the wheels are built with): v2.6.0 ... v2.11.0; before
           2.6 the same script in pytorch/builder. "+PTX" marks the one arch also
           shipped as PTX.
[wheel]    torch.cuda.get_arch_list() of installed 2.11.0 cu126/cu128/cu130 wheels
           (a public report that checked the build script against the wheels).
[rocm]     pytorch/pytorch .ci/docker/manywheel/build.sh, PYTORCH_ROCM_ARCH per ROCm
           generation.
[driver]   NVIDIA CUDA Toolkit release notes (see :mod:`drivelab.runtime._cuda`).
[versions] pytorch.org get-started/previous-versions and install commands published
           for each release (torch / torchvision / torchaudio triples); torchaudio
           2.11.0 "supports torch>=2.11" (pytorch/audio#4212), so torch 2.12-2.14 pair
           with torchaudio 2.11.0, on the builds 2.11 had.
[pypi]     PyPI's own files and wheel metadata (read with pip: `pip install --dry-run
           --report`, `pip download --no-deps`). torch 2.15.0: wheels for CPython
           3.11-3.15 on Linux x86_64/aarch64, Windows x86_64 and macOS arm64 (macOS 14+),
           none for 3.10; its Linux wheels require the CUDA 13.2 toolkit. torchvision
           0.29.2 and torchaudio 2.11.1 (both 2026-10-28) are built for CUDA 13.2 too
           (``__version__`` 0.29.2+cu132, 2.11.1+cu132), as py3 wheels whose compiled
           ops use only torch's stable C ABI (no libtorch C++ symbols), and require
           torch>=2.14.0 and torch>=2.11: the pair published with torch 2.15.0, which
           has no torchvision 0.30.

Where a fact could not be established the table says so and errs on the side
of *not* promising a build: an arch left out makes drivelab pick another build,
an arch wrongly claimed would install kernels that do not run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from drivelab.runtime._builds.wheel_tags import parse_backend
from drivelab.runtime._cuda import CC, min_driver_for_cuda
from drivelab.runtime._model.pytorch import Backend, TorchRelease

__all__ = [
    "RELEASES",
    "MACOS_X86_64_LAST",
    "TABLE_DATE",
    "KNOWN_BACKENDS",
    "find_release",
    "expected_torchaudio",
]

TABLE_DATE = "2026-11"


# ------------------------------------------------------------------- small helpers


def _pythons(first: int, last: int) -> tuple[str, ...]:
    return tuple(f"3.{minor}" for minor in range(first, last + 1))


def _ccs(text: str) -> tuple[tuple[CC, ...], tuple[CC, ...]]:
    """``"7.5;8.0;12.0+PTX"`` (a TORCH_CUDA_ARCH_LIST) -> (sm, ptx)."""
    sm: list[CC] = []
    ptx: list[CC] = []
    for item in filter(None, text.split(";")):
        arch, _, suffix = item.partition("+")
        major, minor = (int(x) for x in arch.split("."))
        sm.append((major, minor))
        if suffix == "PTX":
            ptx.append((major, minor))
    return tuple(sm), tuple(ptx)


# ------------------------------------------------------------------------ the table

_LINUX = ("linux_x86_64",)
_LINUX_WIN = ("linux_x86_64", "windows_x86_64")
_ALL_CPU = ("linux_x86_64", "linux_aarch64", "windows_x86_64")
_MAC = ("macos_arm64",)


@functools.lru_cache(maxsize=None)
def _cpu() -> tuple[Backend, ...]:
    # CPU wheels: download.pytorch.org/whl/cpu for Linux (x86_64, aarch64) and Windows;
    # macOS arm64 wheels (MPS built in) come from PyPI, the "default" build.
    return (
        Backend("cpu", "cpu", _ALL_CPU),
        Backend("default", "default", _MAC, note="PyPI's macOS arm64 wheels; MPS built in"),
    )


@functools.lru_cache(maxsize=None)
def _cuda(name: str, archs: str, *, experimental: bool = False, aarch64: str | None = None) -> tuple[Backend, ...]:
    """A CUDA build: Linux x86_64 with ``archs``; Windows with the same archs minus
    PTX ("+PTX available on linux builds only" [matrix]); Linux aarch64 only where
    the table knows its arch list."""
    kind, version = parse_backend(name)  # type: ignore[misc]
    assert kind == "cuda" and version is not None
    sm, ptx = _ccs(archs)
    driver = min_driver_for_cuda(version)
    out = [
        Backend(name, "cuda", _LINUX, version, sm, ptx, min_driver=driver, experimental=experimental),
        Backend(name, "cuda", ("windows_x86_64",), version, sm, (), min_driver=driver, experimental=experimental),
    ]
    if aarch64:
        sm_a, ptx_a = _ccs(aarch64)
        out.append(Backend(name, "cuda", ("linux_aarch64",), version, sm_a, ptx_a, min_driver=driver, experimental=experimental))
    return tuple(out)


# ROCm targets per generation [rocm]. ROCm 6.0-6.2: the script adds gfx942 from 6.0 to
# "gfx900;gfx906;gfx908;gfx90a;gfx1030;gfx1100". 6.3/6.4 add gfx1101/1102 and RDNA4
# (gfx1200/1201); some 6.4 images also list gfx950, not relied on here. 7.0 adds gfx950,
# gfx1150/1151; 7.1+ adds gfx1103.
_GFX_60 = ("gfx900", "gfx906", "gfx908", "gfx90a", "gfx942", "gfx1030", "gfx1100")
_GFX_63 = _GFX_60 + ("gfx1101", "gfx1102", "gfx1200", "gfx1201")
_GFX_70 = _GFX_63 + ("gfx950", "gfx1150", "gfx1151")
_GFX_71 = _GFX_70 + ("gfx1103",)


@functools.lru_cache(maxsize=None)
def _rocm(name: str, gfx: tuple[str, ...], *, experimental: bool = False) -> tuple[Backend, ...]:
    _, version = parse_backend(name)  # type: ignore[misc]
    return (Backend(name, "rocm", _LINUX, version, gfx=gfx, experimental=experimental),)


@functools.lru_cache(maxsize=None)
def _xpu() -> tuple[Backend, ...]:
    # Intel GPUs: Linux and Windows wheels at whl/xpu. 2.5 had prototype XPU wheels;
    # the table starts at 2.6, where they are a supported build (conservative).
    return (Backend("xpu", "xpu", _LINUX_WIN),)


# Arch lists [arch], Linux x86_64, by build and release.
_A_CU118 = "3.7;5.0;6.0;7.0;7.5;8.0;8.6;9.0"
_A_CU12X_OLD = "5.0;6.0;7.0;7.5;8.0;8.6;9.0"  # cu121, cu124 (2.4-2.6); the 2.4/2.5 script has
#   cu124 "9.0+PTX": not relied on (conservative)
_A_CU126 = "5.0;6.0;7.0;7.5;8.0;8.6;9.0"  # 2.6 -> 2.14: Maxwell to Hopper, no PTX
_A_CU128_27 = "7.5;8.0;8.6;9.0;10.0;12.0+PTX"  # 2.7: Turing and newer
_A_CU128_28 = "7.0;7.5;8.0;8.6;9.0;10.0;12.0"  # 2.8-2.10 keep Volta (pytorch#157517), no PTX
_A_CU129_28 = "7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX"
_A_CU130_29 = "7.5;8.0;8.6;9.0;10.0;12.0+PTX"  # 2.9, 2.10
_A_CU12X_211 = "7.5;8.0;8.6;9.0;10.0;12.0"  # 2.11 cu128 ([arch] + [wheel]); Volta dropped (pytorch#172598)
_A_CU129_211 = "7.5;8.0;8.6;9.0;10.0;12.0+PTX"
_A_CU130_211 = "7.5;8.0;8.6;9.0;10.0;12.0"  # 2.11 cu130: no PTX on x86_64 ([wheel])
_A_CU13X_212 = "7.5;8.0;8.6;9.0;10.0;12.0+PTX"  # 2.12-2.14 cu130/cu132 [matrix]
# Linux aarch64, 2.12-2.14 [matrix]; earlier aarch64 CUDA builds are left out (not established).
_A64_CU126 = "8.0;9.0"
_A64_CU13X = "8.0;9.0;10.0;11.0;12.0+PTX"


def _release(
    version: str,
    torchvision: str,
    torchaudio: str | None,
    python: tuple[str, ...],
    released: str,
    *backends: tuple[Backend, ...],
    torchaudio_python: tuple[str, ...] | None = None,
    torchaudio_backends: Iterable[str] | None = None,
) -> TorchRelease:
    flat = tuple(b for group in backends for b in group)
    return TorchRelease(
        version,
        torchvision,
        torchaudio,
        python,
        flat,
        released,
        torchaudio_python=torchaudio_python,
        torchaudio_backends=frozenset(torchaudio_backends) if torchaudio_backends is not None else None,
    )


def _r24(version: str, tv: str, ta: str, released: str) -> TorchRelease:
    # 2.4 [matrix]: Python 3.8-3.12; CUDA 11.8, 12.1 stable, 12.4 experimental; ROCm 6.0, 6.1.
    return _release(
        version, tv, ta, _pythons(8, 12), released,
        _cpu(), _cuda("cu118", _A_CU118), _cuda("cu121", _A_CU12X_OLD), _cuda("cu124", _A_CU12X_OLD, experimental=True),
        _rocm("rocm6.0", _GFX_60), _rocm("rocm6.1", _GFX_60),
    )  # fmt: skip


def _r25(version: str, tv: str, ta: str, released: str) -> TorchRelease:
    # 2.5 [matrix]: Python 3.9-3.12, 3.13 experimental (Linux wheels exist); CUDA 11.8, 12.1, 12.4; ROCm 6.1, 6.2.
    return _release(
        version, tv, ta, _pythons(9, 13), released,
        _cpu(), _cuda("cu118", _A_CU118), _cuda("cu121", _A_CU12X_OLD), _cuda("cu124", _A_CU12X_OLD),
        _rocm("rocm6.1", _GFX_60), _rocm("rocm6.2", _GFX_60),
    )  # fmt: skip


def _r27(version: str, tv: str, ta: str, released: str) -> TorchRelease:
    # 2.7 [matrix]: Python 3.9-3.13; CUDA 11.8, 12.6 stable, 12.8 experimental (first with
    # Blackwell sm_120); ROCm 6.2.4, 6.3.
    return _release(
        version, tv, ta, _pythons(9, 13), released,
        _cpu(), _cuda("cu118", _A_CU118), _cuda("cu126", _A_CU126), _cuda("cu128", _A_CU128_27, experimental=True),
        _rocm("rocm6.2.4", _GFX_60), _rocm("rocm6.3", _GFX_63), _xpu(),
    )  # fmt: skip


def _r29(version: str, tv: str, ta: str, released: str) -> TorchRelease:
    # 2.9 [matrix]: Python 3.10-3.14; CUDA 12.6, 12.8 stable, 13.0 experimental; ROCm 6.3, 6.4.
    return _release(
        version, tv, ta, _pythons(10, 14), released,
        _cpu(), _cuda("cu126", _A_CU126), _cuda("cu128", _A_CU128_28), _cuda("cu130", _A_CU130_29, experimental=True),
        _rocm("rocm6.3", _GFX_63), _rocm("rocm6.4", _GFX_63), _xpu(),
    )  # fmt: skip


# torchaudio 2.11.0 is the torchaudio of torch 2.11-2.14; it has the builds 2.11 had, for
# Python 3.10-3.14 (cp314 wheels exist on the cu130 index); none for cu132, which came later.
_TORCHAUDIO_211_BACKENDS = ("cpu", "default", "cu126", "cu128", "cu129", "cu130", "rocm7.1", "rocm7.2", "xpu")


def _r212(version: str, tv: str, released: str, python: tuple[str, ...], *, cu132_experimental: bool) -> TorchRelease:
    # 2.12-2.14 [matrix]: CUDA 12.6 and 13.0 stable, 13.2 experimental (stable in 2.14);
    # CUDA 12.8 removed. ROCm 7.2 (2.14's "ROCm 7.14" row names AMD's own wheel
    # repository; download.pytorch.org carries 2.14.x+rocm7.2).
    return _release(
        version, tv, "2.11.0", python, released,
        _cpu(),
        _cuda("cu126", _A_CU126, aarch64=_A64_CU126),
        _cuda("cu130", _A_CU13X_212, aarch64=_A64_CU13X),
        _cuda("cu132", _A_CU13X_212, aarch64=_A64_CU13X, experimental=cu132_experimental),
        _rocm("rocm7.2", _GFX_71), _xpu(),
        torchaudio_python=_pythons(10, 14),
        torchaudio_backends=_TORCHAUDIO_211_BACKENDS,
    )  # fmt: skip


RELEASES: tuple[TorchRelease, ...] = (
    _r24("2.4.0", "0.19.0", "2.4.0", "2024-07"),
    _r24("2.4.1", "0.19.1", "2.4.1", "2024-09"),
    _r25("2.5.0", "0.20.0", "2.5.0", "2024-10"),
    _r25("2.5.1", "0.20.1", "2.5.1", "2024-10"),
    # 2.6 [matrix]: CUDA 11.8, 12.4 stable, 12.6 experimental; ROCm 6.1, 6.2.4; XPU.
    _release(
        "2.6.0", "0.21.0", "2.6.0", _pythons(9, 13), "2025-01",
        _cpu(), _cuda("cu118", _A_CU118), _cuda("cu124", _A_CU12X_OLD), _cuda("cu126", _A_CU126, experimental=True),
        _rocm("rocm6.1", _GFX_60), _rocm("rocm6.2.4", _GFX_60), _xpu(),
    ),  # fmt: skip
    _r27("2.7.0", "0.22.0", "2.7.0", "2025-04"),
    _r27("2.7.1", "0.22.1", "2.7.1", "2025-06"),
    # 2.8 [matrix]: Python 3.9-3.13; CUDA 12.6, 12.8 stable, 12.9 experimental (CUDA 11.8
    # dropped); ROCm 6.3, 6.4.
    _release(
        "2.8.0", "0.23.0", "2.8.0", _pythons(9, 13), "2025-08",
        _cpu(), _cuda("cu126", _A_CU126), _cuda("cu128", _A_CU128_28), _cuda("cu129", _A_CU129_28, experimental=True),
        _rocm("rocm6.3", _GFX_63), _rocm("rocm6.4", _GFX_63), _xpu(),
    ),  # fmt: skip
    _r29("2.9.0", "0.24.0", "2.9.0", "2025-10"),
    _r29("2.9.1", "0.24.1", "2.9.1", "2025-11"),
    # 2.10 [matrix]: CUDA 12.6, 12.8 stable, 13.0 experimental; ROCm 7.0 and 7.1 (7.1
    # stable). The 2.10 build script also knows cu129; not in the matrix, left out.
    _release(
        "2.10.0", "0.25.0", "2.10.0", _pythons(10, 14), "2026-01",
        _cpu(), _cuda("cu126", _A_CU126), _cuda("cu128", _A_CU128_28), _cuda("cu130", _A_CU130_29, experimental=True),
        _rocm("rocm7.0", _GFX_70), _rocm("rocm7.1", _GFX_71), _xpu(),
    ),  # fmt: skip
    # 2.11 [matrix] + [wheel]: CUDA 12.6, 12.8, 13.0 stable (cu129 wheels exist too); PyPI's
    # default Linux build moves to CUDA 13.0; ROCm 7.1, 7.2 (7.2 stable).
    _release(
        "2.11.0", "0.26.0", "2.11.0", _pythons(10, 14), "2026-03",
        _cpu(), _cuda("cu126", _A_CU126), _cuda("cu128", _A_CU12X_211), _cuda("cu129", _A_CU129_211),
        _cuda("cu130", _A_CU130_211), _rocm("rocm7.1", _GFX_71), _rocm("rocm7.2", _GFX_71), _xpu(),
    ),  # fmt: skip
    _r212("2.12.0", "0.27.0", "2026-05", _pythons(10, 14), cu132_experimental=True),
    _r212("2.12.1", "0.27.1", "2026-06", _pythons(10, 14), cu132_experimental=True),
    # 2.13/2.14 [matrix]: Python up to 3.15 (3.15t experimental); torchaudio 2.11.0 has no cp315.
    _r212("2.13.0", "0.28.0", "2026-07", _pythons(10, 15), cu132_experimental=True),
    _r212("2.14.0", "0.29.0", "2026-09", _pythons(10, 15), cu132_experimental=False),
    _r212("2.14.1", "0.29.1", "2026-10", _pythons(10, 15), cu132_experimental=False),
    # 2.15 [pypi]: Python 3.11-3.15; torchvision 0.29.2, torchaudio 2.11.1. Only the builds
    # that cannot carry the wrong kernels are listed: the CPU build (whl/cpu, as for every
    # release) and PyPI's macOS arm64 wheels. Its CUDA, ROCm and XPU builds are left out
    # until their architecture lists are established; GPU machines get 2.14.1 meanwhile.
    _release("2.15.0", "0.29.2", "2.11.1", _pythons(11, 15), "2026-10", _cpu()),
)
"""Oldest first. 2.13.1 was not established (only nightlies seen): not listed."""

# Intel Macs: PyTorch 2.3 dropped macOS x86_64 wheels, so 2.2.2 (torchvision 0.17.2,
# torchaudio 2.2.2, Python 3.8-3.12, built against NumPy 1.x) is the last [versions].
MACOS_X86_64_LAST = TorchRelease(
    "2.2.2",
    "0.17.2",
    "2.2.2",
    _pythons(8, 12),
    (Backend("default", "default", ("macos_x86_64",), note="the last release with Intel-Mac wheels"),),
    "2024-03",
)

KNOWN_BACKENDS: tuple[str, ...] = tuple(
    sorted(
        {b.name for r in RELEASES for b in r.backends} | {"cpu", "default"},
        key=lambda n: (["cpu", "default", "cuda", "rocm", "xpu"].index(parse_backend(n)[0]), parse_backend(n)[1] or ()),  # type: ignore[index]
    )
)


def find_release(version: str, releases: Sequence[TorchRelease] = RELEASES) -> TorchRelease | None:
    """The release for ``"2.13.0"``, or the newest of a line for ``"2.13"``."""
    exact = [r for r in releases if r.version == version]
    if exact:
        return exact[0]
    line = [r for r in releases if r.line == version]
    return max(line, key=lambda r: r.parsed) if line else None


def expected_torchaudio(torch_version: str, releases: Sequence[TorchRelease] = RELEASES) -> str | None:
    """The torchaudio version that goes with an installed torch (public version), if known."""
    release = find_release(torch_version.split("+")[0], releases)
    return release.torchaudio if release else None

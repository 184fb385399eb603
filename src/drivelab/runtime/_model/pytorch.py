"""PyTorch's releases, builds and a plan for them: the types the release table, planning, installing and verifying share.

A :class:`TorchRelease` is one torch version with the torchvision and
torchaudio that go with it and one :class:`Backend` per build and platform; a
:class:`TorchPlan` is the one consistent set to install on a machine. The
table's rows live in :mod:`drivelab.runtime._builds.releases`; which build runs
where is :mod:`drivelab.runtime._builds.compat`'s to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version

from drivelab.runtime._cuda import CC, kernel_runs

__all__ = ["FAMILY", "python_tag", "Backend", "TorchRelease", "TorchPlan"]

FAMILY = ("torch", "torchvision", "torchaudio")
"""The packages a plan installs together, in install order."""


def python_tag(python: str) -> str:
    """``"3.12"`` -> ``"cp312"``, as wheel names say it."""
    major, minor = python.split(".")[:2]
    return f"cp{major}{minor}"


@dataclass(frozen=True)
class Backend:
    """One build of one release on some platforms: what its wheels need and carry."""

    name: str
    """The index name and local version tag: ``"cu130"``, ``"rocm7.2"``, ``"xpu"``,
    ``"cpu"``; ``"default"`` is PyPI's build (no local tag)."""
    kind: str
    """``"cuda"``, ``"rocm"``, ``"xpu"``, ``"cpu"`` or ``"default"``."""
    platforms: tuple[str, ...]
    """Where these wheels exist: ``"linux_x86_64"``, ``"linux_aarch64"``,
    ``"windows_x86_64"``, ``"macos_arm64"``, ``"macos_x86_64"``."""
    version: tuple[int, ...] | None = None
    """The CUDA or ROCm version, e.g. ``(13, 0)``."""
    sm: tuple[CC, ...] = ()
    """Compute capabilities with compiled kernels (cubins)."""
    ptx: tuple[CC, ...] = ()
    """Compute capabilities also shipped as PTX, which the driver JIT-compiles for
    any newer GPU (never an older one)."""
    gfx: tuple[str, ...] = ()
    """ROCm: the LLVM targets the wheels carry."""
    min_driver: str | None = None
    """CUDA: the oldest NVIDIA Linux driver that runs this CUDA version natively (GA)."""
    experimental: bool = False
    """Listed as experimental for its release in PyTorch's compatibility matrix."""
    note: str = ""

    @property
    def version_text(self) -> str | None:
        return ".".join(map(str, self.version)) if self.version else None

    def serves(self, cc: CC, *, jit: bool = True) -> bool:
        """Whether a GPU of compute capability ``cc`` finds kernels in these wheels; with
        ``jit=False`` only compiled ones (SASS), as under CUDA's minor-version compatibility."""
        return kernel_runs(cc, self.sm, self.ptx if jit else ())

    def arch_names(self) -> list[str]:
        """Like ``torch.cuda.get_arch_list()``: ``["sm_75", ..., "compute_120"]``."""
        if self.kind == "rocm":
            return list(self.gfx)
        return [f"sm_{a}{b}" for a, b in self.sm] + [f"compute_{a}{b}" for a, b in self.ptx]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "platforms": list(self.platforms),
            "version": self.version_text,
            "archs": self.arch_names(),
            "min_driver": self.min_driver,
            "experimental": self.experimental,
        }


@dataclass(frozen=True)
class TorchRelease:
    """One torch version with the domain libraries that go with it."""

    version: str
    torchvision: str
    torchaudio: str | None
    """None where no torchaudio goes with it."""
    python: tuple[str, ...]
    """Python versions with torch and torchvision wheels: ``("3.10", ..., "3.14")``."""
    backends: tuple[Backend, ...]
    released: str
    """Year and month, ``"2026-10"``."""
    torchaudio_python: tuple[str, ...] | None = None
    """Python versions torchaudio has wheels for, when not the same as torch's."""
    torchaudio_backends: frozenset[str] | None = None
    """Builds torchaudio has, when not the same as torch's."""
    wheels: Mapping[str, frozenset[tuple[str, str, str]]] | None = None
    """Learned from an index: package -> {(backend, python tag, platform)}; a
    backend listed here for a package is known exactly, others follow the table."""
    source: str = "table"

    @property
    def line(self) -> str:
        """The release line, ``"2.14"``."""
        return ".".join(self.version.split(".")[:2])

    @property
    def parsed(self) -> Version:
        return Version(self.version)

    def backend(self, name: str, platform: str) -> Backend | None:
        for backend in self.backends:
            if backend.name == name and platform in backend.platforms:
                return backend
        return None

    def backend_names(self, platform: str | None = None) -> list[str]:
        names: list[str] = []
        for backend in self.backends:
            if (platform is None or platform in backend.platforms) and backend.name not in names:
                names.append(backend.name)
        return names

    def package_version(self, package: str) -> str | None:
        return {"torch": self.version, "torchvision": self.torchvision, "torchaudio": self.torchaudio}[package]

    def has_wheel(self, package: str, backend: str, python: str, platform: str) -> bool:
        """Whether ``package`` of this release has a wheel for that build, Python and platform."""
        tag = python_tag(python)
        if self.wheels is not None:
            known = self.wheels.get(package)
            if known is not None and any(entry[0] == backend for entry in known):
                return (backend, tag, platform) in known
        if self.backend(backend, platform) is None:
            return False
        if package == "torchaudio":
            if self.torchaudio is None:
                return False
            if self.torchaudio_backends is not None and backend not in self.torchaudio_backends:
                return False
            return python in (self.torchaudio_python or self.python)
        return python in self.python

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "torchvision": self.torchvision,
            "torchaudio": self.torchaudio,
            "python": list(self.python),
            "released": self.released,
            "backends": [b.to_dict() for b in self.backends],
            "source": self.source,
        }


@dataclass(frozen=True)
class TorchPlan:
    """What to install and why. ``packages`` maps each package to the exact
    version, local build tag included (``"2.14.1+cu130"``)."""

    backend: str
    index_url: str | None
    """The one index to install from (``--index-url``); None with ``find_links``."""
    find_links: str | None
    """A local folder (or URL) of wheels, installed with ``--no-index``."""
    packages: dict[str, str]
    torch_release: str
    python: str
    platform: str
    explanation: str
    """One paragraph: why this build."""
    warnings: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    """What the user forced: ``{"backend": "cu126 (--backend)"}``."""
    cuda: str | None = None
    rocm: str | None = None
    archs: tuple[str, ...] = ()
    """The GPU architectures the build carries (``sm_75`` ... / ``gfx90a`` ...)."""
    notes: tuple[str, ...] = ()
    """What to know about a plan that stands, e.g. a build the driver runs through
    CUDA's minor-version compatibility: less than a warning."""

    @property
    def build(self) -> str:
        """The build every package of the plan must have: the backend name."""
        return self.backend

    def requirements(self) -> list[str]:
        """``["torch==2.14.1+cu130", ...]`` in install order."""
        return [f"{name}=={self.packages[name]}" for name in FAMILY if name in self.packages]

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "index_url": self.index_url,
            "find_links": self.find_links,
            "packages": dict(self.packages),
            "requirements": self.requirements(),
            "torch_release": self.torch_release,
            "python": self.python,
            "platform": self.platform,
            "cuda": self.cuda,
            "rocm": self.rocm,
            "archs": list(self.archs),
            "explanation": self.explanation,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "overrides": dict(self.overrides),
        }

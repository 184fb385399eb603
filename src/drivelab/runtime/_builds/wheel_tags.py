"""What PyTorch's names say: build tags, platforms, Python tags, wheel file names, index URLs.

Kept apart from the release table and from the rule of what runs where, since
all three read these names: ``"cu130"`` is CUDA 13.0, ``torch-2.13.0+cu130-cp312-
cp312-manylinux_2_28_x86_64.whl`` is torch 2.13.0 of that build for CPython 3.12
on Linux x86_64, and the build's wheels live at ``<root>/cu130``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion

__all__ = [
    "DEFAULT_INDEX_ROOT",
    "PYPI_INDEX",
    "WheelFile",
    "parse_wheel",
    "scan_wheels",
    "platform_key",
    "parse_backend",
    "python_tag",
    "index_url_for",
]

DEFAULT_INDEX_ROOT = "https://download.pytorch.org/whl"
PYPI_INDEX = "https://pypi.org/simple"


def python_tag(python: str) -> str:
    """``"3.12"`` -> ``"cp312"``."""
    major, minor = python.split(".")[:2]
    return f"cp{major}{minor}"


def platform_key(os_name: str, arch: str) -> str:
    """``("Linux", "x86_64")`` -> ``"linux_x86_64"``; Windows' ``AMD64`` is ``x86_64``."""
    os_key = {"linux": "linux", "darwin": "macos", "windows": "windows"}.get(os_name.lower(), os_name.lower())
    arch_key = {"amd64": "x86_64", "x64": "x86_64", "arm64": "arm64", "aarch64": "aarch64"}.get(arch.lower(), arch.lower())
    if os_key == "linux" and arch_key == "arm64":
        arch_key = "aarch64"
    if os_key == "macos" and arch_key == "aarch64":
        arch_key = "arm64"
    return f"{os_key}_{arch_key}"


def parse_backend(name: str) -> tuple[str, tuple[int, ...] | None] | None:
    """``"cu130"`` -> ``("cuda", (13, 0))``; ``"rocm6.2.4"`` -> ``("rocm", (6, 2, 4))``; None if not a backend name."""
    name = name.strip().lower()
    if name in ("cpu", "xpu", "default"):
        return name, None
    match = re.fullmatch(r"cu(\d{2,3})", name)
    if match:
        digits = match.group(1)
        return "cuda", (int(digits[:-1]), int(digits[-1]))
    match = re.fullmatch(r"rocm(\d+(?:\.\d+)+)", name)
    if match:
        return "rocm", tuple(int(x) for x in match.group(1).split("."))
    return None


def index_url_for(backend: str, root: str = DEFAULT_INDEX_ROOT) -> str:
    """The one index a build is installed from: ``<root>/<backend>``, or PyPI for ``"default"``."""
    if backend == "default":
        return PYPI_INDEX
    return f"{root.rstrip('/')}/{backend}"


@dataclass(frozen=True)
class WheelFile:
    """What a wheel's file name says."""

    filename: str
    package: str
    version: str
    """Public version, ``"2.13.0"``."""
    backend: str
    """The local tag (``"cpu"``, ``"cu130"``) or ``"default"`` when there is none."""
    pythons: frozenset[str]
    """CPython tags it installs on, ``{"cp311"}``; ``{"py3"}`` for pure wheels."""
    platforms: frozenset[str]
    """drivelab platform keys, or ``{"any"}``."""

    @property
    def full_version(self) -> str:
        return self.version if self.backend == "default" else f"{self.version}+{self.backend}"

    def fits(self, python: str, platform: str) -> bool:
        tag = python_tag(python)
        minor = int(tag[3:])
        py_ok = (
            tag in self.pythons
            or "py3" in self.pythons
            or any(p.startswith("abi3:cp3") and minor >= int(p[8:]) for p in self.pythons)
        )
        return py_ok and (platform in self.platforms or "any" in self.platforms)


def _platform_of_tag(tag: str) -> str | None:
    if tag == "any":
        return "any"
    if tag.endswith("x86_64") and ("linux" in tag):
        return "linux_x86_64"
    if tag.endswith("aarch64") and "linux" in tag:
        return "linux_aarch64"
    if tag == "win_amd64":
        return "windows_x86_64"
    if tag.startswith("macosx_"):
        if tag.endswith("arm64"):
            return "macos_arm64"
        if tag.endswith("x86_64"):
            return "macos_x86_64"
    return None


def parse_wheel(filename: str) -> WheelFile | None:
    """Parse a torch-family wheel file name; None for anything else."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename  # packaging.tags is slow to import

    try:
        name, version, _build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    pythons: set[str] = set()
    platforms: set[str] = set()
    for tag in tags:
        if tag.abi == "abi3":
            pythons.add(f"abi3:{tag.interpreter}")
        else:
            pythons.add(tag.interpreter)
        plat = _platform_of_tag(tag.platform)
        if plat:
            platforms.add(plat)
        if tag.platform.startswith("macosx_") and tag.platform.endswith("universal2"):
            platforms.update({"macos_arm64", "macos_x86_64"})
    local = version.local
    return WheelFile(
        filename=filename,
        package=str(name),
        version=version.public,
        backend=str(local) if local else "default",
        pythons=frozenset(pythons),
        platforms=frozenset(platforms),
    )


def scan_wheels(directory: Path) -> list[WheelFile]:
    """The torch, torchvision and torchaudio wheels in a ``--find-links`` folder."""
    found = []
    for path in sorted(directory.glob("*.whl")):
        wheel = parse_wheel(path.name)
        if wheel and wheel.package in ("torch", "torchvision", "torchaudio"):
            found.append(wheel)
    return found

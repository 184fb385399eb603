"""What a wheel's file name says: ``torch-2.13.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl``
is torch 2.13.0 of the cu130 build, for CPython 3.12 on Linux x86_64.

Read for a folder of wheels (``--find-links``) and for an index's listing
(``--refresh``); a plan from the built-in table needs none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion

from drivelab.runtime._model.pytorch import python_tag

__all__ = ["WheelFile", "parse_wheel", "scan_wheels"]


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

"""What PyTorch's names say: build tags, platforms, index URLs.

Kept apart from the release table and from the rule of what runs where, since
all three read these names: ``"cu130"`` is CUDA 13.0, ``("Linux", "x86_64")``
is ``"linux_x86_64"``, and the build's wheels live at ``<root>/cu130``. What a
wheel's file name says is :mod:`.wheel_files`'.
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_INDEX_ROOT",
    "PYPI_INDEX",
    "platform_key",
    "parse_backend",
    "index_url_for",
]

DEFAULT_INDEX_ROOT = "https://download.pytorch.org/whl"
PYPI_INDEX = "https://pypi.org/simple"


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

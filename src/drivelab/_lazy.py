"""Lazy public surfaces: a package's names load from their modules on first use.

Keeps ``import drivelab.<layer>`` cheap, so the CLI starts fast and torch, the
HTTP client and the probes load only when a command needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, names)`` for ``package``, given ``{module: [names]}``.

    Modules are relative to ``package`` (``"_loop"`` -> ``package._loop``).
    """
    where = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace.get("__all__", where)))

    return __getattr__, __dir__, list(where)

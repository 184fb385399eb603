"""Datasets by name: one getter per dataset, looked up case-insensitively."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from drivelab.errors import UnknownDatasetError

if TYPE_CHECKING:
    from drivelab.data._events import ProgressCallback
    from drivelab.data._results import FetchResult

__all__ = ["get_dataset", "known_datasets"]

# name -> "module:function"; imported on use, so listing names costs nothing.
_GETTERS: dict[str, str] = {
    "mnist": "drivelab.data._mnist:get_mnist",
}


def known_datasets() -> list[str]:
    """Names :func:`get_dataset` accepts, sorted."""
    return sorted(_GETTERS)


def get_dataset(
    name: str,
    dataset_root: Path,
    *,
    mirrors: list[str] | None = None,
    progress: ProgressCallback | None = None,
) -> FetchResult:
    """Fetch dataset ``name`` (case-insensitive) under ``dataset_root``, verified.

    Raises :class:`UnknownDatasetError` for a name not in :func:`known_datasets`.
    """
    target = _GETTERS.get(name.strip().lower())
    if target is None:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}",
            hint="known datasets: " + ", ".join(known_datasets()),
        )
    module, function = target.split(":")
    getter = getattr(importlib.import_module(module), function)
    return getter(Path(dataset_root), mirrors=mirrors, progress=progress)

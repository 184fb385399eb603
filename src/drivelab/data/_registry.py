"""Datasets by name: one getter per dataset, looked up case-insensitively."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from drivelab.data._events import ProgressCallback
from drivelab.data._mnist import get_mnist
from drivelab.data._results import FetchResult
from drivelab.errors import UnknownDatasetError

__all__ = ["get_dataset", "known_datasets"]

_GETTERS: dict[str, Callable[..., FetchResult]] = {
    "mnist": get_mnist,
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
    getter = _GETTERS.get(name.strip().lower())
    if getter is None:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}",
            hint="known datasets: " + ", ".join(known_datasets()),
        )
    return getter(Path(dataset_root), mirrors=mirrors, progress=progress)

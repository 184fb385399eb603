"""Datasets into ``drive/dataset``: mirrors, resumable downloads, checksums.

::

    result = get_dataset("mnist", workspace.dataset, progress=print_event)
    result.raw_dir            # <dataset_root>/MNIST/raw, torchvision's layout
    result.to_dict()          # JSON-ready

Every file is downloaded to a temporary name, verified by MD5 and only then
renamed into place; an interrupted HTTP download is resumed on the next call.
Mirrors come from ``mirrors=``, else ``$DRIVELAB_MNIST_MIRROR``, else the
defaults. This package never prints: progress goes to the ``progress``
callable as the events below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "_events": ["AttemptFailed", "BytesReceived", "FileDone", "FileStarted", "FileStatus", "ProgressCallback", "ProgressEvent"],
    "_mnist": ["DEFAULT_MNIST_MIRRORS", "MNIST_MIRROR_ENV", "get_mnist", "mnist_raw_dir", "resolve_mirrors"],
    "_registry": ["get_dataset", "known_datasets"],
    "_results": ["FailedAttempt", "FetchResult", "FileResult"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    # Names load on first use: listing datasets must not pay for the HTTP client.
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'drivelab.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"drivelab.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from drivelab.data._events import (
        AttemptFailed,
        BytesReceived,
        FileDone,
        FileStarted,
        FileStatus,
        ProgressCallback,
        ProgressEvent,
    )
    from drivelab.data._mnist import DEFAULT_MNIST_MIRRORS, MNIST_MIRROR_ENV, get_mnist, mnist_raw_dir, resolve_mirrors
    from drivelab.data._registry import get_dataset, known_datasets
    from drivelab.data._results import FailedAttempt, FetchResult, FileResult

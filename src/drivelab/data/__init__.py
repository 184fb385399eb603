"""Datasets into ``drive/dataset``: mirrors, resumable downloads, checksums.

::

    result = get_dataset("mnist", workspace.dataset, progress=print_event)
    result.raw_dir            # <dataset_root>/MNIST/raw, torchvision's layout
    result.to_dict()          # JSON-ready

Every file is downloaded to a temporary name, verified by MD5 and only then
renamed into place; an interrupted HTTP download is resumed on the next call.
Mirrors come from ``mirrors=``, else ``$DRIVELAB_MNIST_MIRROR``, else the
defaults, and are checked before anything else (:class:`MirrorError`). A file
in place that fails its check is reported (:class:`FileInvalid`) and replaced
by a verified copy. ``stage_dataset(ws, "dataset/MNIST")`` copies a folder of the drive
to fast local scratch, verified. This package never prints: progress goes to the ``progress``
callable as the events below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_events": ["AttemptFailed", "BytesReceived", "FileDone", "FileInvalid", "FileStarted", "FileStatus", "ProgressCallback", "ProgressEvent"],
    "_mnist": ["DEFAULT_MNIST_MIRRORS", "MNIST_MIRROR_ENV", "get_mnist", "mnist_raw_dir", "resolve_mirrors"],
    "_registry": ["get_dataset", "known_datasets"],
    "_results": ["FailedAttempt", "FetchResult", "FileResult"],
    "_stage": ["SCRATCH_ENV", "StageResult", "stage_dataset", "staged_dataset_root"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from drivelab.data._events import (
        AttemptFailed,
        BytesReceived,
        FileDone,
        FileInvalid,
        FileStarted,
        FileStatus,
        ProgressCallback,
        ProgressEvent,
    )
    from drivelab.data._mnist import DEFAULT_MNIST_MIRRORS, MNIST_MIRROR_ENV, get_mnist, mnist_raw_dir, resolve_mirrors
    from drivelab.data._registry import get_dataset, known_datasets
    from drivelab.data._results import FailedAttempt, FetchResult, FileResult
    from drivelab.data._stage import SCRATCH_ENV, StageResult, stage_dataset, staged_dataset_root

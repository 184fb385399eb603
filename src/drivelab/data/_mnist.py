"""MNIST: four IDX files in torchvision's layout, ``<dataset_root>/MNIST/raw/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from drivelab.data._events import ProgressCallback
from drivelab.data._fetch import FileSpec, fetch_files
from drivelab.data._results import FetchResult
from drivelab.errors import DataError, MirrorError

__all__ = ["MNIST_FILES", "MNIST_MIRROR_ENV", "DEFAULT_MNIST_MIRRORS", "get_mnist", "mnist_raw_dir", "resolve_mirrors"]

MNIST_MIRROR_ENV = "DRIVELAB_MNIST_MIRROR"

# torchvision's list, in its order.
DEFAULT_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# MD5s and sizes of the uncompressed files (the .gz wrappers differ between mirrors).
MNIST_FILES = (
    FileSpec("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 47040016),
    FileSpec("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60008),
    FileSpec("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 7840016),
    FileSpec("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10008),
)

_HINT = (
    "check the network connection, or point {env} (or --mirror) at a reachable mirror "
    "holding the .gz files, e.g. https://host/mnist/ or file:///path/to/mnist/"
)


def mnist_raw_dir(dataset_root: Path) -> Path:
    """Where MNIST's files live: ``<dataset_root>/MNIST/raw`` (torchvision's layout)."""
    return Path(dataset_root) / "MNIST" / "raw"


def resolve_mirrors(explicit: Iterable[str] | None = None) -> list[str]:
    """The mirrors to try, in order, each ending in ``/``; all checked before anything is fetched.

    A non-empty ``explicit`` list wins; else ``$DRIVELAB_MNIST_MIRROR`` (one or
    more URLs separated by commas or whitespace, read now); else the defaults.
    A mirror is the http://, https:// or file:// URL of a folder holding the
    ``.gz`` files; anything else raises :class:`MirrorError`, saying which
    mirror, where it came from and what is wrong with it.
    """
    chosen = [m.strip() for m in explicit or () if m.strip()]
    origin = ""
    if not chosen:
        chosen = [m for m in re.split(r"[,\s]+", os.environ.get(MNIST_MIRROR_ENV, "")) if m]
        origin = f" from ${MNIST_MIRROR_ENV}" if chosen else ""
    if not chosen:
        chosen = list(DEFAULT_MNIST_MIRRORS)
    for mirror in chosen:
        problem = _mirror_problem(mirror)
        if problem:
            raise MirrorError(f"mirror {mirror!r}{origin} {problem}", hint=_mirror_hint(mirror))
    return [m if m.endswith("/") else m + "/" for m in chosen]


def _mirror_problem(mirror: str) -> str | None:
    """What makes ``mirror`` unusable, or ``None``; the fetch appends ``<name>.gz`` to it."""
    try:
        parts = urlsplit(mirror)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        return "is not a well-formed URL"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "file") or not mirror[len(scheme) + 1 :].startswith("//"):
        return "is not an http://, https:// or file:// URL"
    if any(c.isspace() for c in mirror):
        return "contains a space (give it percent-encoded, %20)"
    if parts.query or parts.fragment:
        what = "a query (?...)" if parts.query else "a fragment (#...)"
        return f"has {what}: a mirror is a folder URL that the file names are appended to"
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return f"names another machine ({parts.netloc!r}): a file:// mirror is a folder on this one, file:///path/to/folder/"
        if not parts.path:
            return "names no folder"
        return None
    if not parts.hostname:
        return "has no host name"
    try:
        parts.port  # noqa: B018 -- raises for a port that is not a number from 0 to 65535
    except ValueError:
        return "has an invalid port"
    return None


def _mirror_hint(mirror: str) -> str:
    hint = "a mirror is an http://, https:// or file:// URL of a folder holding the .gz files, e.g. https://host/mnist/ or file:///path/to/mnist/"
    folder = Path(mirror).expanduser()
    if "://" not in mirror and folder.is_dir():
        hint += f"; for this folder: {folder.resolve().as_uri()}/"
    return hint


def get_mnist(
    dataset_root: Path,
    *,
    mirrors: list[str] | None = None,
    progress: ProgressCallback | None = None,
    files: Iterable[str] | None = None,
) -> FetchResult:
    """Make sure MNIST's raw files are in :func:`mnist_raw_dir`, verified by MD5.

    ``mirrors`` as in :func:`resolve_mirrors` (checked first: :class:`MirrorError`
    even when every file is present); ``progress`` receives the events
    of :mod:`drivelab.data._events`; ``files`` picks a subset of the four names
    (default: all). Raises :class:`DownloadError` when no mirror delivers a
    file, :class:`DataError` when the folder cannot be written.
    """
    sources = resolve_mirrors(mirrors)  # first: a bad mirror is an error even when nothing is missing
    specs = list(MNIST_FILES)
    if files is not None:
        wanted = list(files)
        unknown = sorted(set(wanted) - {s.name for s in MNIST_FILES})
        if unknown:
            raise DataError(
                f"MNIST has no file named {', '.join(unknown)}",
                hint="its files are " + ", ".join(s.name for s in MNIST_FILES),
            )
        specs = [s for s in MNIST_FILES if s.name in wanted]
    raw_dir = mnist_raw_dir(dataset_root)
    results = fetch_files(
        specs,
        raw_dir,
        sources,
        hint=_HINT.format(env=MNIST_MIRROR_ENV),
        progress=progress,
    )
    return FetchResult("mnist", raw_dir, results)

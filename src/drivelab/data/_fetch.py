"""Fetch a set of gzip-served files from mirrors into a folder, verified.

For each file: keep it if present with the right MD5 (one that is there but
fails the check is reported, and replaced only by a verified copy); otherwise try each
mirror in order -- download ``<mirror>/<name>.gz`` (resuming over HTTP),
gunzip to ``<name>.incomplete`` while hashing, check the MD5, then publish
under the final name. Nothing unverified ever sits under the final name.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from drivelab._atomic import incomplete_path, made_folder, publish
from drivelab.data import _http
from drivelab.data._events import BytesReceived, FileDone, FileInvalid, FileStarted, ProgressCallback
from drivelab.data._events import AttemptFailed as AttemptFailedEvent
from drivelab.data._reasons import AttemptFailedError, describe_gzip_error, describe_os_error
from drivelab.data._results import FailedAttempt, FileResult
from drivelab.errors import DataError, DownloadError

__all__ = ["FileSpec", "fetch_files", "file_md5"]

_READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class FileSpec:
    """A file to fetch: its final (uncompressed) name, MD5 and size."""

    name: str
    md5: str
    size: int


def fetch_files(
    specs: list[FileSpec],
    raw_dir: Path,
    mirrors: list[str],
    *,
    hint: str,
    progress: ProgressCallback | None = None,
) -> list[FileResult]:
    """Put every file of ``specs`` into ``raw_dir``, verified; see the module doc.

    ``mirrors`` are base URLs ending in ``/``. Raises :class:`DownloadError`
    (with ``hint``) for the first file no mirror could deliver, and
    :class:`DataError` when ``raw_dir`` cannot be written.
    """
    try:
        with made_folder(raw_dir), _http.new_client() as client:
            return [_fetch_one(spec, raw_dir, mirrors, client, hint, progress) for spec in specs]
    except OSError as exc:
        where = exc.filename or raw_dir
        raise DataError(
            f"cannot write {where}: {describe_os_error(exc)}",
            hint="check that the dataset folder is writable and the disk has free space",
        ) from exc


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_one(
    spec: FileSpec,
    raw_dir: Path,
    mirrors: list[str],
    client: httpx.Client,
    hint: str,
    progress: ProgressCallback | None,
) -> FileResult:
    final = raw_dir / spec.name
    partial = incomplete_path(raw_dir / (spec.name + ".gz"))
    invalid = None
    if final.is_file():
        size, actual = final.stat().st_size, file_md5(final)
        if size == spec.size and actual == spec.md5:
            _http.discard_partial(partial)  # leftovers of an older run are of no use now
            if progress:
                progress(FileDone(spec.name, "present", None))
            return FileResult(spec.name, "present", None)
        invalid = FileInvalid(spec.name, final, spec.md5, actual, spec.size, size)
        if progress:
            progress(invalid)

    failures: list[FailedAttempt] = []
    for index, mirror in enumerate(mirrors):
        url = mirror + spec.name + ".gz"
        try:
            if url.lower().startswith("file:"):
                received, resumed = _from_file(url, final, spec, progress), False
            else:
                transfer = _http.download(client, url, partial, spec.name, progress)
                received, resumed = transfer.received, transfer.resumed
                try:
                    with open(partial, "rb") as fh:
                        _gunzip_verified(fh, final, spec)
                except AttemptFailedError:
                    _http.discard_partial(partial)  # bad data: never resume from it
                    raise
        except AttemptFailedError as exc:
            failures.append(FailedAttempt(url, exc.reason))
            if progress:
                progress(AttemptFailedEvent(spec.name, url, exc.reason, mirrors_left=len(mirrors) - index - 1))
            continue
        publish(incomplete_path(final), final)
        _http.discard_partial(partial)  # only now: until published, it is our only copy
        status = "resumed" if resumed else "downloaded"
        if progress:
            progress(FileDone(spec.name, status, url))
        return FileResult(spec.name, status, url, received, failures, replaced=invalid)
    raise DownloadError(spec.name, failures, hint=hint)


def _from_file(url: str, final: Path, spec: FileSpec, progress: ProgressCallback | None) -> int:
    """Gunzip a ``file://`` source straight into place (no copy of the .gz needed)."""
    source = Path(url2pathname(unquote(urlsplit(url).path)))
    try:
        fh = open(source, "rb")
    except OSError as exc:
        raise AttemptFailedError(f"{describe_os_error(exc)}: {source}") from exc
    with fh:
        total = os.fstat(fh.fileno()).st_size
        if progress:
            progress(FileStarted(spec.name, url, total))
        _gunzip_verified(fh, final, spec, progress=progress)
    return total


def _gunzip_verified(
    src: BinaryIO, final: Path, spec: FileSpec, *, progress: ProgressCallback | None = None
) -> None:
    """Gunzip ``src`` to ``<final>.incomplete`` and check size and MD5.

    On success the temporary file is left for the caller to publish; on any
    failure it is removed and :class:`AttemptFailedError` (bad data) or
    ``OSError`` (local disk) raised.
    """
    tmp = incomplete_path(final)
    digest = hashlib.md5()
    written = 0
    reported = 0
    try:
        with gzip.GzipFile(fileobj=src, mode="rb") as gz, open(tmp, "wb") as out:
            while chunk := _read(gz):
                written += len(chunk)
                if written > spec.size:
                    # Stop early: a wrong (or hostile) file must not fill the disk.
                    raise AttemptFailedError(f"uncompressed data is larger than the expected {spec.size} bytes")
                digest.update(chunk)
                out.write(chunk)
                if progress:  # compressed bytes consumed so far, for the bar
                    pos = src.tell()
                    progress(BytesReceived(spec.name, pos - reported))
                    reported = pos
        actual = digest.hexdigest()
        if actual != spec.md5:
            raise AttemptFailedError(f"MD5 {actual} does not match the expected {spec.md5}")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _read(gz: gzip.GzipFile) -> bytes:
    try:
        return gz.read(_READ_SIZE)
    # BadGzipFile is an OSError: catch it before the generic read failure.
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise AttemptFailedError(describe_gzip_error(exc)) from exc
    except OSError as exc:
        raise AttemptFailedError(f"cannot read the data: {describe_os_error(exc)}") from exc

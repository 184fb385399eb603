"""Download one ``.gz`` over HTTP(S) into a temporary file, resuming when it can.

A partial download lives at ``<name>.gz.incomplete`` with a sidecar
``<name>.gz.incomplete.json`` recording the URL it came from and the server's
validator (ETag or Last-Modified). Only a partial from the *same* URL is resumed,
with ``Range`` (and ``If-Range`` when a validator is known, so a changed file is
sent whole instead of spliced). A 206 reply is appended; a 200 reply starts over.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from drivelab._atomic import write_text_atomic
from drivelab.data._events import BytesReceived, FileStarted, ProgressCallback
from drivelab.data._reasons import AttemptFailedError, describe_http_error, describe_status

__all__ = ["HttpTransfer", "download", "discard_partial", "sidecar_path", "new_client"]

# Generous read timeout: slow mirrors are fine, silent ones are not.
TIMEOUT = httpx.Timeout(60.0, connect=15.0)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def new_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, follow_redirects=True, headers={"User-Agent": "drivelab"})


@dataclass(frozen=True)
class HttpTransfer:
    """What one successful download did: bytes received now, and whether it resumed."""

    received: int
    resumed: bool


class _RangeNotSatisfiable(Exception):
    pass


def sidecar_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def discard_partial(partial: Path) -> None:
    for path in (partial, sidecar_path(partial)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def download(client: httpx.Client, url: str, partial: Path, name: str, progress: ProgressCallback | None) -> HttpTransfer:
    """Fetch ``url`` into ``partial`` (whole, on success). Raises :class:`AttemptFailedError`.

    On a network error the bytes received so far stay in ``partial`` for a later
    resume; local disk errors propagate as ``OSError``.
    """
    try:
        return _get(client, url, partial, name, progress, allow_resume=True)
    except _RangeNotSatisfiable:
        # Our partial is longer than (or as long as) the file now served: we
        # cannot tell which, so start over once.
        discard_partial(partial)
        return _get(client, url, partial, name, progress, allow_resume=False)


def _get(
    client: httpx.Client,
    url: str,
    partial: Path,
    name: str,
    progress: ProgressCallback | None,
    *,
    allow_resume: bool,
) -> HttpTransfer:
    offset, validator = _resume_point(url, partial) if allow_resume else (0, None)
    # identity: Range offsets must count the bytes as stored, never as decoded.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    received = 0
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and offset:
                raise _RangeNotSatisfiable
            if response.status_code == 206 and offset:
                start, total = _content_range(response)
                if start != offset:
                    raise AttemptFailedError(f"HTTP 206 for bytes {start}- when bytes {offset}- were asked")
                mode, resumed = "ab", True
            elif response.status_code == 200:
                # A full reply, even to a Range request: the old partial is void.
                offset, mode, resumed = 0, "wb", False
                total = _content_length(response)
                _write_sidecar(partial, url, response)
            else:
                raise AttemptFailedError(describe_status(response))
            if progress:
                progress(FileStarted(name, url, total, resumed_from=offset))
            with open(partial, mode) as fh:
                # No chunk_size: httpx would hold bytes back to fill a chunk, and
                # lose them if the connection drops -- they belong in the partial.
                for chunk in response.iter_raw():
                    fh.write(chunk)
                    received += len(chunk)
                    if progress:
                        progress(BytesReceived(name, len(chunk)))
    except httpx.HTTPError as exc:
        reason = describe_http_error(exc)
        if received:
            reason += f" after {received} bytes (partial kept to resume)"
        raise AttemptFailedError(reason) from exc
    return HttpTransfer(received=received, resumed=resumed)


def _resume_point(url: str, partial: Path) -> tuple[int, str | None]:
    """Bytes already held from ``url`` and the validator to send with If-Range."""
    try:
        size = partial.stat().st_size
        meta = json.loads(sidecar_path(partial).read_text("utf-8"))
    except (OSError, ValueError):
        return 0, None
    if not isinstance(meta, dict) or meta.get("url") != url or size == 0:
        return 0, None
    etag = meta.get("etag")
    # If-Range needs a strong validator; a weak ETag would never match.
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return size, etag
    last_modified = meta.get("last_modified")
    return size, last_modified if isinstance(last_modified, str) and last_modified else None


def _write_sidecar(partial: Path, url: str, response: httpx.Response) -> None:
    # Written before the first byte, so any partial on disk has a matching sidecar.
    meta = {
        "url": url,
        "etag": response.headers.get("ETag"),
        "last_modified": response.headers.get("Last-Modified"),
    }
    write_text_atomic(sidecar_path(partial), json.dumps(meta))


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _content_range(response: httpx.Response) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if not match:
        raise AttemptFailedError("HTTP 206 without a usable Content-Range")
    total = match.group(3)
    return int(match.group(1)), int(total) if total.isdigit() else None

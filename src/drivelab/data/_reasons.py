"""Foreign errors (httpx, OS, gzip) turned into short, readable reasons.

A reason names what went wrong with one source, e.g. ``"HTTP 404 Not Found"``
or ``"connection refused"``; it ends up in :class:`DownloadError.attempts`.
"""

from __future__ import annotations

import gzip
import zlib

import httpx

__all__ = ["AttemptFailedError", "describe_http_error", "describe_status", "describe_os_error", "describe_gzip_error"]


class AttemptFailedError(Exception):
    """One source failed for ``reason``; the caller moves on to the next source.

    Deliberately not an ``OSError``: local disk errors must not be mistaken for
    a bad mirror.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_status(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    return f"HTTP {response.status_code}" + (f" {phrase}" if phrase else "")


def describe_http_error(exc: httpx.HTTPError) -> str:
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out while connecting"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text:
            return "connection refused"
        if any(s in text for s in ("name or service", "nodename", "name resolution", "getaddrinfo")):
            return "could not resolve the host name"
        if "unreachable" in text:
            return "network is unreachable"
        if "certificate" in text or "ssl" in text:
            return f"TLS error: {exc}"
        return f"could not connect: {exc}" if str(exc) else "could not connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for data"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "connection lost"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL scheme"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def describe_os_error(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc) or type(exc).__name__


def describe_gzip_error(exc: Exception) -> str:
    if isinstance(exc, EOFError):
        return "truncated gzip file"
    if isinstance(exc, gzip.BadGzipFile) and "not a gzipped file" in str(exc).lower():
        return "not a gzip file"
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return f"corrupt gzip data ({exc})"
    return f"corrupt gzip data ({type(exc).__name__}: {exc})"

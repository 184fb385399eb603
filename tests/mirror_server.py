"""A loopback HTTP mirror for tests: serves a folder, honours Range, misbehaves on request.

::

    with MirrorServer(drop_after={"train-labels-idx1-ubyte.gz": 10_000}) as server:
        get_mnist(root, mirrors=[server.url])      # fails mid-file, keeps the partial
        server.requests                            # what was asked, and what was sent

Names in the options are the served file names (``t10k-labels-idx1-ubyte.gz``).
Every reply carries an ETag (of the bytes served) and Last-Modified; a Range
request gets 206 with Content-Range unless ``honor_range`` is off or If-Range
does not match. Requests are recorded before their body is sent, so a client
that has read a reply always finds it in :attr:`requests`.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import threading
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

# The repository's own copy of the four MNIST files (see tests/data/mnist/README.md).
DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, and how it answered."""

    method: str
    path: str
    range: str | None
    if_range: str | None
    status: int
    bytes_sent: int  # body bytes, counting only those sent before any drop

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class MirrorServer:
    """Serve ``directory`` on ``127.0.0.1`` (a free port); see the module doc.

    ``corrupt``: names served as a *valid* gzip of altered content (the MD5 check
    must catch them). ``garbage``: names served as bytes that are not gzip at all.
    ``missing``: names answered with 404. ``drop_after``: name -> byte count after
    which the connection is cut (once per name, or on every request with
    ``drop_always``). ``honor_range=False`` answers every Range request with 200.
    """

    def __init__(
        self,
        directory: Path | str = DEFAULT_DIRECTORY,
        *,
        corrupt: set[str] | frozenset[str] = frozenset(),
        garbage: set[str] | frozenset[str] = frozenset(),
        missing: set[str] | frozenset[str] = frozenset(),
        drop_after: dict[str, int] | None = None,
        drop_always: bool = False,
        honor_range: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.corrupt = set(corrupt)
        self.garbage = set(garbage)
        self.missing = set(missing)
        self.drop_after = dict(drop_after or {})
        self.drop_always = drop_always
        self.honor_range = honor_range
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._cache: dict[str, bytes] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> MirrorServer:
        handler = type("_Handler", (_Handler,), {"mirror": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mirror-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # -- what happened -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, name: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.name == name]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # -- what is served --------------------------------------------------------------

    def body_of(self, name: str) -> bytes | None:
        """The bytes served for ``name`` (after any corruption), or None if absent."""
        with self._lock:
            if name in self._cache:
                return self._cache[name]
        path = self.directory / name
        if name in self.missing or "/" in name or not path.is_file():
            return None
        data = path.read_bytes()
        if name in self.garbage:
            data = b"<html><body>Please sign in to the network</body></html>\n" * 4
        elif name in self.corrupt:
            content = bytearray(gzip.decompress(data))
            content[len(content) // 2] ^= 0xFF
            data = gzip.compress(bytes(content), compresslevel=1, mtime=0)
        with self._lock:
            self._cache[name] = data
        return data

    def _take_drop(self, name: str) -> int | None:
        with self._lock:
            if name not in self.drop_after:
                return None
            return self.drop_after[name] if self.drop_always else self.drop_after.pop(name)


class _Handler(BaseHTTPRequestHandler):
    mirror: MirrorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        name = path.lstrip("/")
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        body = self.mirror.body_of(name)

        def record(status: int, sent: int) -> None:
            self.mirror._record(RecordedRequest(self.command, path, range_header, if_range, status, sent))

        if body is None:
            message = b"not found\n"
            record(404, len(message) if send_body else 0)
            self._head(404, len(message), {"Content-Type": "text/plain"})
            if send_body:
                self.wfile.write(message)
            return

        size = len(body)
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        last_modified = formatdate((self.mirror.directory / name).stat().st_mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}

        status, start, end = 200, 0, size
        use_range = range_header and self.mirror.honor_range and if_range in (None, etag, last_modified)
        match = _RANGE.fullmatch(range_header.strip()) if use_range else None
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start, end = int(first), size if not last else min(int(last) + 1, size)
            else:  # suffix range: the last N bytes
                start, end = max(size - int(last), 0), size
            if start >= size:
                record(416, 0)
                self._head(416, 0, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"

        payload = body[start:end]
        drop = self.mirror._take_drop(name) if send_body else None
        sent = len(payload) if drop is None else min(drop, len(payload))
        record(status, sent if send_body else 0)
        self._head(status, len(payload), headers)
        if not send_body:
            return
        self.wfile.write(payload[:sent])
        if drop is not None:
            # Cut the connection mid-body, as a flaky network would.
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _head(self, status: int, length: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()


def closed_port_url() -> str:
    """An http:// URL on a loopback port nothing listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


if __name__ == "__main__":  # serve the MNIST folder by hand: python tests/mirror_server.py
    with MirrorServer() as server:
        print(f"serving {server.directory} at {server.url} (Ctrl-C to stop)")
        threading.Event().wait()

"""Real storage servers on loopback for the drive's tests: ``rclone serve s3`` and ``rclone serve webdav``."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from pathlib import Path

from drivelab.drive import find_rclone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RcloneServer:
    """``rclone serve KIND`` over ``backing`` (a local folder) on a free loopback port."""

    def __init__(self, kind: str, backing: Path, *args: str) -> None:
        self.kind = kind
        self.backing = backing
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = backing.parent / f"serve-{kind}-{self.port}.log"

    def start(self) -> RcloneServer:
        self.backing.mkdir(parents=True, exist_ok=True)
        rclone = find_rclone()
        argv = [str(rclone.path), "serve", self.kind, str(self.backing), "--addr", f"127.0.0.1:{self.port}", *self.args]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rclone serve {self.kind} exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"rclone serve {self.kind} did not start: {self.log.read_text()}")

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Stop serving, as an outage would: the port refuses connections until :meth:`restart`."""
        self.close()

    def restart(self) -> RcloneServer:
        """Serve the same folder again on the same port, with the same credentials."""
        return self.start()


class S3Server(RcloneServer):
    """An S3 endpoint whose buckets are the folders of ``backing``."""

    def __init__(self, backing: Path, *, listing_cache: str = "500ms") -> None:
        # rclone's S3 server wants keys of a realistic length.
        self.access_key = "DRIVELAB" + secrets.token_hex(6).upper()
        self.secret_key = secrets.token_urlsafe(30)
        # The server caches listings of its backing folder: tests also write there directly, so
        # they keep it short; a benchmark, which fills the folder first, keeps rclone's default.
        super().__init__("s3", backing, "--auth-key", f"{self.access_key},{self.secret_key}", "--etag-hash", "MD5", "--dir-cache-time", listing_cache)

    def options(self) -> dict[str, str]:
        return {"endpoint": self.url, "access_key_id": self.access_key, "secret_access_key": self.secret_key, "provider": "Rclone"}


class WebdavServer(RcloneServer):
    def __init__(self, backing: Path) -> None:
        self.user = "drivelab"
        self.password = secrets.token_urlsafe(16)
        super().__init__("webdav", backing, "--user", self.user, "--pass", self.password, "--dir-cache-time", "500ms")


class LatencyProxy:
    """A loopback TCP proxy that delays every request byte by ``latency`` seconds.

    Loopback has no round-trip time; a cloud drive has tens of milliseconds.
    Requests are forwarded in order, each chunk ``latency`` after it arrived,
    so throughput is not capped, only every round trip made longer.
    """

    def __init__(self, upstream_port: int, latency: float) -> None:
        import asyncio
        import threading

        self.latency = latency
        self.upstream_port = upstream_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        import asyncio

        asyncio.set_event_loop(self._loop)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
            queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

            async def pump() -> None:
                while True:
                    at, data = await queue.get()
                    if not data:
                        break
                    wait = at + delay - self._loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    writer.write(data)
                    await writer.drain()
                writer.close()

            task = asyncio.ensure_future(pump())
            try:
                while data := await reader.read(1 << 16):
                    await queue.put((self._loop.time(), data))
            except (ConnectionError, OSError):
                pass
            await queue.put((0.0, b""))
            try:
                await task
            except (ConnectionError, OSError):
                pass

        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(pipe(client_r, up_w, self.latency), pipe(up_r, client_w, 0.0))

        async def serve() -> None:
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            self._ready.set()
            async with server:
                await server.serve_forever()

        try:
            self._loop.run_until_complete(serve())
        except RuntimeError:
            pass

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


class SftpServer(RcloneServer):
    def __init__(self, backing: Path) -> None:
        self.user = "drivelab"
        self.password = secrets.token_urlsafe(16)
        super().__init__("sftp", backing, "--user", self.user, "--pass", self.password)

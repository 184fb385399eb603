"""Shared fixtures: loopback MNIST mirrors and an S3 server (no test ever reaches the internet)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# So `import mirror_server` works under any pytest import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mirror_server import DEFAULT_DIRECTORY, MNIST_FILES, MirrorServer  # noqa: E402
from rclone_servers import S3Server  # noqa: E402


def _require_mnist_files() -> None:
    """Fail (never skip) when the repository's MNIST files are not there."""
    missing = [name for name in MNIST_FILES if not (DEFAULT_DIRECTORY / name).is_file()]
    if missing:
        pytest.fail(f"MNIST test files missing from {DEFAULT_DIRECTORY}: {', '.join(missing)} "
                    "(the repository carries them: restore them with `git checkout -- tests/data/mnist`)")


@pytest.fixture(scope="session")
def mnist_mirror() -> Iterator[MirrorServer]:
    """A well-behaved loopback mirror serving the real MNIST .gz files at ``.url``.

    Shared by the whole session: do not reconfigure it, and do not count its
    requests (other tests use it too); use ``make_mirror`` for that.
    """
    _require_mnist_files()
    with MirrorServer() as server:
        yield server


@pytest.fixture
def make_mirror() -> Iterator[Callable[..., MirrorServer]]:
    """Factory: ``make_mirror(corrupt=..., missing=..., drop_after=...)`` -> a started
    :class:`MirrorServer` of this test alone, closed when the test ends."""
    _require_mnist_files()
    servers: list[MirrorServer] = []

    def make(**options: object) -> MirrorServer:
        server = MirrorServer(**options).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A loopback S3 endpoint (``rclone serve s3``) shared by one test module; each test uses its own bucket."""
    server = S3Server(tmp_path_factory.mktemp("s3") / "data").start()
    yield server
    server.close()

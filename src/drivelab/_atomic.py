"""Publish files only when complete: write ``name.incomplete``, fsync, rename.

A reader of the final name sees either nothing, the old file, or the whole new
file -- never a partial one, even if the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

INCOMPLETE_SUFFIX = ".incomplete"


def incomplete_path(path: Path) -> Path:
    """The temporary name a file is written under before it is published."""
    return path.with_name(path.name + INCOMPLETE_SUFFIX)


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and atomically rename it to ``final``."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", *, private: bool = False) -> Iterator[BinaryIO]:
    """Write ``path`` atomically; on any exception the final name is untouched.

    ``private``: the file is created readable by its owner only (0600), from
    its first byte (credentials, rc passwords).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = incomplete_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
        if private:
            os.fchmod(fd, 0o600)  # an earlier leftover of the temporary name keeps its own mode otherwise
        with open(fd, mode) as fh:
            yield fh  # type: ignore[misc]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: Path, data: bytes, *, private: bool = False) -> None:
    with atomic_write(path, private=private) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str, *, private: bool = False) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), private=private)


@contextlib.contextmanager
def made_folder(path: Path) -> Iterator[Path]:
    """``path`` made, with its missing parents, for the block; when the block raises, the folders
    made here are removed again where they are still empty: a failure leaves no empty folder behind
    (what the block put in them, a partial download kept to resume, stays)."""
    made: list[Path] = []
    folder = path
    while not folder.exists() and folder.parent != folder:
        made.append(folder)
        folder = folder.parent
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in made:  # the deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise

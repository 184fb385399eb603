"""Colab's ``drive.mount('/content/drive')`` on a drivelab workspace.

Colab mounts Google Drive at ``<mountpoint>/MyDrive``. Here the workspace's
drive is attached (``drivelab.drive.mount``) and ``<mountpoint>/MyDrive`` is
made a symbolic link to the workspace's ``drive/`` folder, so every
``/content/drive/MyDrive/...`` path reaches the drive. ``/content`` is created
when the user may create it; otherwise :class:`LabError` says how to allow it.

``$DRIVELAB_COLAB_CONTENT``, read at each call, puts Colab's ``/content``
elsewhere: with it set to ``/tmp/c``, ``mount('/content/drive')`` makes
``/tmp/c/drive/MyDrive``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivelab.errors import DrivelabError, LabError
from drivelab.workspace import Workspace, find_workspace

__all__ = ["ColabMount", "colab_mount", "colab_flush_and_unmount", "colab_content", "hints_shown", "MY_DRIVE", "CONTENT_ENV"]

MY_DRIVE = "MyDrive"
COLAB_CONTENT = Path("/content")
CONTENT_ENV = "DRIVELAB_COLAB_CONTENT"
"""The folder that stands for Colab's ``/content`` (default: ``/content`` itself)."""

# Links made by this process, removed again by colab_flush_and_unmount().
_links: dict[Path, Path] = {}


@dataclass(frozen=True)
class ColabMount:
    mountpoint: Path
    """The folder given to ``mount`` (absolute, ``/content`` put where :func:`colab_content` says), e.g. ``/content/drive``."""
    link: Path
    """``<mountpoint>/MyDrive``, a symbolic link to :attr:`target`."""
    target: Path
    """The workspace's ``drive/`` folder."""
    already: bool
    """It was mounted there already (nothing changed)."""
    drive: Any = field(repr=False, default=None)
    """The :class:`drivelab.drive.DriveState` after attaching."""


def colab_content() -> Path:
    """Where Colab's ``/content`` is: ``$DRIVELAB_COLAB_CONTENT`` (absolute; read on each call), else ``/content``."""
    value = os.environ.get(CONTENT_ENV, "")
    return Path(os.path.abspath(os.path.expanduser(value))) if value else COLAB_CONTENT


def _absolute(mountpoint: str | os.PathLike[str]) -> Path:
    where = Path(os.path.abspath(os.path.expanduser(os.fspath(mountpoint))))
    if where == COLAB_CONTENT or COLAB_CONTENT in where.parents:
        return colab_content() / where.relative_to(COLAB_CONTENT)
    return where


@contextlib.contextmanager
def hints_shown() -> Iterator[None]:
    """Raise a :class:`DrivelabError` again with its hint in its message (``"...\\nhint: ..."``):
    a notebook shows an exception's message, never its ``hint``."""
    try:
        yield
    except DrivelabError as exc:
        if not exc.hint:
            raise
        shown = type(exc).__new__(type(exc))  # the same class, whatever its constructor takes
        shown.__dict__.update(exc.__dict__)
        shown.message = f"{exc.message}\nhint: {exc.hint}"
        shown.args = (shown.message,)
        raise shown from None


def _permission_error(path: Path, exc: OSError) -> LabError:
    return LabError(
        f"cannot create {path}: {exc.strerror or exc}",
        hint=(
            f"allow it once with `sudo mkdir -p {path} && sudo chown \"$USER\" {path}`, "
            f"or set {CONTENT_ENV} to a folder you own (it then stands for /content), "
            "or mount at a folder you own, e.g. drive.mount('/tmp/content/drive') "
            "(the workspace's drive/ folder works directly too)"
        ),
    )


def colab_mount(
    mountpoint: str | os.PathLike[str],
    *,
    force_remount: bool = False,
    timeout: float = 120.0,
    readonly: bool = False,
    workspace: Workspace | None = None,
) -> ColabMount:
    """Attach the workspace's drive and make ``<mountpoint>/MyDrive`` lead to it.

    The workspace is ``workspace``, else the one named by
    ``$DRIVELAB_WORKSPACE`` or holding the working folder. ``mountpoint`` must
    be outside the drive and hold nothing but a previous ``MyDrive`` link; one
    under ``/content`` is under :func:`colab_content` instead.
    """
    from drivelab import drive

    ws = workspace or find_workspace()
    target = ws.drive.resolve()
    where = _absolute(mountpoint)
    resolved = where.resolve()
    if resolved == target or target in resolved.parents:
        raise LabError(
            f"cannot mount at {where}: it is inside the workspace's drive ({target})",
            hint="mount at a folder outside it, as on Colab: drive.mount('/content/drive')",
        )
    try:
        where.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise _permission_error(where, exc) from exc
    except (FileExistsError, NotADirectoryError) as exc:
        raise LabError(f"cannot mount at {where}: it is not a folder", hint="choose another mountpoint") from exc
    except OSError as exc:
        raise LabError(f"cannot create {where}: {exc.strerror or exc}", hint="choose another mountpoint") from exc

    link = where / MY_DRIVE
    others = sorted(p.name for p in where.iterdir() if p.name != MY_DRIVE)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise LabError(
            f"mountpoint {where} must not already contain files (it holds {shown})",
            hint="mount at an empty folder, or move those files away",
        )
    if os.path.lexists(link):
        if not link.is_symlink():
            raise LabError(f"{link} is in the way: it is not a link drivelab made", hint="move it away, then mount again")
    already = link.is_symlink() and link.resolve() == target and not force_remount

    state = drive.mount(str(ws.drive), force_remount=force_remount, timeout=timeout, readonly=readonly)
    if not already:
        staging = where / f".{MY_DRIVE}.{os.getpid()}"
        try:
            if os.path.lexists(staging):
                staging.unlink()
            os.symlink(target, staging, target_is_directory=True)
            os.replace(staging, link)  # atomic: a previous link is swapped, never missing
        except PermissionError as exc:
            raise _permission_error(where, exc) from exc
    _links[link] = target
    return ColabMount(mountpoint=where, link=link, target=target, already=already, drive=state)


def colab_flush_and_unmount(timeout: float = 24 * 60 * 60.0) -> Any:
    """Flush the drive (wait for every pending upload), detach it, and remove the
    ``MyDrive`` links this process made; returns the drive's ``FlushResult``."""
    from drivelab import drive

    result = drive.flush_and_unmount(timeout=timeout)
    for link, target in list(_links.items()):
        try:
            if link.is_symlink() and link.resolve() == target:
                link.unlink()
        except OSError:
            pass  # someone else's now; leave it
        _links.pop(link, None)
    return result

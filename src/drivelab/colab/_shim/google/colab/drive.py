"""``google.colab.drive`` on a drivelab workspace: ``mount`` and ``flush_and_unmount``.

``drive.mount('/content/drive')`` attaches the workspace's drive and makes
``/content/drive/MyDrive`` lead to its ``drive/`` folder; the signatures and
messages are Colab's. ``$DRIVELAB_COLAB_CONTENT`` names a folder to stand for
``/content`` (see :func:`drivelab.colab.colab_content`). An error's message
ends with its hint, since a notebook shows nothing else of it.

When the drive is the workspace's local folder (no cloud drive connected),
the first mount also says how to connect one: a link to the lab's "Connect a
drive" page in the lab, a line naming ``drivelab drive connect`` elsewhere.
"""

import sys as _sys

from drivelab.colab._calls import (
    CONNECT_COMMAND,
    colab_flush_and_unmount,
    colab_mount,
    connect_html,
    hints_shown,
    in_kernel,
    lab_base_url,
)

__all__ = ["flush_and_unmount", "mount"]


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    """Mount the workspace's drive at ``mountpoint`` (its ``MyDrive`` is the drive)."""
    with hints_shown():
        done = colab_mount(mountpoint, force_remount=force_remount, timeout=timeout_ms / 1000, readonly=readonly)
    for note in done.notes if done.already else ():
        print(note, file=_sys.stderr)
    if done.already:
        print(
            f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, "
            f'call drive.mount("{mountpoint}", force_remount=True).'
        )
        return
    print(f"Mounted at {mountpoint}")
    for note in done.notes:
        print(note, file=_sys.stderr)
    if getattr(done.drive, "mode", None) == "local":
        _suggest_connecting()


def _suggest_connecting():
    hint = f"The drive is this machine's folder drive/, not Google Drive; to put it on Google Drive, run `{CONNECT_COMMAND}` in a terminal."
    base = lab_base_url()
    if base is not None or in_kernel():
        # A rich output: the notebook shows it, its text stream keeps Colab's own lines.
        from IPython.display import display

        display({"text/html": connect_html(base), "text/plain": hint} if base is not None else {"text/markdown": hint}, raw=True)
    else:
        print(hint, file=_sys.stderr)


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
    """Wait until every write has reached the drive, then unmount it.

    Colab's closing line is printed only when every write landed; otherwise a
    warning says how many uploads are pending and where they are kept (they
    upload at the next mount).
    """
    with hints_shown():
        result = colab_flush_and_unmount(timeout=timeout_ms / 1000)
    pending = getattr(result, "pending", 0) or 0
    if getattr(result, "forced", False) or pending:
        import warnings

        where = getattr(result, "cache", None) or "the workspace's .drivelab/drive/cache"
        warnings.warn(
            f"Drive unmounted with {pending} upload(s) pending: they did not reach the drive yet. "
            f"They are kept in {where} and upload at the next drive.mount() (or `drivelab drive mount`).",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    print("All changes made in this colab session should now be visible in Drive.")

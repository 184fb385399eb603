"""``google.colab.drive`` on a drivelab workspace: ``mount`` and ``flush_and_unmount``.

``drive.mount('/content/drive')`` attaches the workspace's drive and makes
``/content/drive/MyDrive`` lead to its ``drive/`` folder; the signatures and
messages are Colab's. ``$DRIVELAB_COLAB_CONTENT`` names a folder to stand for
``/content`` (see :func:`drivelab.lab.colab_content`). An error's message
ends with its hint, since a notebook shows nothing else of it.
"""

from drivelab.lab._colab import colab_flush_and_unmount, colab_mount, hints_shown

__all__ = ["mount", "flush_and_unmount"]


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    """Mount the workspace's drive at ``mountpoint`` (its ``MyDrive`` is the drive)."""
    with hints_shown():
        done = colab_mount(mountpoint, force_remount=force_remount, timeout=timeout_ms / 1000, readonly=readonly)
    if done.already:
        print(
            f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, "
            f'call drive.mount("{mountpoint}", force_remount=True).'
        )
    else:
        print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
    """Wait until every write has reached the drive, then unmount it."""
    with hints_shown():
        colab_flush_and_unmount(timeout=timeout_ms / 1000)
    print("All changes made in this colab session should now be visible in Drive.")

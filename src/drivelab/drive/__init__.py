"""The drive: the workspace's ``drive/`` folder, local or any rclone remote.

::

    from drivelab import drive

    drive.connect(ws, "box", "s3", {"endpoint": ..., "access_key_id": ..., "secret_access_key": ...}, root="bucket")
    state = drive.attach(ws, "box")     # mount it at drive/ (sync mode without FUSE); returns when live
    result = drive.flush(ws)            # returns once every pending upload has landed
    drive.detach(ws)                    # flush, then unmount (left attached while another command uses it)
    drive.status(ws).to_dict()          # mode, live, pending uploads, cache, last watchdog event

    drive.mount("drive")                # Colab-style, for notebooks
    drive.flush_and_unmount()

With no remote configured the drive is the plain local folder ``drive/``:
``attach`` only makes sure its folders exist and ``flush`` has nothing to wait
for. The engine is rclone (:func:`find_rclone`); a watchdog process keeps a
remote drive mounted and remounts it when it dies. A command that uses the
drive for its whole life (the lab, a job) attaches it with ``user=``; ``detach``
by one of them leaves the drive attached while another still uses it
(:func:`users`). Nothing here prints.

Attached per machine: the watchdog, rclone, the users' leases and the
recorded state are this host's (:class:`DrivePaths`), and the VFS cache lies
on its own disk, so nodes sharing a workspace on NFS each keep their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivelab._lazy import lazy_exports
from drivelab.errors import DriveError, DriveInUseError, DriveOptionError, FlushError, MountError, RcloneError, RemoteError, SignInError

_EXPORTS = {
    "_attach": ["attach"],
    "_config": ["DrivePaths", "CACHE_DIR_ENV"],
    "_detach": ["detach"],
    "_flush": ["flush"],
    "_host": ["fuse_available", "NO_FUSE_ENV"],
    "_results": ["FlushResult", "DetachResult"],
    "_status": ["DriveState", "status", "is_attached", "remote_spec", "cached_copy"],
    "_landed": ["write_when_landed"],
    "_users": ["users", "release"],
    "_notebook": ["mount", "flush_and_unmount"],
    "_copy": ["FolderListing", "has_remote", "list_folder", "copy_folder"],
    "_rclone": ["Rclone", "find_rclone", "MIN_VERSION"],
    "_remotes": ["REMOTE_TYPES", "TYPE_NAMES", "RemoteInfo", "check_remote_type", "connect", "import_remote", "list_remotes", "remove_remote"],
    "_oauth": ["OAUTH_TYPES", "SignIn", "begin_sign_in", "finish_sign_in"],
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS)
__all__ = [*_names, "DriveError", "DriveInUseError", "DriveOptionError", "FlushError", "MountError", "RcloneError", "RemoteError", "SignInError"]

if TYPE_CHECKING:
    from drivelab.drive._attach import attach
    from drivelab.drive._config import CACHE_DIR_ENV, DrivePaths
    from drivelab.drive._notebook import flush_and_unmount, mount
    from drivelab.drive._copy import FolderListing, copy_folder, has_remote, list_folder
    from drivelab.drive._detach import detach
    from drivelab.drive._flush import flush
    from drivelab.drive._host import NO_FUSE_ENV, fuse_available
    from drivelab.drive._oauth import OAUTH_TYPES, SignIn, begin_sign_in, finish_sign_in
    from drivelab.drive._rclone import MIN_VERSION, Rclone, find_rclone
    from drivelab.drive._remotes import REMOTE_TYPES, TYPE_NAMES, RemoteInfo, check_remote_type, connect, import_remote, list_remotes, remove_remote
    from drivelab.drive._results import DetachResult, FlushResult
    from drivelab.drive._landed import write_when_landed
    from drivelab.drive._status import DriveState, cached_copy, is_attached, remote_spec, status
    from drivelab.drive._users import release, users

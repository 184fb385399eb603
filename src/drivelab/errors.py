"""The one error tree of drivelab.

Every failure a user can cause is raised as a subclass of :class:`DrivelabError`
carrying what failed, the values involved, and a ``hint`` saying what to do.
Foreign errors (HTTP, OS, torch) are translated at the boundary with
``raise ... from exc``; only the CLI's top level turns these into exit codes:
2 for a usage error (a name or option value the user got wrong, as click's own
usage errors), 1 for the rest.

    DrivelabError
    ├── WorkspaceError          no workspace, or a path that cannot be one
    ├── DriveError              the drive could not be connected, attached, flushed or detached
    │   ├── RcloneError         no usable rclone, or rclone failed in a way not listed below
    │   ├── RemoteError         an unknown remote, bad options, or a remote that refused us
    │   │   └── SignInError     signing in to an OAuth drive failed (denied, expired code, wrong address pasted)
    │   ├── MountError          the drive could not be attached at drive/ (mount point, FUSE)
    │   ├── FlushError          pending uploads did not land in time
    │   ├── DriveInUseError     not detached: another command (the lab, a job) uses the drive
    │   └── DriveOptionError    an unknown remote type, drive mode or cache mode (a usage error, exit code 2)
    ├── DataError
    │   ├── UnknownDatasetError  a dataset name drivelab does not know (a usage error, exit code 2)
    │   ├── ChecksumError       a downloaded file does not match its MD5
    │   ├── DownloadError       every mirror failed (lists each attempt)
    │   ├── MirrorError         a mirror that is not a usable URL (a usage error, exit code 2)
    │   └── StageError          a dataset could not be staged to local scratch
    ├── TrainError
    │   ├── RecipeError         unknown recipe or bad training option
    │   │   └── TrainOptionError  a training option with a value it cannot take (a usage error, exit code 2)
    │   ├── CheckpointError     a checkpoint that cannot be read or written
    │   │   └── RunSettingsError  a rerun with other settings than the run it resumes (a usage error, exit code 2)
    │   └── DiskFullError       a file of the run cannot be written: no space left (exit code 74, never restarted)
    ├── SetupError              the PyTorch runtime could not be planned, installed or verified
    │   ├── PlanError           no PyTorch build fits, or an override that cannot work
    │   │   └── UnknownBackendError  a PyTorch build name (--backend, $DRIVELAB_TORCH_BACKEND) it does not know (a usage error, exit code 2)
    │   ├── InstallError        the installer (pip or uv) failed
    │   └── TorchMissingError   PyTorch is not installed, and something needs it
    ├── JobError                a script run as a job failed, or cannot be run
    │   ├── JobFailedError      it kept failing and was not restarted again (the summary says how)
    │   │   └── JobUsageError   it exited with code 2 (its command line is wrong) and was not restarted
    │   ├── NotebookParameterError  a -p NAME VALUE the notebook's forms cannot take (a usage error, exit code 2)
    │   ├── JobNotFoundError    no job of that name in the workspace
    │   ├── JobRunningError     a job of that name is already running
    │   └── SlurmError          no Slurm client here, sbatch refused the job, or the job failed on a node
    └── LabError                the lab could not start or stop cleanly
        └── ColabError          a Colab call cannot be served here, or /content cannot be made
            └── SecretError     a workspace secret that cannot be stored, found or read
                ├── SecretNameError      not a usable secret name (a usage error, exit code 2)
                └── SecretNotFoundError  no secret of that name in the workspace (a usage error, exit code 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NO_RETRY_EXIT_CODE = 74
"""The exit code of a failure that a restart cannot fix (a full disk): ``drivelab run`` does not restart it.

sysexits.h's ``EX_IOERR`` ("an error occurred while doing I/O on some file"); exit code 2 (a usage error)
is the other code never restarted."""

__all__ = [
    "NO_RETRY_EXIT_CODE",
    "DrivelabError",
    "WorkspaceError",
    "DriveError",
    "RcloneError",
    "RemoteError",
    "SignInError",
    "MountError",
    "FlushError",
    "DriveInUseError",
    "DriveOptionError",
    "DataError",
    "StageError",
    "UnknownDatasetError",
    "ChecksumError",
    "DownloadError",
    "MirrorError",
    "TrainError",
    "RecipeError",
    "TrainOptionError",
    "CheckpointError",
    "RunSettingsError",
    "DiskFullError",
    "JobError",
    "JobFailedError",
    "JobUsageError",
    "NotebookParameterError",
    "JobNotFoundError",
    "JobRunningError",
    "SlurmError",
    "SetupError",
    "PlanError",
    "UnknownBackendError",
    "InstallError",
    "TorchMissingError",
    "LabError",
    "ColabError",
    "SecretError",
    "SecretNameError",
    "SecretNotFoundError",
]


class DrivelabError(Exception):
    """Base of every error drivelab raises on purpose.

    ``message`` says what failed; ``hint`` says what the user can do about it.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class WorkspaceError(DrivelabError):
    """The directory is not a drivelab workspace, or cannot become one."""


class DriveError(DrivelabError):
    """The drive could not be connected, attached, flushed or detached."""


class RcloneError(DriveError):
    """No usable rclone was found, or rclone failed; the message names its log."""


class RemoteError(DriveError):
    """An unknown remote, options rclone rejects, or a remote that refused the credentials."""


class SignInError(RemoteError):
    """Signing in to an OAuth drive failed: consent denied, a code expired or used, another sign-in's address, no token.

    Nothing is kept when it is raised; the hint says how to start again.
    """


class MountError(DriveError):
    """The drive could not be attached at ``drive/`` (mount point, FUSE, rclone)."""


class FlushError(DriveError):
    """Pending uploads did not land before the timeout; nothing was discarded.

    ``pending`` counts the uploads that had not landed (None when unknown);
    ``remote_silent`` is True when rclone was live but the remote took none
    of them (unreachable or not answering): they land once it answers.
    """

    def __init__(self, message: str, *, hint: str | None = None, pending: int | None = None, remote_silent: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.pending = pending
        self.remote_silent = remote_silent


class DriveInUseError(DriveError):
    """The drive was not detached: other commands (``drivelab lab``, a job) use it; ``users`` names them."""

    def __init__(self, message: str, *, users: list[dict[str, Any]], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.users = users


class DriveOptionError(DriveError):
    """An unknown remote type, drive mode, cache mode or choice for local files: a usage error, raised before anything is done."""

    exit_code = 2


class DataError(DrivelabError):
    """A dataset could not be fetched, verified or read."""


class UnknownDatasetError(DataError):
    """The dataset name is not one drivelab knows. A usage error."""

    exit_code = 2


class ChecksumError(DataError):
    """A file's content does not match the checksum it must have."""

    def __init__(self, path: str, expected: str, actual: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{path}: MD5 {actual} does not match the expected {expected}",
            hint=hint,
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class DownloadError(DataError):
    """Every source for a file failed; ``attempts`` holds ``(source, reason)`` pairs."""

    def __init__(self, filename: str, attempts: list[tuple[str, str]], *, hint: str | None = None) -> None:
        lines = "\n".join(f"  - {source}: {reason}" for source, reason in attempts)
        super().__init__(
            f"could not download {filename}; every mirror failed:\n{lines}",
            hint=hint,
        )
        self.filename = filename
        self.attempts = attempts


class MirrorError(DataError):
    """A mirror that cannot be used as one (not an http(s):// or file:// URL, or a malformed one).

    A usage error: raised before anything is fetched, whether or not anything needs fetching.
    """

    exit_code = 2


class StageError(DataError):
    """A dataset folder could not be copied to local scratch and verified."""


class TrainError(DrivelabError):
    """Training could not start or continue."""


class RecipeError(TrainError):
    """An unknown recipe, or an option the recipe cannot take."""


class TrainOptionError(RecipeError):
    """A training option with a value it cannot take; raised before anything is created.

    ``option`` names it as the training script spells it (``--lr``), ``value``
    is what was given and ``allowed`` says what it may be. A usage error.
    """

    exit_code = 2

    def __init__(self, option: str, value: object, allowed: str, *, hint: str | None = None) -> None:
        super().__init__(f"{option} {value!r} is not allowed: it must be {allowed}", hint=hint)
        self.option = option
        self.value = value
        self.allowed = allowed


class CheckpointError(TrainError):
    """A checkpoint could not be written or read."""


class RunSettingsError(CheckpointError):
    """The run folder holds a run with other settings than those asked: it cannot be resumed with them.

    ``differing`` maps each setting that differs to ``(held, asked)``. A usage error (exit code 2): the
    command line must change (the same settings, or another run name), so ``drivelab run`` never restarts it.
    """

    exit_code = 2

    def __init__(self, message: str, *, differing: dict[str, tuple[Any, Any]], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.differing = differing


class DiskFullError(TrainError):
    """A file of a run (checkpoint, metrics, curves, final weights) cannot be written: its disk or quota is full.

    ``path`` is the file, ``free`` the bytes left where it goes (``None`` if unknown). Nothing half-written
    is left behind. Exit code :data:`NO_RETRY_EXIT_CODE`: a restart would fail the same way, so ``drivelab
    run`` does not restart it.
    """

    exit_code = NO_RETRY_EXIT_CODE

    def __init__(self, path: Path, free: int | None, *, hint: str | None = None) -> None:
        from drivelab._units import format_bytes

        left = f"{format_bytes(free)} free" if free is not None else "free space unknown"
        super().__init__(f"cannot write {path}: no space left on device ({left})", hint=hint)
        self.path = path
        self.free = free


class JobError(DrivelabError):
    """A script run as a job exited with an error."""


class JobFailedError(JobError):
    """A job failed and will not be restarted: it ran out of restarts without progress."""


class JobUsageError(JobFailedError):
    """A job exited with code 2, a usage error (its command line is wrong): it was not restarted."""


class NotebookParameterError(JobError):
    """A notebook parameter (``-p NAME VALUE``) that the notebook's Colab forms cannot take.

    A value its form field does not allow, or a name that is none of its form
    fields (in a notebook with forms and no ``parameters`` cell). A usage
    error, raised before anything starts. ``parameter`` names it, ``value`` is
    what was given (``None`` for an unknown name) and ``allowed`` says what
    it may be.
    """

    exit_code = 2

    def __init__(self, message: str, *, parameter: str, value: str | None = None, allowed: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.parameter = parameter
        self.value = value
        self.allowed = allowed


class JobNotFoundError(JobError):
    """No job (run folder with a ``status.json``) of that name."""


class JobRunningError(JobError):
    """A job of that name is already running."""


class SlurmError(JobError):
    """A job handed to Slurm: no Slurm client on this machine, ``sbatch`` refused it, or it failed on a node.

    The message carries Slurm's own words (its refusal, the node, the end of the job's output); the hint says what to do.
    """


class SetupError(DrivelabError):
    """The PyTorch runtime could not be planned, installed or verified."""


class PlanError(SetupError):
    """No PyTorch build fits this machine, or an override asks for one that cannot work."""


class UnknownBackendError(PlanError):
    """A PyTorch build name (``--backend``, ``$DRIVELAB_TORCH_BACKEND``, ``--torch``'s local part) drivelab does not know. A usage error."""

    exit_code = 2


class InstallError(SetupError):
    """The installer (pip or uv) failed; the message names its log."""


class TorchMissingError(SetupError):
    """PyTorch is not installed in this Python environment, and what was asked needs it.

    ``python`` is the interpreter without torch; ``needed_for`` says what needed it.
    The hint always names ``drivelab setup torch``.
    """

    def __init__(self, python: str, *, needed_for: str | None = None) -> None:
        why = f": {needed_for} needs it" if needed_for else ""
        super().__init__(
            f"PyTorch is not installed for {python}{why}",
            hint="run `drivelab setup torch` to install the PyTorch build that fits this machine "
            "(or install drivelab with its torch extra, for pip's default build)",
        )
        self.python = python
        self.needed_for = needed_for


class LabError(DrivelabError):
    """JupyterLab could not start or stop cleanly, or a Colab call (``drive.mount``) cannot be served."""


class ColabError(LabError):
    """A Colab call (``drive.mount``, ``files.upload``, ...) cannot be served here, or ``/content`` cannot be made."""


class SecretError(ColabError):
    """A workspace secret (``drivelab secrets``, Colab's ``userdata``) cannot be stored, found or read.

    Its message never holds a secret's value: names, paths and variable names only.
    """


class SecretNameError(SecretError):
    """A name that cannot name a secret (or an environment variable to read one from). A usage error."""

    exit_code = 2


class SecretNotFoundError(SecretError):
    """No secret of that name in the workspace. A usage error."""

    exit_code = 2

"""What the lab's panels do through its API: mount, flush and unmount the drive, set and remove
secrets, start, follow and stop jobs.

Each function blocks (the extension's handlers run it off the event loop), returns the JSON
document it answers with (the shape of the matching command's ``--json`` output) and raises
:class:`DrivelabError`; :func:`http_status` says which status an error answers with. A secret's
value is never in a document, an error's message or a log line; a request's body is never quoted.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from drivelab import colab, drive, jobs
from drivelab.errors import (
    DriveInUseError,
    DrivelabError,
    JobError,
    JobNotFoundError,
    JobRunningError,
    LabError,
    SecretError,
    SecretNotFoundError,
    WorkspaceError,
)
from drivelab.lab._documents import DOCUMENT_VERSION, drive_document
from drivelab.workspace import Workspace

UNMOUNT_TIMEOUT = 60.0
"""Seconds an unmount from the lab may take: uploads not landed by then stay in the cache (``forced``, ``pending``)."""
SCRIPT_SUFFIXES = (".py", ".ipynb")
_ATTACHING = threading.Lock()
"""One mount or unmount at a time (two panels, two clicks): never a watchdog started while another is stopped."""


class RequestError(LabError):
    """A request the lab's API does not take; ``status`` is its answer's (400 bad input, 404 no such thing)."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status

    @classmethod
    def of(cls, status: int, exc: DrivelabError) -> RequestError:
        """``exc``'s words, answered with ``status``."""
        return cls(status, exc.message, hint=exc.hint)


def http_status(exc: DrivelabError) -> int:
    """The status an error answers with: 400 bad input, 404 nothing of that name (no workspace, run or
    secret), 409 in use (the drive by another command, the run name by a running job), 500 the rest."""
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, (WorkspaceError, JobNotFoundError, SecretNotFoundError)):
        return 404
    if isinstance(exc, (DriveInUseError, JobRunningError)):
        return 409
    return 500


def _json_object(body: bytes, example: str) -> dict[str, Any]:
    """The request's body, a JSON object; :class:`RequestError` (400) otherwise."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RequestError(400, "the request's body is not a JSON object", hint=f"send one, e.g. {example}")
    return data


# --- the drive --------------------------------------------------------------------------------------


def mount_drive(ws: Workspace) -> dict[str, Any]:
    """Attach the workspace's drive for the lab (``drive.attach(ws, user="lab")``); the drive's document once it is live."""
    with _ATTACHING:
        drive.attach(ws, user="lab")
    return drive_document(ws)


def flush_drive(ws: Workspace) -> dict[str, Any]:
    """What ``drivelab drive flush --json`` prints, once every pending upload has landed."""
    return {"kind": "drive.flush", "version": DOCUMENT_VERSION, **drive.flush(ws).to_dict()}


def unmount_drive(ws: Workspace) -> dict[str, Any]:
    """Flush, then unmount the drive for the lab: what ``drivelab drive unmount --json`` prints.

    The ``drivelab lab`` that started this server (its parent, registered as ``lab``) and this
    server do not count as commands using the drive (their leases stay: stopping the lab then finds
    the drive detached); any other one, a job, does: :class:`DriveInUseError` names it. Returns
    within :data:`UNMOUNT_TIMEOUT`.
    """
    parent = os.getppid()
    with _ATTACHING:
        ours = {os.getpid(), *(parent for user in drive.users(ws) if user.get("pid") == parent and user.get("what") == "lab")}
        result = drive.detach(ws, timeout=UNMOUNT_TIMEOUT, when_used="refuse", on_behalf_of=ours)
    return {"kind": "drive.unmount", "version": DOCUMENT_VERSION, **result.to_dict()}


# --- secrets ----------------------------------------------------------------------------------------


def _secret_name(name: Any) -> str:
    try:
        return colab.check_secret_name(name)
    except SecretError as exc:
        raise RequestError.of(400, exc) from None


def set_secret(ws: Workspace, body: bytes) -> dict[str, Any]:
    """Store the secret the body names (``{"name": str, "value": str}``): ``{"kind": "secret", "version": 1, "name", "source", "env"}``."""
    data = _json_object(body, '{"name": "HF_TOKEN", "value": "..."}')
    name = _secret_name(data.get("name"))
    value = data.get("value")
    if not isinstance(value, str) or not value:
        raise RequestError(400, f"the secret {name} needs a value: text, not empty", hint='send {"name": "' + name + '", "value": "..."}')
    return {"kind": "secret", "version": DOCUMENT_VERSION, **colab.set_secret(ws, name, value).to_dict()}


def remove_secret(ws: Workspace, name: str) -> dict[str, Any]:
    """Forget secret ``name``: ``{"kind": "secret.removed", "version": 1, "name"}``; :class:`SecretNotFoundError` (404) for none of that name."""
    info = colab.remove_secret(ws, _secret_name(name))
    return {"kind": "secret.removed", "version": DOCUMENT_VERSION, "name": info.name}


# --- jobs -------------------------------------------------------------------------------------------


def _run_name(run: str, status: int) -> str:
    try:
        return jobs.check_run_name(run)
    except JobError as exc:
        raise RequestError.of(status, exc) from None


def _script(ws: Workspace, root: Path, path: Any) -> Path:
    """The file ``path`` (from the server's folder ``root``, as JupyterLab gives it) names: a .py or .ipynb file in the workspace."""
    hint = "give the path of a .py or .ipynb file of the workspace, as the file browser shows it (e.g. drive/colab/main.py)"
    if not isinstance(path, str) or not path:
        raise RequestError(400, "no file to run: the request has no path", hint=hint)
    try:
        script = (root / path).resolve()
        inside = script.is_relative_to(ws.root.resolve())
        found = inside and script.is_file()
    except (OSError, ValueError):
        raise RequestError(400, f"not a usable path: {path!r}", hint=hint) from None
    if not inside:
        raise RequestError(400, f"{path} is outside the workspace {ws.root}", hint=hint)
    if script.suffix not in SCRIPT_SUFFIXES:
        raise RequestError(400, f"{path} is neither a .py script nor a .ipynb notebook", hint=hint)
    if not found:
        raise RequestError(400, f"no such file: {path}", hint=hint)
    return script


def start_job(ws: Workspace, root: Path, body: bytes) -> dict[str, Any]:
    """Run the file the body names (``{"path": str, "run": optional str}``) as a job in the background: what
    ``drivelab run --detach --json PATH`` prints, ``{"kind": "run", "version": 1, **JobStatus.to_dict()}``."""
    data = _json_object(body, '{"path": "drive/colab/main.py"}')
    script = _script(ws, root, data.get("path"))
    run = data.get("run") or ""
    if not isinstance(run, str):
        raise RequestError(400, f"not a usable run name: {run!r}", hint="a run name is text: letters, digits, '.', '_' and '-'")
    if run:
        _run_name(run, 400)
    status = jobs.start_detached(ws, jobs.JobSpec(script=script, run=run))
    return {"kind": "run", "version": DOCUMENT_VERSION, **status.to_dict()}


def job_log(ws: Workspace, run: str, offset: str | None) -> dict[str, Any]:
    """The job's log from byte ``offset`` (see :func:`drivelab.jobs.read_log_part`; none: its end):
    ``{"kind": "jobs.log", "version": 1, "run", "offset", "text", "state", "active"}``, ``offset`` the one to ask from next."""
    _run_name(run, 404)
    start = None
    if offset is not None:
        try:
            start = int(offset)
        except ValueError:
            start = -1
        if start < 0:
            raise RequestError(400, f"not a byte offset: {offset!r}", hint="pass the offset the last answer gave, or none for the log's end")
    part = jobs.read_log_part(ws, run, start)
    return {
        "kind": "jobs.log", "version": DOCUMENT_VERSION, "run": run, "offset": part.offset, "text": part.text,
        "state": part.status.state, "active": part.status.active,
    }  # fmt: skip


def stop_job(ws: Workspace, run: str) -> dict[str, Any]:
    """Stop a running job, as ``drivelab jobs stop --json RUN``: its final status, ``{"kind": "jobs.stop", "version": 1, ...}``."""
    status = jobs.stop_job(ws, _run_name(run, 404))
    return {"kind": "jobs.stop", "version": DOCUMENT_VERSION, **status.to_dict()}

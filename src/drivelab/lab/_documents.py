"""The JSON documents the lab serves: the same shapes as the CLI's ``--json`` output."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from drivelab.workspace import Workspace

DOCUMENT_VERSION = 1


def runtime_document(workspace: Path | None = None) -> dict[str, Any]:
    """What ``drivelab runtime --json`` prints: ``{"kind": "runtime", "version": 1, ...}``.

    Schema: ``docs/runtime.schema.json``. Probes only; never imports torch.
    """
    from drivelab.runtime import detect_machine

    machine = detect_machine(workspace=workspace, scratch=Path(tempfile.gettempdir()))
    return {"kind": "runtime", "version": DOCUMENT_VERSION, **machine.to_dict()}


def status_document(ws: Workspace) -> dict[str, Any]:
    """What the lab's status bar shows: ``{"kind": "lab.status", "version": 1, "memory", "cpu", "disk", "gpus", "drive"}``.

    The disk is the one holding the workspace root (local state, never the drive's mount); the drive's
    part is :func:`drivelab.drive.status` cut to what the status bar shows.
    """
    from drivelab import drive
    from drivelab.runtime import resource_usage

    usage = resource_usage(ws.root)
    state = drive.status(ws)
    return {
        "kind": "lab.status",
        "version": DOCUMENT_VERSION,
        **usage.to_dict(),
        "drive": {
            "mode": state.mode,
            "phase": state.phase,
            "remote": state.remote,
            "pending_uploads": state.pending_uploads if state.live else None,
            "read_only": state.read_only,
        },
    }


def drive_document(ws: Workspace) -> dict[str, Any]:
    """The drive's state: ``{"kind": "drive", "version": 1, "workspace": ..., **DriveState.to_dict()}``."""
    from drivelab import drive

    state = drive.status(ws)
    return {"kind": "drive", "version": DOCUMENT_VERSION, "workspace": str(ws.root), **state.to_dict()}

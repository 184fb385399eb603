"""The JSON documents the lab serves: the same shapes as the CLI's ``--json`` output."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivelab import colab, drive, jobs, runtime
from drivelab.workspace import Workspace

if TYPE_CHECKING:
    from drivelab.runtime import MachineInfo

DOCUMENT_VERSION = 1
DOCTOR_TIMEOUT = 120.0
"""Seconds the doctor's check of PyTorch may take (a hung GPU), as ``drivelab doctor``'s default."""


def _machine(workspace: Path | None) -> MachineInfo:
    return runtime.detect_machine(workspace=workspace, scratch=Path(tempfile.gettempdir()))


def runtime_document(workspace: Path | None = None) -> dict[str, Any]:
    """What ``drivelab runtime --json`` prints: ``{"kind": "runtime", "version": 1, ...}``.

    Schema: ``docs/runtime.schema.json``. Probes only; never imports torch.
    """
    return {"kind": "runtime", "version": DOCUMENT_VERSION, **_machine(workspace).to_dict()}


def runtime_panel_document(workspace: Path | None = None) -> dict[str, Any]:
    """The rows ``drivelab runtime`` prints, for the lab's runtime panel:
    ``{"kind": "runtime.panel", "version": 1, "rows": [{"label", "value", "kind"}]}`` (kind: fact, device or problem)."""
    rows = runtime.info(workspace).rows
    return {"kind": "runtime.panel", "version": DOCUMENT_VERSION, "rows": [row._asdict() for row in rows]}


def doctor_document(workspace: Path | None = None) -> dict[str, Any]:
    """What ``drivelab doctor --json`` prints: ``{"kind": "doctor", "version": 1, "ok", "machine", "report"}``.

    PyTorch is checked in a fresh interpreter (this server's Python): seconds, up to :data:`DOCTOR_TIMEOUT`.
    """
    machine = _machine(workspace)
    report = runtime.verify_torch(machine, python=sys.executable, timeout=DOCTOR_TIMEOUT)
    return {"kind": "doctor", "version": DOCUMENT_VERSION, "ok": report.ok, "machine": machine.to_dict(), "report": report.to_dict()}


def status_document(ws: Workspace) -> dict[str, Any]:
    """What the lab's status bar shows: ``{"kind": "lab.status", "version": 1, "memory", "cpu", "disk", "gpus", "drive"}``.

    The disk is the one holding the workspace root (local state, never the drive's mount); the drive's
    part is :func:`drivelab.drive.status` cut to what the status bar shows.
    """
    usage = runtime.resource_usage(ws.root)
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
    state = drive.status(ws)
    return {"kind": "drive", "version": DOCUMENT_VERSION, "workspace": str(ws.root), **state.to_dict()}


def secrets_document(ws: Workspace) -> dict[str, Any]:
    """What ``drivelab secrets list --json`` prints: ``{"kind": "secrets.list", "version": 1, "secrets": [{"name", "source", "env"}]}``; never a value."""
    return {"kind": "secrets.list", "version": DOCUMENT_VERSION, "secrets": [s.to_dict() for s in colab.list_secrets(ws)]}


def jobs_document(ws: Workspace) -> dict[str, Any]:
    """What ``drivelab jobs list --json`` prints: ``{"kind": "jobs.list", "version": 1, "jobs": [JobStatus.to_dict(), ...]}``, oldest first."""
    return {"kind": "jobs.list", "version": DOCUMENT_VERSION, "jobs": [j.to_dict() for j in jobs.list_jobs(ws)]}

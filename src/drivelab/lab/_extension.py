"""The Jupyter server extension: runtime and drive state as JSON, behind the server's auth.

``GET <base_url>drivelab/api/runtime``  the runtime document (``docs/runtime.schema.json``)
``GET <base_url>drivelab/api/drive``    the drive's state (``docs/lab.md``)
``GET <base_url>drivelab/api/status``   memory, CPU, disk, GPUs and the drive, for the status bar (``docs/lab.md``)
``GET <base_url>drivelab/connect``      the "Connect a drive" page: sign in to a cloud drive (:mod:`drivelab.lab._connect`)

The workspace is the one holding the server's ``root_dir`` (or
``$DRIVELAB_WORKSPACE``); without one the drive endpoint answers 404 with
``{"error", "hint"}``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from drivelab.errors import DrivelabError, WorkspaceError
from drivelab.lab._connect import connect_handlers, workspace_for
from drivelab.lab._documents import drive_document, runtime_document, status_document
from drivelab.workspace import Workspace


class _Handler(APIHandler):
    auth_resource = "drivelab"

    def initialize(self, root: Path) -> None:
        self.root = root

    def _workspace(self) -> Workspace:
        return workspace_for(self.root)  # or $DRIVELAB_WORKSPACE, or raises with its hint

    def _send(self, document: dict[str, Any]) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(document))

    def _fail(self, status: int, exc: DrivelabError) -> None:
        self.set_status(status)
        self._send({"error": exc.message, "hint": exc.hint})


class RuntimeHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            folder: Path | None = self._workspace().root
        except WorkspaceError:
            folder = self.root
        # Probing runs subprocesses (nvidia-smi, rocminfo): keep it off the event loop.
        self._send(await asyncio.to_thread(runtime_document, folder))


class _WorkspaceDocumentHandler(_Handler):
    """Serves ``document(workspace)``, made off the event loop; 404 outside a workspace, 500 for a drivelab error."""

    document: Callable[[Workspace], dict[str, Any]]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            ws = self._workspace()
            document = await asyncio.to_thread(type(self).document, ws)
        except WorkspaceError as exc:
            self._fail(404, exc)
            return
        except DrivelabError as exc:
            self._fail(500, exc)
            return
        self._send(document)


class DriveHandler(_WorkspaceDocumentHandler):
    document = staticmethod(drive_document)


class StatusHandler(_WorkspaceDocumentHandler):
    document = staticmethod(status_document)


def _load_jupyter_server_extension(serverapp: Any) -> None:
    root = Path(serverapp.root_dir).expanduser().resolve()
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "drivelab/api/runtime"), RuntimeHandler, {"root": root}),
            (url_path_join(base, "drivelab/api/drive"), DriveHandler, {"root": root}),
            (url_path_join(base, "drivelab/api/status"), StatusHandler, {"root": root}),
            *connect_handlers(base, root),
        ],
    )
    serverapp.log.info("drivelab: /drivelab/api/runtime, /drivelab/api/drive, /drivelab/api/status and /drivelab/connect on %s", root)

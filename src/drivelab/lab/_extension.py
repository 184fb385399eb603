"""The Jupyter server extension: the runtime, the drive, secrets and jobs as JSON, behind the server's auth.

``GET    <base_url>drivelab/api/runtime``                 the runtime document (``docs/runtime.schema.json``)
``GET    <base_url>drivelab/api/runtime/panel``           the rows ``drivelab runtime`` prints, for the runtime panel
``GET    <base_url>drivelab/api/doctor``                  what ``drivelab doctor --json`` prints
``GET    <base_url>drivelab/api/drive``                   the drive's state (``docs/lab.md``)
``POST   <base_url>drivelab/api/drive/mount``             attach the drive for the lab; the drive's state
``POST   <base_url>drivelab/api/drive/flush``             what ``drivelab drive flush --json`` prints, once all has landed
``POST   <base_url>drivelab/api/drive/unmount``           flush and unmount for the lab; 409 while a job uses the drive
``GET    <base_url>drivelab/api/status``                  memory, CPU, disk, GPUs and the drive, for the status bar (``docs/lab.md``)
``GET    <base_url>drivelab/api/secrets``                 the secrets' names, never their values
``POST   <base_url>drivelab/api/secrets``                 ``{"name", "value"}``: set a secret
``DELETE <base_url>drivelab/api/secrets/<name>``          remove it
``GET    <base_url>drivelab/api/jobs``                    what ``drivelab jobs list --json`` prints
``POST   <base_url>drivelab/api/jobs``                    ``{"path", "run"?}``: ``drivelab run --detach``; 201
``GET    <base_url>drivelab/api/jobs/<run>/log?offset=N`` the job's log from byte N (none: its end)
``POST   <base_url>drivelab/api/jobs/<run>/stop``         ``drivelab jobs stop``
``GET    <base_url>drivelab/connect``                     the "Connect a drive" page: sign in to a cloud drive (:mod:`drivelab.lab._connect`)

The workspace is the one holding the server's ``root_dir`` (or ``$DRIVELAB_WORKSPACE``). Answers
are JSON, never cached; an error is ``{"error", "hint"}`` with its status (see
:func:`drivelab.lab._actions.http_status`: 404 without a workspace), never a traceback. POST and
DELETE pass Jupyter's XSRF check: with the lab's cookie they need its ``X-XSRFToken`` header, with
``Authorization: token ...`` not. What blocks (probes, the drive, jobs) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http.client import responses
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from drivelab.errors import DrivelabError, WorkspaceError
from drivelab.lab._actions import flush_drive, http_status, job_log, mount_drive, remove_secret, set_secret, start_job, stop_job, unmount_drive
from drivelab.lab._connect import connect_handlers, workspace_for
from drivelab.lab._documents import doctor_document, drive_document, jobs_document, runtime_document, runtime_panel_document, secrets_document, status_document
from drivelab.workspace import Workspace

Document = dict[str, Any]


class _Handler(APIHandler):
    auth_resource = "drivelab"

    def initialize(self, root: Path) -> None:
        self.root = root

    def _workspace(self) -> Workspace:
        return workspace_for(self.root)  # or $DRIVELAB_WORKSPACE, or raises with its hint

    def _folder(self) -> Path:
        """The workspace's root, else the server's folder: where free disk space is measured."""
        try:
            return self._workspace().root
        except WorkspaceError:
            return self.root

    def _send(self, document: Document) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(document))

    def _fail(self, status: int, exc: DrivelabError) -> None:
        self.set_status(status)
        self._send({"error": exc.message, "hint": exc.hint})

    async def _answer(self, make: Callable[[], Document], *, status: int = 200) -> None:
        """Send what ``make()`` returns, made off the event loop; a drivelab error as ``{"error", "hint"}`` with its status."""
        try:
            document = await asyncio.to_thread(make)
        except DrivelabError as exc:
            self._fail(http_status(exc), exc)
            return
        self.set_status(status)
        self._send(document)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Jupyter's own would put the traceback in the answer; the server's log has it.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError):
            message = (exc.log_message % exc.args if exc.args else exc.log_message) if exc.log_message else responses.get(status_code, "error")
            hint = None
        else:
            message, hint = f"the lab's server failed ({responses.get(status_code, status_code)})", "its log says why: .drivelab/logs/lab.log in the workspace"
        self.set_status(status_code)
        self._send({"error": message, "hint": hint})


class RuntimeHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        # Probing runs subprocesses (nvidia-smi, rocminfo): keep it off the event loop.
        await self._answer(lambda: runtime_document(self._folder()))


class RuntimePanelHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._answer(lambda: runtime_panel_document(self._folder()))


class DoctorHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._answer(lambda: doctor_document(self._folder()))


class _WorkspaceDocumentHandler(_Handler):
    """GET serves ``document(workspace)``."""

    document: Callable[[Workspace], Document]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._answer(lambda: type(self).document(self._workspace()))


class DriveHandler(_WorkspaceDocumentHandler):
    document = staticmethod(drive_document)


class StatusHandler(_WorkspaceDocumentHandler):
    document = staticmethod(status_document)


class DriveActionHandler(_Handler):
    """``POST drive/mount``, ``drive/flush``, ``drive/unmount``."""

    actions: dict[str, Callable[[Workspace], Document]] = {"mount": mount_drive, "flush": flush_drive, "unmount": unmount_drive}

    @web.authenticated
    @authorized
    async def post(self, action: str) -> None:
        act = self.actions[action]
        await self._answer(lambda: act(self._workspace()))


class SecretsHandler(_WorkspaceDocumentHandler):
    document = staticmethod(secrets_document)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.request.body  # never logged, never quoted: it holds the value
        await self._answer(lambda: set_secret(self._workspace(), body))


class SecretHandler(_Handler):
    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self._answer(lambda: remove_secret(self._workspace(), name))


class JobsHandler(_WorkspaceDocumentHandler):
    document = staticmethod(jobs_document)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.request.body
        await self._answer(lambda: start_job(self._workspace(), self.root, body), status=201)


class JobLogHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, run: str) -> None:
        offset = self.get_query_argument("offset", None)
        await self._answer(lambda: job_log(self._workspace(), run, offset))


class JobStopHandler(_Handler):
    @web.authenticated
    @authorized
    async def post(self, run: str) -> None:
        await self._answer(lambda: stop_job(self._workspace(), run))


def _load_jupyter_server_extension(serverapp: Any) -> None:
    root = Path(serverapp.root_dir).expanduser().resolve()
    base = serverapp.web_app.settings["base_url"]
    api = url_path_join(base, "drivelab/api")
    routes = [
        ("runtime", RuntimeHandler),
        ("runtime/panel", RuntimePanelHandler),
        ("doctor", DoctorHandler),
        ("drive", DriveHandler),
        ("drive/(mount|flush|unmount)", DriveActionHandler),
        ("status", StatusHandler),
        ("secrets", SecretsHandler),
        ("secrets/([^/]+)", SecretHandler),
        ("jobs", JobsHandler),
        ("jobs/([^/]+)/log", JobLogHandler),
        ("jobs/([^/]+)/stop", JobStopHandler),
    ]
    serverapp.web_app.add_handlers(
        ".*$",
        [*((url_path_join(api, path), handler, {"root": root}) for path, handler in routes), *connect_handlers(base, root)],
    )
    serverapp.log.info("drivelab: /drivelab/api/ (runtime, doctor, drive, status, secrets, jobs) and /drivelab/connect on %s", root)

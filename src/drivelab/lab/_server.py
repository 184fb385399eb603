"""Start JupyterLab on a workspace, and stop it leaving nothing behind.

The server is the real JupyterLab (``python -m jupyterlab``, via ``_serve``), run as a child
in its own session, so that a terminal's Ctrl+C reaches drivelab, which then
stops it in order: server and kernels (SIGTERM; what outlives that is
killed), then the drive (flushed, and detached unless a job still uses it).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from drivelab import drive
from drivelab._background import ProcessExited, ReadyTimeout, spawn, stop, stop_all, wait_ready
from drivelab.errors import LabError, WorkspaceError
from drivelab.colab import LAB_BASE_URL_ENV, install_kernel
from drivelab.workspace import WORKSPACE_ENV, InitResult, Workspace, find_workspace, init_workspace

__all__ = ["LabServer", "LabStopped", "start_lab"]

DEFAULT_PORT = 8888
LAB_CONFIG = Path(__file__).resolve().parent / "_config"
"""A Jupyter config folder: ``labconfig/default_setting_overrides.json``, drivelab's defaults for the lab's settings."""
FIRST_START_MARK = "lab-started"
"""In the workspace's ``.drivelab/``: a lab has started here before (the first one opens :data:`GETTING_STARTED`)."""
GETTING_STARTED = "getting-started.ipynb"
PORT_TRIES = 50
TOKEN_ENV = "JUPYTER_TOKEN"
OUTLIVES_THE_LAB = ("-m drivelab.jobs._supervisor", "-m drivelab.drive._watchdog")
"""What the server may start that stopping the lab leaves running: a job's supervisor (the job goes on;
``drivelab jobs`` covers it) and the drive's watchdog (the drive is flushed and detached after the server)."""
SERVER_BASE_URL = "/"
"""The server's base URL (Jupyter's default ``ServerApp.base_url``), given to its kernels as ``$DRIVELAB_LAB_BASE_URL``."""


@dataclass
class LabStopped:
    exit_code: int | None
    """The server's exit code (negative: killed by that signal)."""
    flush: Any
    """The drive's :class:`drivelab.drive.FlushResult` (files, bytes, seconds)."""
    killed: list[int] = field(default_factory=list)
    """PIDs of kernels or their children that outlived the server and were killed."""
    seconds: float = 0.0


@dataclass
class LabServer:
    """A running JupyterLab; :meth:`stop` it (the CLI does on Ctrl+C)."""

    workspace: Workspace
    ip: str
    port: int
    token: str = field(repr=False)
    pid: int
    log: Path
    """The server's own log (stdout and stderr)."""
    drive: Any
    """The :class:`drivelab.drive.DriveState` after attaching."""
    init: InitResult
    seconds: float
    """From the call to the server answering its API."""
    warnings: list[str] = field(default_factory=list)
    opens: str = "lab"
    """What :attr:`lab_url` opens, from the base URL: ``lab``, or on the workspace's first lab the
    getting-started notebook, ``lab/tree/drive/colab/getting-started.ipynb``."""
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopped: LabStopped | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The server's base URL (no token)."""
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    @property
    def lab_url(self) -> str:
        """The URL to open: JupyterLab (on the first start, the getting-started notebook in it), with the token."""
        return f"{self.url}{self.opens}?token={self.token}"

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server exits (or ``timeout``); its exit code, or None."""
        assert self._process is not None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30.0) -> LabStopped:
        """Stop the server and its kernels, then flush and detach the drive.

        The server shuts its kernels down on SIGTERM; anything it started that
        is still alive ``timeout`` seconds later is killed, but for what
        outlives it by design (:data:`OUTLIVES_THE_LAB`: a job started from the
        lab's panel, the drive's watchdog when the panel mounted the drive). While another
        command (a job) still uses the drive, it is flushed and left attached
        for it (``flush.detached`` is False). Safe to call twice.
        """
        if self._stopped is not None:
            return self._stopped

        started = time.monotonic()
        process = self._process
        assert process is not None
        family = _lab_family(process.pid)
        ended = stop(process, grace=timeout, kill_group=True)
        family += [p for p in _descendants_of(family) if p not in family]
        killed = stop_all([p.pid for p in family], grace=5.0)
        flush = drive.detach(self.workspace)
        self._stopped = LabStopped(ended.code, flush, killed, time.monotonic() - started)
        return self._stopped


def _lab_family(pid: int) -> list[Any]:
    """The server's descendants, less those that outlive it by design (:data:`OUTLIVES_THE_LAB`) and theirs."""
    family = _descendants(pid)
    kept = [p for p in family if any(module in _command_line(p) for module in OUTLIVES_THE_LAB)]
    left = {p.pid for p in [*kept, *_descendants_of(kept)]}
    return [p for p in family if p.pid not in left]


def _command_line(process: Any) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _descendants(pid: int) -> list[Any]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _descendants_of(processes: list[Any]) -> list[Any]:
    found = []
    for p in processes:
        try:
            found += p.children(recursive=True)
        except psutil.Error:
            pass
    return found


def _existing_workspace(root: Path | str | None) -> Workspace | None:
    """The workspace holding ``root`` (as :func:`_prepare_workspace` finds it), if there is one yet."""
    if root is None:
        root = os.environ.get(WORKSPACE_ENV) or Path.cwd()
    try:
        ws = find_workspace(root)
    except WorkspaceError:
        return None
    return ws if ws.config_file.is_file() else None


def _prepare_workspace(root: Path | str | None) -> InitResult:
    """The workspace holding ``root`` (default: ``$DRIVELAB_WORKSPACE``, else the cwd),
    completed by ``init``; ``root`` itself becomes one when none holds it."""
    if root is None:
        root = os.environ.get(WORKSPACE_ENV) or Path.cwd()
    try:
        ws = find_workspace(root)
    except WorkspaceError:
        ws = Workspace(Path(root).expanduser().resolve())
    return init_workspace(ws.root)  # fills in what is missing; keeps what the user edited


def _check_address(ip: str, port: int | None) -> tuple[int, list[str]]:
    """A port that ``ip`` can listen on (``port``, or the first free one from 8888;
    0 lets the system pick), and the warnings binding there deserves."""
    try:
        infos = socket.getaddrinfo(ip or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise LabError(f"cannot listen on {ip!r}: {exc.strerror}", hint="pass --ip an address of this machine, e.g. 127.0.0.1") from exc
    family, _, _, _, address = infos[0]
    host = address[0]
    warnings = []
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        warnings.append(
            f"the lab listens on {ip or 'every address'} ({host}), not only this machine: anyone who can reach "
            "that address and has the token can run code as you. Use --ip 127.0.0.1 (the default) and an SSH tunnel instead."
        )

    def try_bind(candidate: int) -> int:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, candidate))
            return sock.getsockname()[1]

    candidates = [port] if port is not None else list(range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES))
    for candidate in candidates:
        try:
            return try_bind(candidate), warnings
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and port is None:
                continue
            if exc.errno == errno.EADDRINUSE:
                raise LabError(f"port {port} on {ip} is in use", hint="pass another --port, or --port 0 to pick a free one") from exc
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise LabError(f"not allowed to listen on port {candidate}", hint="ports below 1024 need privileges: pass --port 8888 or higher") from exc
            if exc.errno == errno.EADDRNOTAVAIL:
                raise LabError(f"{ip} is not an address of this machine", hint="pass --ip 127.0.0.1 (the default) or one of this machine's addresses") from exc
            raise LabError(f"cannot listen on {ip}:{candidate}: {exc.strerror}", hint="pass another --ip or --port") from exc
    raise LabError(
        f"ports {DEFAULT_PORT}-{DEFAULT_PORT + PORT_TRIES - 1} on {ip} are all in use",
        hint="pass --port 0 to pick a free one",
    )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _answering(url: str, token: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    request = urllib.request.Request(url + "api/status", headers={"Authorization": f"token {token}"})
    try:
        with opener.open(request, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_lab(
    root: Path | str | None = None,
    *,
    ip: str = "127.0.0.1",
    port: int | None = None,
    open_browser: bool = True,
    timeout: float = 120.0,
) -> LabServer:
    """Prepare the workspace, attach its drive, start JupyterLab rooted there.

    ``root``: a folder in a workspace, or one to make a workspace (default:
    ``$DRIVELAB_WORKSPACE``, else the current folder). ``port`` None takes the
    first free port from 8888; 0 lets the system choose. Token authentication
    is always on: the token is ``$JUPYTER_TOKEN`` when set and not empty,
    else a new random one. Returns once the server answers its API; raises
    :class:`LabError` (with the server log's tail) when it does not.
    """
    started = time.monotonic()
    chosen_port, warnings = _check_address(ip, port)
    # A remote drive is attached before the workspace is completed: what init fills in lands on
    # the remote, not in the folder beneath the mount point (attaching would then refuse it).
    existing = _existing_workspace(root)
    state = drive.attach(existing, user="lab") if existing is not None else None
    init = _prepare_workspace(root)
    ws = init.workspace
    kernel = install_kernel(ws)
    token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(32)
    if os.name == "posix" and os.geteuid() == 0:
        warnings.append("running as root: code in notebooks runs as root too")

    if state is None:
        state = drive.attach(ws, user="lab")
    log = ws.state / "logs" / "lab.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "drivelab.lab._serve",  # python -m jupyterlab, without a slow import it does not need
        f"--ServerApp.root_dir={ws.root}",
        # The file browser opens on the drive (colab/, dataset/, runs/); the kernels' folder stays the root.
        f"--ContentsManager.preferred_dir={ws.drive.name}",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={chosen_port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={SERVER_BASE_URL}",  # what kernels are told (DRIVELAB_LAB_BASE_URL), whatever a user config says
        f"--ServerApp.open_browser={open_browser}",
        "--ServerApp.jpserver_extensions=drivelab.lab=True",
    ]
    # The workspace's first lab opens the getting-started notebook (the browser, and the URL printed); later ones JupyterLab.
    first_start = ws.state / FIRST_START_MARK
    opens = "lab"
    getting_started = ws.colab / GETTING_STARTED
    if not first_start.exists() and getting_started.is_file():
        opens = "lab/tree/" + urllib.parse.quote(getting_started.relative_to(ws.root).as_posix())
        argv.append(f"--ServerApp.default_url=/{opens}")
    if os.name == "posix" and os.geteuid() == 0:
        argv.append("--allow-root")
    # drivelab's own JupyterLab extension, prebuilt into the package from labextension/ (scripts/bootstrap.sh
    # builds it): JupyterLab finds it in <dir>/labextensions/ of a folder on JUPYTER_PATH. Without it, plain JupyterLab.
    frontend = Path(__file__).parent / "_frontend"
    ours = [str(frontend)] if (frontend / "labextensions" / "@drivelab" / "lab" / "package.json").is_file() else []
    jupyter_path = [str(kernel.jupyter_path), *ours, *[p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]]
    # The token travels in the environment, never on a command line that `ps` shows. The base URL tells
    # the server's kernels that a browser is attached, and where its pages are (links stay host-relative).
    # drivelab's defaults for the lab's settings (no Jupyter news pop-up, cells' run times, a notification when a
    # long cell ends): layered under the user's own settings, which still win.
    config_path = [*[p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p], str(LAB_CONFIG)]
    env = {
        **os.environ,
        TOKEN_ENV: token,
        "JUPYTER_PATH": os.pathsep.join(jupyter_path),
        "JUPYTER_CONFIG_PATH": os.pathsep.join(config_path),
        WORKSPACE_ENV: str(ws.root),
        LAB_BASE_URL_ENV: SERVER_BASE_URL,
    }
    process = spawn(argv, log=log, cwd=ws.root, env=env, header=f"--- drivelab lab {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}")
    server = LabServer(
        workspace=ws, ip=ip, port=chosen_port, token=token, pid=process.pid, log=log,
        drive=state, init=init, seconds=0.0, warnings=warnings, opens=opens, _process=process,
    )  # fmt: skip
    try:
        try:
            wait_ready(process, lambda: _answering(server.url, token) or None, timeout=max(0.0, timeout - (time.monotonic() - started)))
        except ProcessExited as exc:
            raise LabError(
                f"JupyterLab exited with code {exc.code} before it answered; the end of its log ({log}):\n{_tail(log)}",
                hint="fix what the log says, or run `drivelab doctor`",
            ) from None
        except ReadyTimeout:
            raise LabError(
                f"JupyterLab did not answer on {server.url} within {timeout:.0f} s; the end of its log ({log}):\n{_tail(log)}",
                hint="the machine may be overloaded; try again",
            ) from None
    except BaseException:
        server.stop(timeout=10)
        raise
    server.seconds = time.monotonic() - started
    with contextlib.suppress(OSError):
        first_start.touch()
    return server

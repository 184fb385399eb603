"""``drivelab lab``: the real JupyterLab on a loopback port, its REST API, the
server extension, clear errors for bad addresses, and a clean stop on Ctrl+C.

Every server runs with its own Jupyter folders (config, data, runtime) under
the test's temporary folder, so nothing of the user's Jupyter set-up leaks in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import psutil
import pytest

from drivelab.lab._server import _check_address
from drivelab.workspace import init_workspace

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "docs" / "runtime.schema.json"
URL_LINE = re.compile(r"(http://127\.0\.0\.1:(\d+)/lab(?:/tree/\S+)?\?token=(\S+))")


def jupyter_env(home: Path, **extra: str) -> dict[str, str]:
    """A child environment with Jupyter's folders of its own and no drivelab settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_", "JUPYTER"))}
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(key, None)
    env.update(
        COLUMNS="200",
        NO_COLOR="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, *, token: str | None = None, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    """``(status, body)``; never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    headers = {"Authorization": f"token {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class LabProcess:
    """``drivelab lab`` running as a child process."""

    proc: subprocess.Popen[str]
    workspace: Path
    url: str
    token: str
    port: int
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    """Reads the output into ``lines`` until it ends."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return "\n".join(self.lines)


def start_cli_lab(workspace: Path, home: Path, *args: str, timeout: float = 90) -> LabProcess:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivelab", "lab", "--no-browser", "--port", str(port), "-w", str(workspace), *args],
        env=jupyter_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl+C" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not ready.wait(timeout) or proc.poll() is not None:
        proc.kill()
        pytest.fail("drivelab lab did not start:\n" + "\n".join(lines))
    match = next((URL_LINE.search(line) for line in lines if URL_LINE.search(line)), None)
    assert match, "no URL with a token printed:\n" + "\n".join(lines)
    return LabProcess(proc, workspace, match[1], match[3], int(match[2]), lines, reader)


def stop(lab: LabProcess, timeout: float = 60, signum: int = signal.SIGINT) -> int:
    if lab.proc.poll() is None:
        lab.proc.send_signal(signum)
    try:
        return lab.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        lab.proc.kill()
        raise


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    """One ``drivelab lab`` for the module's read-only checks."""
    base = tmp_path_factory.mktemp("lab")
    workspace = init_workspace(base / "ws").workspace.root
    running = start_cli_lab(workspace, base / "jupyter")
    yield running
    stop(running)


def test_lab_prints_a_loopback_url_with_a_token_and_refuses_requests_without_it(lab):
    # The workspace's first lab opens the getting-started notebook.
    assert lab.url.startswith(f"http://127.0.0.1:{lab.port}/lab/tree/drive/colab/getting-started.ipynb?token=")
    assert len(lab.token) >= 32
    # The server listens on loopback only.
    server = psutil.Process(lab.proc.pid).children()[0]
    listening = [c.laddr for c in server.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert lab.token not in " ".join(server.cmdline())  # the token is not shown by ps

    for path in ("api/contents/drive", "api/kernels", "drivelab/api/runtime", "drivelab/api/drive"):
        status, _ = http(lab.base + path)
        assert status == 403, path
        status, _ = http(lab.base + path, token="not-the-token")
        assert status == 403, path

    status, body = http(lab.base + "api/contents/drive", token=lab.token)
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    assert {"colab", "dataset", "runs"} <= names


def test_runtime_endpoint_serves_the_documented_runtime_document(lab):
    status, body = http(lab.base + "drivelab/api/runtime", token=lab.token)
    assert status == 200
    doc = json.loads(body)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    # The same machine as `drivelab runtime --json` sees, from a separate process.
    cli = subprocess.run(
        [sys.executable, "-m", "drivelab", "runtime", "--json", "-w", str(lab.workspace)],
        capture_output=True, text=True, env=jupyter_env(lab.workspace.parent), timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    for key in ("kind", "version", "nvidia", "amd", "mps", "xpu", "torch"):
        assert doc[key] == expected[key], key
    for key in ("os", "arch", "python_version", "cpu_model", "cpu_cores", "ram_bytes"):
        assert doc["system"][key] == expected["system"][key], key
    assert set(doc["system"]["disk_free_bytes"]) == {"workspace", "scratch"}


def test_drive_endpoint_serves_the_drive_state(lab):
    from drivelab import drive
    from drivelab.workspace import Workspace

    status, body = http(lab.base + "drivelab/api/drive", token=lab.token)
    assert status == 200
    doc = json.loads(body)
    assert doc["kind"] == "drive" and doc["version"] == 1
    assert doc["workspace"] == str(lab.workspace)
    state = drive.status(Workspace(lab.workspace)).to_dict()
    assert set(doc) == {"kind", "version", "workspace", *state}
    assert doc["mode"] == state["mode"] == "local"
    assert doc["path"] == str(lab.workspace / "drive")
    assert doc["live"] is True


def test_status_endpoint_serves_what_the_status_bar_shows(lab):
    import shutil

    status, _ = http(lab.base + "drivelab/api/status")
    assert status == 403  # behind the token
    status, body = http(lab.base + "drivelab/api/status", token=lab.token)
    assert status == 200, body
    doc = json.loads(body)
    assert doc["kind"] == "lab.status" and doc["version"] == 1
    total = psutil.virtual_memory().total
    assert doc["memory"]["total"] == total and 0 < doc["memory"]["used"] <= total
    assert 0 <= doc["cpu"]["percent"] <= 100 and doc["cpu"]["cores"] == psutil.cpu_count()
    assert doc["disk"]["path"] == str(lab.workspace) and doc["disk"]["total"] == shutil.disk_usage(lab.workspace).total
    assert abs(doc["disk"]["free"] - shutil.disk_usage(lab.workspace).free) < 512 * 2**20  # other tests write meanwhile
    assert doc["gpus"] == []  # none on the machines the tests run on
    assert doc["drive"] == {"mode": "local", "phase": "local", "remote": None, "pending_uploads": 0, "read_only": False}


@pytest.mark.parametrize(
    ("plugin", "key", "value"),
    [
        ("@jupyterlab/apputils-extension:notification", "fetchNews", "false"),  # no "official Jupyter news?" pop-up
        ("@jupyterlab/notebook-extension:tracker", "recordTiming", True),  # each cell's run time recorded...
        ("jupyterlab-execute-time:settings", "enabled", True),  # ...and shown under it
        ("jupyterlab-notify:plugin", "defaultThreshold", 60),  # a browser notification when a cell over a minute ends
    ],
)
def test_the_labs_settings_default_to_drivelabs(lab, plugin, key, value):
    """drivelab's defaults are the schema's defaults the lab is served (the user's own settings still win)."""
    status, body = http(lab.base + f"lab/api/settings/{plugin}", token=lab.token)
    assert status == 200, body
    doc = json.loads(body)
    assert doc["schema"]["properties"][key]["default"] == value
    assert key not in (doc.get("settings") or {})  # not written into the user's settings


def test_lab_kernel_is_drivelabs_and_the_lab_opens_on_the_drive(lab):
    status, body = http(lab.base + "api/kernelspecs", token=lab.token)
    assert status == 200
    specs = json.loads(body)
    assert specs["default"] == "python3"
    spec = specs["kernelspecs"]["python3"]["spec"]
    assert spec["argv"][:3] == [sys.executable, "-m", "drivelab.colab._kernel"]
    assert spec["env"]["DRIVELAB_WORKSPACE"] == str(lab.workspace)
    status, body = http(lab.base + "lab", token=lab.token)
    assert status == 200
    config = json.loads(re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', body, re.S)[1])
    assert config["preferredPath"].strip("/") == "drive"


def test_bad_address_and_busy_port_are_clear_errors(tmp_path):
    home = tmp_path / "jupyter"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, message in (
            (["--port", str(port)], f"port {port} on 127.0.0.1 is in use"),
            (["--ip", "256.1.2.3"], "cannot listen on '256.1.2.3'"),
            (["--ip", "192.0.2.1"], "192.0.2.1 is not an address of this machine"),
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "drivelab", "lab", "--no-browser", "-w", str(tmp_path / "ws"), *args],
                env=jupyter_env(home), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert proc.returncode == 1, proc.stderr
            assert message in proc.stderr and "hint:" in proc.stderr
            assert "Traceback" not in proc.stderr
    assert not (tmp_path / "ws").exists()  # nothing was set up for a server that could not start


def test_a_non_loopback_address_gets_a_warning():
    # Only binds (never listens) to check the address; no server is started.
    _, warnings = _check_address("0.0.0.0", 0)
    assert warnings and "not only this machine" in warnings[0]
    _, warnings = _check_address("127.0.0.1", 0)
    assert warnings == []


@pytest.mark.slow
def _command_line(process: psutil.Process) -> str:
    """Its command line; empty for one that ended meanwhile (the server starts short-lived helpers too)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"])
def test_ctrl_c_stops_server_and_kernels_and_flushes_the_drive(tmp_path, signum):
    """Ctrl+C, `kill PID` and a closed terminal alike: server, kernels (and their keepers) gone, the drive flushed."""
    workspace = init_workspace(tmp_path / "ws").workspace.root
    lab = start_cli_lab(workspace, tmp_path / "jupyter")
    try:
        # A kernel, and a file written through the server into the drive.
        status, body = http(lab.base + "api/kernels", token=lab.token, method="POST", body={"name": "python3"})
        assert status == 201, body
        kernel_id = json.loads(body)["id"]
        status, _ = http(
            lab.base + "api/contents/drive/notes.txt", token=lab.token, method="PUT",
            body={"type": "file", "format": "text", "content": "written in the lab"},
        )  # fmt: skip
        assert status in (200, 201)
        deadline = time.monotonic() + 60
        kernels: list[psutil.Process] = []
        while time.monotonic() < deadline:
            family = psutil.Process(lab.proc.pid).children(recursive=True)
            kernels = [p for p in family if "drivelab.colab._kernel" in _command_line(p)]
            if kernels:
                break
            time.sleep(0.2)
        assert kernels, f"kernel {kernel_id} did not start"
        family = psutil.Process(lab.proc.pid).children(recursive=True)
        pids = {p.pid for p in family}
    except BaseException:
        lab.proc.kill()
        raise

    code = stop(lab, signum=signum)
    lab.reader.join(30)  # its output has ended: the reader has every line
    out = lab.output()
    assert not lab.reader.is_alive(), f"something still holds the output of drivelab lab:\n{out}"
    assert code == 0, out
    assert "Stopping JupyterLab and its kernels" + ("" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})") in out
    assert "JupyterLab stopped. Drive flushed" in out and "detached" in out
    assert "Traceback" not in out
    stray = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert stray == [], f"still running: {stray}"
    assert (workspace / "drive" / "notes.txt").read_text() == "written in the lab"
    log = (workspace / ".drivelab" / "logs" / "lab.log").read_text()
    assert "Kernel shutdown" in log or "Shutting down" in log
    with socket.socket() as sock:  # nothing listens on the port any more (TIME_WAIT may linger)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", lab.port))


@pytest.mark.skipif(sys.platform != "linux", reason="FUSE mounts of the drive are tested on Linux")
def test_a_closed_terminal_leaves_no_mount_of_a_remote_drive(tmp_path, s3):
    """SIGHUP (the terminal closed) with the drive on S3: JupyterLab gone, the drive flushed and unmounted, its watchdog gone."""
    from drivelab import drive

    ws = init_workspace(tmp_path / "ws").workspace
    drive.connect(ws, "box", "s3", s3.options(), root=f"hup{os.getpid()}")
    drive.attach(ws, "box", local_files="copy", timeout=60)
    assert drive.detach(ws, timeout=60).detached
    lab = start_cli_lab(ws.root, tmp_path / "jupyter")
    try:
        state = drive.status(ws)
        assert state.live and os.path.ismount(ws.drive), state
        watchdog = state.watchdog_pid
        (ws.drive / "late.txt").write_text("written just before the terminal closed")
    except BaseException:
        lab.proc.kill()
        raise
    code = stop(lab, signum=signal.SIGHUP)
    lab.reader.join(30)
    out = lab.output()
    assert code == 0 and "JupyterLab stopped. Drive flushed" in out and "detached" in out, out
    assert not os.path.ismount(ws.drive) and not drive.status(ws).live
    assert not psutil.pid_exists(watchdog) or psutil.Process(watchdog).status() == psutil.STATUS_ZOMBIE
    assert (s3.backing / f"hup{os.getpid()}" / "late.txt").read_text() == "written just before the terminal closed"


def test_the_last_line_says_when_uploads_were_left_pending():
    """Ctrl+C with the remote unreachable: the lab's last line must not claim a flush that did not happen."""
    from rich.console import Console

    from drivelab.cli.commands.lab import stopped_line
    from drivelab.drive import DetachResult

    def plain(markup: str) -> str:
        console = Console(width=400, color_system=None)
        with console.capture() as captured:
            console.print(markup, soft_wrap=True)
        return captured.get().strip()

    forced = DetachResult(
        files=1, bytes=2048, seconds=30.2, mode="mount", forced=True, pending=3, cache="/w/.drivelab/drive/cache", reason="3 uploads made no progress for 10 minutes"
    )
    line = plain(stopped_line(forced))
    assert "Drive unmounted with 3 upload(s) pending (3 uploads made no progress for 10 minutes)" in line, line
    assert "kept in /w/.drivelab/drive/cache and upload at the next `drivelab drive mount`" in line
    assert "Drive flushed" not in line and "detached." not in line

    done = plain(stopped_line(DetachResult(files=2, bytes=4096, seconds=1.5, mode="mount")))
    assert done == "JupyterLab stopped. Drive flushed (2 file(s), 4.1 kB uploaded in 1.5 s) and detached.", done
    shared = plain(stopped_line(DetachResult(mode="mount", detached=False, users=[{"what": "job exp1"}])))
    assert shared.endswith("and left attached: in use by job exp1."), shared

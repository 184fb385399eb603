"""drivelab's own JupyterLab extension (``labextension/``, prebuilt into the package).

A real ``drivelab lab`` finds it on its JUPYTER_PATH (``jupyter labextension
list`` shows it enabled), and in headless Chromium its status bar item shows
the machine's memory, CPU, disk and the drive, from ``drivelab/api/status``.
JupyterLab's question about fetching news from the internet never shows
(drivelab's setting defaults answer it, and the extension does where they are
missing, unless the user did).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from _guards import skip_or_fail
from test_lab import LabProcess, http, jupyter_env, start_cli_lab, stop

import drivelab.lab
from drivelab.workspace import init_workspace

if TYPE_CHECKING:
    from _chromium import DevTools

pytest_plugins = ["_chromium"]  # the `chromium` fixture

FRONTEND = Path(drivelab.lab.__file__).parent / "_frontend"
BUILT = FRONTEND / "labextensions" / "@drivelab" / "lab" / "package.json"
ITEM = "document.querySelector('[data-drivelab=\"status\"]')"
# RAM 3.1/23.5 GB · CPU 12% · GPU0 1.2/80 GB 35% · disk 40 GB free · drive local
LINE = re.compile(r"^RAM [\d.]+/[\d.]+ GB · CPU \d+% · (?:.*GPU.* · )?disk [\d.]+ [GT]B free · drive local$")
NEWS = "official Jupyter news"
GIB = 1024**3


def frontend_lab(tmp_path_factory: pytest.TempPathFactory, name: str, *, started_before: bool = False) -> Iterator[LabProcess]:
    """A ``drivelab lab`` on a fresh workspace, with the extension built (else skipped, or failed in CI);
    ``started_before``: the workspace's first lab was earlier (the page is JupyterLab, not the getting-started notebook)."""
    if not BUILT.is_file():
        skip_or_fail(f"drivelab's JupyterLab extension is not built ({BUILT.parent}): scripts/bootstrap.sh builds it, with Node.js")
    base = tmp_path_factory.mktemp(name)
    workspace = init_workspace(base / "ws").workspace.root
    if started_before:
        (workspace / ".drivelab" / "lab-started").write_text("")
    running = start_cli_lab(workspace, base / "jupyter")
    yield running
    stop(running)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    yield from frontend_lab(tmp_path_factory, "lab-frontend")


def server_env(lab: LabProcess) -> dict[str, str]:
    """The JupyterLab server's own environment (the child of ``drivelab lab`` that runs it)."""
    server = psutil.Process(lab.proc.pid).children()[0]
    return server.environ()


def test_the_server_finds_the_extension_enabled(lab):
    jupyter_path = server_env(lab)["JUPYTER_PATH"]
    assert str(FRONTEND) in jupyter_path.split(":")
    home = lab.workspace.parent / "jupyter"
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        env=jupyter_env(home, JUPYTER_PATH=jupyter_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    listing = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, listing
    assert re.search(r"@drivelab/lab v\S+ enabled OK", listing), listing
    # The page the browser gets names it among the extensions to load.
    status, body = http(f"{lab.base}lab?token={lab.token}")
    assert status == 200 and b"@drivelab/lab" in body


def test_status_bar_shows_the_machine_and_the_drive_and_no_news_prompt(lab, chromium: DevTools):
    # The endpoint the item reads answers, as the item expects.
    status, body = http(f"{lab.base}drivelab/api/status", token=lab.token)
    assert status == 200, body
    assert json.loads(body)["kind"] == "lab.status"

    chromium.open(f"{lab.base}lab?token={lab.token}")
    text = chromium.wait(lambda: (t := chromium.evaluate(f"{ITEM}?.textContent")) and "RAM" in t and t, "the status bar item", 60)
    assert LINE.match(text), text
    assert chromium.evaluate(f"{ITEM}.dataset.state") == "ok"
    tooltip = chromium.evaluate(f"{ITEM}.title")
    assert "Memory:" in tooltip and "Drive: a local folder" in tooltip, tooltip
    assert chromium.evaluate(f"{ITEM}.closest('#jp-bottom-panel, .jp-StatusBar-Widget') !== null")

    # JupyterLab asks once the app is restored, a second or so later: the question must not show.
    chromium.wait(lambda: chromium.evaluate("document.getElementById('jupyterlab-splash') === null"), "JupyterLab to be restored", 30)
    seen_until = time.monotonic() + 5
    while time.monotonic() < seen_until:
        assert not chromium.evaluate(f"document.body.textContent.includes({json.dumps(NEWS)})"), "the news question showed"
        chromium.settle()
    # It keeps asking, every 5 s.
    requests = "performance.getEntriesByType('resource').filter(e => e.name.includes('drivelab/api/status')).length"
    chromium.wait(lambda: chromium.evaluate(requests) >= 2, "the item's second request", 15)


def answer_status(chromium: DevTools, code: int, document: dict) -> bool:
    """Answer the page's paused ``drivelab/api/status`` request, if one is waiting, with ``document``."""
    paused = next((e for e in chromium.events if e.get("method") == "Fetch.requestPaused"), None)
    if paused is None:
        return False
    chromium.events.remove(paused)
    chromium.call(
        "Fetch.fulfillRequest", requestId=paused["params"]["requestId"], responseCode=code,
        responseHeaders=[{"name": "Content-Type", "value": "application/json"}],
        body=base64.b64encode(json.dumps(document).encode()).decode(),
    )  # fmt: skip
    return True


def test_status_bar_renders_gpus_the_drives_states_and_failures(lab, chromium: DevTools):
    """The item's rendering of answers a CPU-only local workspace never gives: the browser's requests to
    the endpoint are answered by the test (a synced drive with GPUs, an error, a drive down), in turn."""
    chromium.call("Fetch.enable", patterns=[{"urlPattern": "*drivelab/api/status*", "requestStage": "Request"}])
    chromium.open(f"{lab.base}lab?token={lab.token}")

    def shows(code: int, document: dict, pattern: str) -> str:
        chromium.wait(lambda: answer_status(chromium, code, document), "the item's request", 30)
        return chromium.wait(lambda: re.fullmatch(pattern, chromium.evaluate(f"{ITEM}?.textContent") or "") and chromium.evaluate(f"{ITEM}.title"), pattern, 30)

    base = {"kind": "lab.status", "version": 1, "memory": {"used": 3.1 * GIB, "total": 23.5 * GIB}, "cpu": {"percent": 12.3, "cores": 8},
            "disk": {"free": 40 * GIB, "total": 200 * GIB, "path": str(lab.workspace)}}  # fmt: skip
    h100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_used": 1.2 * GIB, "memory_total": 80 * GIB, "utilization": 35.0}
    synced = {"mode": "sync", "phase": "live", "remote": "gdrive:", "pending_uploads": 2, "read_only": False}
    title = shows(200, {**base, "gpus": [h100], "drive": synced}, re.escape("RAM 3.1/23.5 GB · CPU 12% · GPU0 1.2/80 GB 35% · disk 40 GB free · drive syncing, 2 pending"))
    assert "GPU 0 (NVIDIA H100 80GB HBM3): 1.20 of 80.00 GB used, 35% busy" in title, title
    assert "Drive: sync of gdrive:, live, 2 upload(s) pending" in title, title

    # A failed request: said so, the server's error and hint in the tooltip; the polling goes on.
    title = shows(500, {"error": "the drive's state cannot be read", "hint": "run `drivelab drive status`"}, "drivelab: status unavailable")
    assert "the drive's state cannot be read" in title and "drivelab drive status" in title, title
    assert chromium.evaluate(f"{ITEM}.dataset.state") == "error"

    unknown = {"index": 1, "name": "GPU", "memory_used": None, "memory_total": None, "utilization": None}
    down = {"mode": "mount", "phase": "down", "remote": "s3:bucket", "pending_uploads": None, "read_only": True}
    big_disk = {**base["disk"], "free": 3 * 1024 * GIB}
    shows(200, {**base, "disk": big_disk, "gpus": [h100, {**unknown, "index": 1}, {**h100, "index": 2}], "drive": down},
          re.escape("RAM 3.1/23.5 GB · CPU 12% · 3 GPUs 35% · disk 3 TB free · drive down, read-only, ? pending"))  # fmt: skip
    shows(200, {**base, "gpus": [h100, unknown], "drive": {**down, "phase": "live", "pending_uploads": 0, "read_only": False}},
          re.escape("RAM 3.1/23.5 GB · CPU 12% · GPU0 1.2/80 GB 35% · GPU1 ? · disk 40 GB free · drive live"))  # fmt: skip

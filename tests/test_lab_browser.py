"""The lab in a real browser: headless Chromium, driven over its DevTools
protocol, opens JupyterLab with the token and finds the file browser on the
drive, showing ``colab/`` and ``dataset/``. A screenshot is kept as an artifact.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from websockets.sync import client as websockets_sync

from drivelab.lab import start_lab
from drivelab.workspace import init_workspace

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    "--remote-debugging-port=0",
]
# The names the file browser shows: laid out on the page, not only in the DOM.
LISTING = (
    "JSON.stringify(Array.from(document.querySelectorAll('.jp-DirListing-content .jp-DirListing-item'))"
    ".filter(e => e.getBoundingClientRect().height > 0)"
    ".map(e => e.querySelector('.jp-DirListing-itemText').textContent.trim()))"
)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")


class DevTools:
    """The few DevTools protocol calls this test needs, over one page's WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = count(1)

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:  # events in between are not needed
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def settle(self) -> None:
        """Wait until the page has painted what its script just changed (two animation frames)."""
        self.call(
            "Runtime.evaluate",
            expression="new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
            awaitPromise=True,
        )


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=(tmp_path / "chromium.log").open("wb"),
        start_new_session=True,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Chromium did not start:\n" + (tmp_path / "chromium.log").read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        targets = json.loads(opener.open(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        page = next(t for t in targets if t["type"] == "page")
        with websockets_sync.connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
            yield DevTools(ws)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.mark.slow
def test_lab_in_headless_chromium_shows_the_drive(tmp_path, chromium, monkeypatch):
    ws = init_workspace(tmp_path / "ws").workspace
    home = tmp_path / "jupyter"
    for name in [k for k in os.environ if k.startswith(("DRIVELAB_", "JUPYTER"))]:
        monkeypatch.delenv(name)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):  # fmt: skip
        monkeypatch.setenv(var, str(home / sub))
    server = start_lab(ws.root, port=0, open_browser=False)
    try:
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=server.lab_url)
        names: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            names = json.loads(chromium.evaluate(LISTING) or "[]")
            if {"colab", "dataset"} <= set(names):
                break
            time.sleep(0.5)
        chromium.settle()
        shot = chromium.call("Page.captureScreenshot", format="png")["data"]
        artifact = tmp_path / "lab.png"
        artifact.write_bytes(base64.b64decode(shot))
        print(f"screenshot: {artifact}")
        title = chromium.evaluate("document.title")
        path = chromium.evaluate("location.pathname")
    finally:
        server.stop()
    assert {"colab", "dataset", "runs"} <= set(names), f"file browser shows {names}; screenshot {artifact}"
    assert "JupyterLab" in (title or ""), title
    assert path.startswith("/lab")
    assert artifact.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and artifact.stat().st_size > 10_000

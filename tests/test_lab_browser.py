"""The lab in a real browser: headless Chromium, driven over its DevTools
protocol, opens JupyterLab with the token and finds the file browser on the
drive, showing ``colab/`` and ``dataset/``. A screenshot is kept as an artifact.
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from drivelab.lab import start_lab
from drivelab.workspace import init_workspace

pytest_plugins = ["_chromium"]  # the `chromium` fixture

# The names the file browser shows: laid out on the page, not only in the DOM.
LISTING = (
    "JSON.stringify(Array.from(document.querySelectorAll('.jp-DirListing-content .jp-DirListing-item'))"
    ".filter(e => e.getBoundingClientRect().height > 0)"
    ".map(e => e.querySelector('.jp-DirListing-itemText').textContent.trim()))"
)


# The titles of the main area's tabs.
TABS = "JSON.stringify(Array.from(document.querySelectorAll('#jp-main-dock-panel .lm-TabBar-tabLabel')).map(e => e.textContent.trim()))"


@pytest.mark.slow
def test_lab_in_headless_chromium_shows_the_drive(tmp_path, chromium, monkeypatch):
    ws = init_workspace(tmp_path / "ws").workspace
    home = tmp_path / "jupyter"
    for name in [k for k in os.environ if k.startswith(("DRIVELAB_", "JUPYTER"))]:
        monkeypatch.delenv(name)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")):  # fmt: skip
        monkeypatch.setenv(var, str(home / sub))
    # The first lab of a workspace opens the getting-started notebook, its folder in the file browser.
    first = start_lab(ws.root, port=0, open_browser=False)
    try:
        assert first.lab_url == f"{first.url}lab/tree/drive/colab/getting-started.ipynb?token={first.token}"
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=first.lab_url)
        opened: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            opened = json.loads(chromium.evaluate(TABS) or "[]")
            if "getting-started.ipynb" in opened:
                break
            time.sleep(0.5)
    finally:
        first.stop()
    assert "getting-started.ipynb" in opened, opened
    # Later ones open JupyterLab on the drive.
    server = start_lab(ws.root, port=0, open_browser=False)
    try:
        assert server.lab_url == f"{server.url}lab?token={server.token}"
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

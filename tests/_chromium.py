"""Headless Chromium for the browser tests, driven over its DevTools protocol.

``chromium`` (a fixture) starts a fresh Chromium with a profile of the test's
own and yields a :class:`DevTools` on its page; the process group is stopped
when the test ends. Without Chromium the test skips (fails under CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from _guards import skip_or_fail
from _waiting import wait_until
from websockets.sync import client as websockets_sync

__all__ = ["CHROMIUM_FLAGS", "DevTools", "chromium", "find_chromium"]

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


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    skip_or_fail("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")


class DevTools:
    """One page of a Chromium, over the browser's DevTools WebSocket (a flat session attached to the page).

    ``call`` goes to the page, ``browser_call`` to the browser itself; the events
    that arrive while waiting for an answer are kept in ``events``.
    """

    def __init__(self, ws: Any, session: str | None = None) -> None:
        self.ws = ws
        self.session = session
        self.ids = count(1)
        self.events: list[dict[str, Any]] = []

    def _send(self, method: str, params: dict[str, Any], session: str | None, timeout: float) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params, **({"sessionId": session} if session else {})}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        return self._send(method, params, self.session, timeout)

    def browser_call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        return self._send(method, params, None, timeout)

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def js(self, expression: str) -> Any:
        """The value of ``expression`` (a promise awaited); the test fails if it throws."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def settle(self) -> None:
        """Wait until the page has painted what its script just changed (two animation frames)."""
        self.call(
            "Runtime.evaluate",
            expression="new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
            awaitPromise=True,
        )

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        """The first truthy value of ``predicate()``; the events sent meanwhile are collected between tries."""

        def check() -> Any:
            self.browser_call("Browser.getVersion")  # collects the events sent meanwhile
            return predicate()

        return wait_until(what, check, within=timeout)

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event."""
        self.call("Page.enable")
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait(lambda: any(e.get("method") == "Page.loadEventFired" for e in self.events), "the page to load")

    def download_to(self, folder: Path) -> None:
        """Let the browser save what the page downloads, into ``folder``."""
        self.browser_call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(folder), eventsEnabled=True)

    def render(self, html: str) -> None:
        """Show an output as JupyterLab shows a trusted one (the previous one gone): its HTML in the page, its scripts run."""
        self.js(
            "((html) => { document.querySelectorAll('.test-output').forEach((e) => e.remove());"
            " const host = document.createElement('div'); host.className = 'test-output'; document.body.appendChild(host); host.innerHTML = html;"
            " for (const old of Array.from(host.getElementsByTagName('script'))) { const s = document.createElement('script');"
            " s.textContent = old.textContent; old.parentNode.replaceChild(s, old); } })(" + json.dumps(html) + ")"
        )

    def element(self, element_id: str, what: str) -> Any:
        """``what`` (a property: ``disabled``, ``textContent``; or a call: ``click()``) of the element ``element_id``."""
        return self.js(f"document.getElementById({json.dumps(element_id)}).{what}")

    def wait_enabled(self, element_id: str) -> None:
        self.wait(lambda: not self.element(element_id, "disabled"), f"#{element_id} to be enabled")

    def wait_text(self, element_id: str, pattern: str) -> None:
        self.wait(lambda: re.search(pattern, self.element(element_id, "textContent")), f"#{element_id} to say {pattern!r}")

    def choose_files(self, input_id: str, paths: list[Path]) -> None:
        """Pick ``paths`` in the file input ``input_id``, as a user does in the file chooser."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=f"#{input_id}")["nodeId"]
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(p) for p in paths])


def _first_page(devtools: DevTools) -> str | None:
    targets = devtools.browser_call("Target.getTargets")["targetInfos"]
    return next((t["targetId"] for t in targets if t["type"] == "page"), None)


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
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Chromium did not start:\n" + (tmp_path / "chromium.log").read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        with websockets_sync.connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30) as ws:
            devtools = DevTools(ws)
            page = wait_until("Chromium's page", lambda: _first_page(devtools), within=30)
            devtools.session = devtools.browser_call("Target.attachToTarget", targetId=page, flatten=True)["sessionId"]
            yield devtools
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()

"""The lab's panels in a real JupyterLab, in headless Chromium: runtime, secrets, jobs and drive.

Each test acts as a user does: clicks the status bar item, a sidebar tab, a
button; types in a field. What the panel did is then checked where it lands:
the secrets store a kernel reads, the job's supervisor, the S3 bucket behind
the drive.

With ``DRIVELAB_SCREENSHOTS=FOLDER`` each panel is also saved there as a PNG
(the screenshots in ``docs/``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest
from _guards import skip_or_fail
from test_lab import LabProcess, http, start_cli_lab, stop
from test_lab_frontend import BUILT, ITEM, frontend_lab

from drivelab.colab import list_secrets
from drivelab.jobs import job_status
from drivelab.workspace import Workspace, init_workspace

if TYPE_CHECKING:
    from _chromium import DevTools

pytest_plugins = ["_chromium"]

SCREENSHOTS = os.environ.get("DRIVELAB_SCREENSHOTS")
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
"""The workspace's kernel, as a notebook made on Colab names it (without one, JupyterLab asks which)."""


def panel(name: str) -> str:
    return f"document.querySelector('[data-drivelab=\"{name}\"]')"


def click(chromium: DevTools, selector: str) -> None:
    """A mouse click at the middle of the element (pressed and released there, as a user's is)."""
    box = chromium.js(
        f"(e => {{ e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();"
        f" return [r.x + r.width / 2, r.y + r.height / 2]; }})(document.querySelector({json.dumps(selector)}))"
    )
    x, y = box
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        chromium.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left" if kind != "mouseMoved" else "none", clickCount=1 if kind != "mouseMoved" else 0)


def text(chromium: DevTools, selector: str) -> str:
    return chromium.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''")


def type_into(chromium: DevTools, selector: str, value: str) -> None:
    """Focus the field and type ``value`` as keyboard input (not a script setting ``.value``)."""
    chromium.js(f"document.querySelector({json.dumps(selector)}).focus()")
    chromium.call("Input.insertText", text=value)


def open_panel(chromium: DevTools, panel_id: str) -> None:
    """Click the panel's tab in the left sidebar; wait until the panel shows."""
    tab = f'.lm-TabBar-tab[data-id="{panel_id}"]'
    chromium.wait(lambda: chromium.evaluate(f"document.querySelector({json.dumps(tab)}) !== null"), f"the {panel_id} tab", 60)
    if not shown(chromium, panel_id):
        click(chromium, tab)
    chromium.wait(lambda: shown(chromium, panel_id), f"the {panel_id} panel to show", 15)


def shown(chromium: DevTools, panel_id: str) -> bool:
    return chromium.evaluate(f"(e => !!e && e.offsetParent !== null && !e.classList.contains('lm-mod-hidden'))(document.getElementById('{panel_id}'))")


def screenshot(chromium: DevTools, name: str) -> None:
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    chromium.settle()
    shot = chromium.call("Page.captureScreenshot", format="png")
    (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def open_lab(chromium: DevTools, lab: LabProcess, path: str = "lab") -> None:
    chromium.call("Emulation.setDeviceMetricsOverride", width=1400, height=860, deviceScaleFactor=1, mobile=False)
    chromium.open(f"{lab.base}{path}?token={lab.token}")
    # The splash shows once the app starts, after the page's load; the status item's first figures come
    # while it shows, and it goes once the layout is restored.
    chromium.wait(lambda: "RAM" in (chromium.evaluate(f"{ITEM}?.textContent") or ""), "the status bar item", 60)
    chromium.wait(lambda: chromium.evaluate("document.getElementById('jupyterlab-splash') === null"), "JupyterLab to be restored", 60)


def requests_to(chromium: DevTools, path: str) -> int:
    return chromium.evaluate(f"performance.getEntriesByType('resource').filter(e => e.name.includes({json.dumps(path)})).length")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    yield from frontend_lab(tmp_path_factory, "lab-panels", started_before=True)


def test_the_status_item_opens_the_runtime_panel_with_the_doctors_verdict(lab, chromium: DevTools):
    verdict = json.loads(http(f"{lab.base}drivelab/api/doctor", token=lab.token)[1])
    expected = "ok" if verdict["ok"] else "problem"

    open_lab(chromium, lab)
    click(chromium, '[data-drivelab="status"]')
    chromium.wait(lambda: shown(chromium, "drivelab-runtime"), "the runtime panel to open from the status bar", 15)

    table = chromium.wait(lambda: (t := text(chromium, '[data-drivelab="runtime-table"]')) and "Python" in t and t, "the runtime table", 60)
    assert f"Python{sys.version.split()[0]}" in table and "CPU" in table and "RAM" in table and "PyTorch" in table, table
    state = chromium.wait(lambda: (s := chromium.evaluate(f"{panel('doctor')}.dataset.state")) in ("ok", "problem") and s, "the doctor's verdict", 180)
    assert state == expected, text(chromium, '[data-drivelab="doctor"]')
    said = text(chromium, '[data-drivelab="doctor"]')
    assert ("works here" in said) == verdict["ok"], said
    for check in verdict["report"]["checks"]:
        assert check["name"] in said, said
    screenshot(chromium, "lab-runtime-panel")

    # Check again: asked anew, and the verdict comes back.
    asked = requests_to(chromium, "drivelab/api/doctor")
    click(chromium, '[data-drivelab="doctor-check"]')
    chromium.wait(lambda: requests_to(chromium, "drivelab/api/doctor") > asked, "a second check", 15)
    chromium.wait(lambda: chromium.evaluate(f"{panel('doctor')}.dataset.state") == expected, "the second verdict", 180)


def test_a_secret_added_in_the_panel_is_what_userdata_returns_and_is_never_shown(lab, chromium: DevTools):
    value = "s3cr3t-typed-in-the-panel-" + os.urandom(4).hex()
    ws = Workspace(lab.workspace)
    open_lab(chromium, lab)
    open_panel(chromium, "drivelab-secrets")
    chromium.wait(lambda: "No secrets yet" in text(chromium, '[data-drivelab="secrets-list"]'), "the empty list", 30)

    type_into(chromium, '[data-drivelab="secret-name"]', "PANEL_TOKEN")
    type_into(chromium, '[data-drivelab="secret-value"]', value)
    assert chromium.evaluate(f"{panel('secret-value')}.type") == "password"
    click(chromium, '[data-drivelab="secret-add"]')
    chromium.wait(lambda: "PANEL_TOKEN" in text(chromium, '[data-drivelab="secrets-list"]'), "the new secret in the list", 30)
    assert [s.name for s in list_secrets(ws)] == ["PANEL_TOKEN"]
    # Sent, then gone from the page: not in any field, not in the DOM's text.
    assert chromium.evaluate(f"{panel('secret-value')}.value") == ""
    assert not chromium.evaluate(f"document.documentElement.outerHTML.includes({json.dumps(value)})")
    screenshot(chromium, "lab-secrets-panel")

    # A bad name: the library's words, nothing stored.
    type_into(chromium, '[data-drivelab="secret-name"]', "2 bad")
    type_into(chromium, '[data-drivelab="secret-value"]', "x")
    click(chromium, '[data-drivelab="secret-add"]')
    error = chromium.wait(lambda: (t := text(chromium, '[data-drivelab="secrets-panel"] [data-drivelab="error"]')) and t, "the error", 30)
    assert "2 bad" in error and "hint:" in error, error
    assert [s.name for s in list_secrets(ws)] == ["PANEL_TOKEN"]

    # A notebook's kernel reads it: the notebook runs as a job from its toolbar button.
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[nbformat.v4.new_code_cell(textwrap.dedent(f"""\
        from google.colab import userdata
        print("secret matches:", userdata.get("PANEL_TOKEN") == {value!r})
    """))])  # fmt: skip
    nbformat.write(notebook, lab.workspace / "drive" / "colab" / "secret-check.ipynb")
    runs = lab.workspace / "drive" / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    open_lab(chromium, lab, "lab/tree/drive/colab/secret-check.ipynb")
    button = ".jp-NotebookPanel-toolbar [data-command=\"drivelab:run-as-job\"]"
    chromium.wait(lambda: chromium.evaluate(f"document.querySelector({json.dumps(button)})?.getAttribute('aria-disabled')") == "false", "the notebook's Run as job button", 60)
    chromium.wait(lambda: chromium.evaluate("document.querySelector('.jp-NotebookPanel .jp-Spinner') === null"), "the notebook to show", 60)
    click(chromium, button)
    chromium.wait(lambda: shown(chromium, "drivelab-jobs"), "the jobs panel to open", 30)
    log = chromium.wait(lambda: (t := text(chromium, '[data-drivelab="job-log"]')) and "secret matches:" in t and t, "the job's log", 240)
    assert "secret matches: True" in log, log
    assert value not in log
    (run_dir,) = set(runs.iterdir()) - before
    assert run_dir.name in text(chromium, '[data-drivelab="jobs-table"]')

    # Removed from the panel, after saying yes.
    open_panel(chromium, "drivelab-secrets")
    chromium.wait(lambda: "PANEL_TOKEN" in text(chromium, '[data-drivelab="secrets-list"]'), "the list", 30)
    click(chromium, '[data-secret="PANEL_TOKEN"] [data-drivelab="secret-remove"]')
    chromium.wait(lambda: chromium.evaluate("document.querySelector('.jp-Dialog button.jp-mod-warn') !== null"), "the question", 15)
    click(chromium, ".jp-Dialog button.jp-mod-warn")
    chromium.wait(lambda: "No secrets yet" in text(chromium, '[data-drivelab="secrets-list"]'), "the secret gone", 30)
    assert list_secrets(ws) == []


def test_a_detached_job_shows_in_the_jobs_panel_its_log_follows_and_it_stops_from_there(lab, chromium: DevTools):
    script = lab.workspace / "drive" / "colab" / "ticker.py"
    script.write_text("import time\nfor i in range(10000):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.2)\n")
    started = json.loads(
        subprocess.run(
            [sys.executable, "-m", "drivelab", "run", "--detach", "--json", "--run", "ticker", "drive/colab/ticker.py"],
            cwd=lab.workspace, capture_output=True, text=True, timeout=120, check=True,
        ).stdout
    )  # fmt: skip
    assert started["run"] == "ticker"

    open_lab(chromium, lab)
    open_panel(chromium, "drivelab-jobs")
    row = '[data-drivelab="jobs-table"] tr[data-run="ticker"]'
    chromium.wait(lambda: chromium.evaluate(f"document.querySelector({json.dumps(row)})?.dataset.state") == "running", "the job, running", 60)
    click(chromium, row)
    first = chromium.wait(lambda: (m := re.findall(r"tick (\d+)", text(chromium, '[data-drivelab="job-log"]'))) and int(m[-1]), "the log", 30)
    later = chromium.wait(lambda: (m := re.findall(r"tick (\d+)", text(chromium, '[data-drivelab="job-log"]'))) and int(m[-1]) >= first + 5 and int(m[-1]), "the log to follow", 30)
    ticks = re.findall(r"tick (\d+)", text(chromium, '[data-drivelab="job-log"]'))
    assert ticks == [str(i) for i in range(int(ticks[0]), later + 1)], "each line once, in order"
    screenshot(chromium, "lab-jobs-panel")

    click(chromium, '[data-drivelab="job-stop"]')
    chromium.wait(lambda: chromium.evaluate(f"document.querySelector({json.dumps(row)})?.dataset.state") == "stopped", "the job, stopped", 90)
    assert job_status(Workspace(lab.workspace), "ticker").state == "stopped"
    assert chromium.evaluate(f"{panel('job-stop')}.hidden")


@pytest.mark.skipif(sys.platform != "linux", reason="FUSE mounts of the drive are tested on Linux")
def test_the_drive_panel_flushes_a_real_s3_drive_to_nothing_pending_then_unmounts_and_mounts_it(tmp_path, s3, chromium: DevTools):
    from drivelab import drive

    if not BUILT.is_file():
        skip_or_fail(f"drivelab's JupyterLab extension is not built ({BUILT.parent})")
    ws = init_workspace(tmp_path / "ws").workspace
    (ws.state / "lab-started").write_text("")
    bucket = f"panel{os.getpid()}"
    drive.connect(ws, "box", "s3", s3.options(), root=bucket)
    drive.attach(ws, "box", local_files="copy", timeout=60)  # the workspace's drive from now on
    assert drive.detach(ws, timeout=60).detached
    lab = start_cli_lab(ws.root, tmp_path / "jupyter")
    try:
        assert drive.status(ws).live and os.path.ismount(ws.drive)
        payload = {f"batch/{i:02d}.bin": os.urandom(256 * 1024) for i in range(12)}
        (ws.drive / "batch").mkdir()
        for name, data in payload.items():
            (ws.drive / name).write_bytes(data)

        open_lab(chromium, lab)
        open_panel(chromium, "drivelab-drive")
        chromium.wait(lambda: chromium.evaluate(f"{panel('drive-panel')}.dataset.phase") == "live", "the drive, live", 30)
        state = text(chromium, '[data-drivelab="drive-state"]')
        assert "s3" in state.lower() or "box" in state, state
        assert "lab (pid" in state, state
        click(chromium, '[data-drivelab="drive-flush"]')
        outcome = chromium.wait(lambda: (t := text(chromium, '[data-drivelab="drive-outcome"]')) and t, "the flush to end", 120)
        assert outcome.startswith("Flushed:") and "nothing pending" in outcome, outcome
        for name, data in payload.items():
            assert (s3.backing / bucket / name).read_bytes() == data, name
        chromium.wait(lambda: re.search(r"Pending uploads\s*0", text(chromium, '[data-drivelab="drive-state"]')), "0 pending", 15)
        screenshot(chromium, "lab-drive-panel")

        click(chromium, '[data-drivelab="drive-unmount"]')
        outcome = chromium.wait(lambda: (t := text(chromium, '[data-drivelab="drive-outcome"]')) and "unmounted" in t and t, "the unmount", 120)
        assert not os.path.ismount(ws.drive), outcome
        chromium.wait(lambda: chromium.evaluate(f"{panel('drive-panel')}.dataset.phase") == "detached", "the drive, detached", 30)
        assert not chromium.evaluate(f"{panel('drive-mount')}.disabled")
        events = text(chromium, '[data-drivelab="drive-events"]')
        assert "unmounted" in events or "stopped" in events, events

        click(chromium, '[data-drivelab="drive-mount"]')
        chromium.wait(lambda: "Mounted" in text(chromium, '[data-drivelab="drive-outcome"]'), "the mount", 120)
        assert os.path.ismount(ws.drive) and (ws.drive / "batch" / "00.bin").read_bytes() == payload["batch/00.bin"]
    finally:
        code = stop(lab, signum=signal.SIGTERM)
    assert code == 0, lab.output()
    assert not os.path.ismount(ws.drive)

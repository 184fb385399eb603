"""Colab code runs unchanged wherever drivelab runs code: the lab's kernel, ``drivelab run`` of a
notebook (papermill on the lab's kernel), of a script, and of a script under torchrun.

The notebook and the script in ``tests/data/colab/`` are written as Colab tutorials write them
(``drive.mount('/content/drive')``, ``userdata.get('WANDB_KEY')``, files under
``/content/drive/MyDrive``, ``files.download``, an import drivelab does not cover). ``/content``
is a folder of the test's (``$DRIVELAB_COLAB_CONTENT``; paths the code opens itself are
rewritten to it); the secret is set with the real ``drivelab secrets set``, its value piped in,
and must never show up anywhere but in ``.drivelab/secrets.json``. In the lab with a browser,
a real headless Chromium runs the JavaScript that downloads and uploads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbclient
import nbformat
import pytest
from _notebooks import text_of
from websockets.sync import client as websockets_sync

from drivelab.errors import JobError
from drivelab.jobs import JobSpec, merge_environment
from drivelab.colab import install_kernel, job_environment
from drivelab.workspace import init_workspace

DATA = Path(__file__).resolve().parent / "data" / "colab"
SHIM = Path(__file__).resolve().parents[1] / "src" / "drivelab" / "colab" / "_shim"
MY_DRIVE = "/content/drive/MyDrive"

if TYPE_CHECKING:
    from _chromium import DevTools

pytest_plugins = ["_chromium"]  # the `chromium` fixture


@dataclass
class Colab:
    ws: object
    root: Path
    secret: str
    jupyter: Path

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]

    def content(self, name: str) -> Path:
        """A folder standing for ``/content``, one per test: each mounts afresh."""
        return self.root / f"content-{name}"

    def env(self, content: Path | None = None, **extra: str) -> dict[str, str]:
        """The environment of a user's shell: no drivelab or Jupyter variable leaks in from the test run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_", "JUPYTER", "PYTHONPATH"))}
        for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            env.pop(key, None)
        env.update(
            COLUMNS="200",
            NO_COLOR="1",
            JUPYTER_CONFIG_DIR=str(self.jupyter / "config"),
            JUPYTER_DATA_DIR=str(self.jupyter / "data"),
            JUPYTER_RUNTIME_DIR=str(self.jupyter / "runtime"),
            IPYTHONDIR=str(self.jupyter / "ipython"),
        )
        if content is not None:
            env["DRIVELAB_COLAB_CONTENT"] = str(content)
        env.update(extra)
        return env

    def drivelab(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "drivelab", *args],
            check=False,
            cwd=self.ws.root,
            env=env or self.env(),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def place(self, name: str, content: Path, as_name: str | None = None) -> Path:
        """Copy a test file into ``drive/colab/``, its ``/content/drive/MyDrive`` paths made ``content``'s."""
        target = self.ws.colab / (as_name or name)
        target.write_text((DATA / name).read_text().replace(MY_DRIVE, f"{content}/drive/MyDrive"))
        return target


def use_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Make this process's environment ``env`` as far as drivelab, Jupyter and Python's path go (for kernels started from here)."""
    for name in [k for k in os.environ if k.startswith(("DRIVELAB_", "JUPYTER", "PYTHONPATH")) and k not in env]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


@pytest.fixture(scope="module")
def colab(tmp_path_factory: pytest.TempPathFactory) -> Colab:
    """One workspace for the module, its secret set through the CLI with the value piped in."""
    root = tmp_path_factory.mktemp("colab")
    ws = init_workspace(root / "ws").workspace
    jupyter = root / "jupyter"
    jupyter.mkdir()
    found = Colab(ws=ws, root=root, secret="wk-" + secrets.token_hex(16), jupyter=jupyter)
    proc = found.drivelab("secrets", "set", "WANDB_KEY", stdin=found.secret + "\n")
    assert proc.returncode == 0, describe(proc)
    assert found.secret not in proc.stdout + proc.stderr
    assert "WANDB_KEY" in proc.stdout + proc.stderr
    return found


def cell_with(nb, text: str):
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


def check_tutorial(nb, colab: Colab, content: Path, tag: str) -> None:
    """What the tutorial notebook shows and leaves, wherever it ran."""
    mount = cell_with(nb, "drive.mount(")
    assert text_of(mount).startswith("Mounted at /content/drive\n"), text_of(mount)
    assert any("drivelab drive connect NAME -t gdrive" in o.get("data", {}).get("text/markdown", "") for o in mount.outputs), mount.outputs
    assert f"WANDB_KEY sha256: {colab.digest}" in text_of(cell_with(nb, "userdata.get('WANDB_KEY')"))
    missing = text_of(cell_with(nb, "userdata.get('HF_TOKEN')"))
    assert missing.startswith("no HF_TOKEN: Secret HF_TOKEN does not exist.\n"), missing  # Colab's class and message
    assert "drivelab secrets set HF_TOKEN" in missing
    # Written through /content/drive/MyDrive, it is in the workspace's drive; files.download left a copy in drive/downloads/.
    metrics = colab.ws.drive / "colab-everywhere" / f"{tag}-metrics.csv"
    assert metrics.read_text() == "epoch,loss\n1,0.50\n2,0.25\n"
    copy = colab.ws.drive / "downloads" / f"{tag}-metrics.csv"
    assert copy.read_text() == metrics.read_text()
    assert f"Saved {content}/drive/MyDrive/colab-everywhere/{tag}-metrics.csv to {copy}" in text_of(cell_with(nb, "files.download("))
    widgets = text_of(cell_with(nb, "from google.colab import output"))
    assert widgets.startswith("custom widgets: on\nno colab widgets: NotCoveredError\n"), widgets
    assert "google.colab.userdata, google.colab.output, google.colab.patches" in widgets and "docs/lab.md" in widgets
    assert text_of(cell_with(nb, "files.upload()")).strip() == "no upload: BrowserRequiredError"  # no browser here
    assert "All changes made in this colab session should now be visible in Drive." in text_of(cell_with(nb, "flush_and_unmount"))
    assert not os.path.lexists(content / "drive" / "MyDrive")
    assert colab.secret not in json.dumps(nb)


# --- the lab's kernel --------------------------------------------------------------------


def test_the_notebook_in_the_labs_kernel(colab: Colab, monkeypatch: pytest.MonkeyPatch):
    """As the lab runs it (nbclient on the workspace's kernelspec), with no browser attached."""
    content = colab.content("kernel")
    use_environment(monkeypatch, colab.env(content, JUPYTER_PATH=str(install_kernel(colab.ws).jupyter_path)))
    nb = nbformat.reads(colab.place("tutorial.ipynb", content, "tutorial-kernel.ipynb").read_text(), as_version=4)
    cell_with(nb, "RUN_TAG =").source = "RUN_TAG = 'kernel'"
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120, startup_timeout=120, resources={"metadata": {"path": str(colab.ws.colab)}})
    client.execute()
    check_tutorial(nb, colab, content, "kernel")


# --- drivelab run ------------------------------------------------------------------------


def test_the_notebook_through_drivelab_run(colab: Colab):
    """papermill on the lab's kernel: cwd the workspace root, the stand-in, %drivelab; a parameter set with -p."""
    content = colab.content("run-nb")
    notebook = colab.place("tutorial.ipynb", content, "tutorial-run.ipynb")
    nb = nbformat.reads(notebook.read_text(), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import os\nprint('cwd', os.getcwd())\n%drivelab --version"))
    nbformat.write(nb, notebook)
    # Started from the lab's terminal, whose environment holds the lab's base URL: the job still has no browser.
    proc = colab.drivelab("run", "--run", "nb", "--restarts", "0", "-p", "RUN_TAG", "run", "drive/colab/tutorial-run.ipynb",
                          env=colab.env(content, DRIVELAB_LAB_BASE_URL="/"))  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    run_dir = colab.ws.run_dir("nb")
    out = nbformat.read(run_dir / "tutorial-run.ipynb", as_version=4)
    check_tutorial(out, colab, content, "run")
    last = text_of(out.cells[-1])
    assert f"cwd {colab.ws.root}" in last and "drivelab " in last  # the lab's kernel: its cwd, its magic
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "succeeded"
    env = status["spec"]["env"]  # recorded, so a restart or a detached supervisor gets the same
    assert env["PYTHONPATH"] == str(SHIM) and env["DRIVELAB_LAB_BASE_URL"] == ""
    assert env["JUPYTER_PATH"] == str(colab.ws.state / "jupyter")
    for text in (proc.stdout, proc.stderr, (run_dir / "log").read_text(), json.dumps(status)):
        assert colab.secret not in text


def test_a_script_through_drivelab_run(colab: Colab):
    content = colab.content("run-py")
    colab.place("train.py", content)
    proc = colab.drivelab("run", "--run", "py", "--restarts", "0", "drive/colab/train.py", env=colab.env(content, DRIVELAB_LAB_BASE_URL="/"))
    assert proc.returncode == 0, describe(proc)
    log = (colab.ws.run_dir("py") / "log").read_text()
    assert "Mounted at /content/drive" in log and "drivelab drive connect NAME -t gdrive" in log
    assert "rank 0: no google.colab.auth here (GoogleAuthMissingError)" in log
    assert "rank 0: lab base url None" in log  # the lab's variable does not reach a job
    written = colab.ws.drive / "colab-everywhere" / "script-1-rank0.txt"
    assert written.read_text() == f"rank 0 of 1; key sha256 {colab.digest}\n"
    assert (colab.ws.drive / "downloads" / written.name).read_text() == written.read_text()
    assert f"Saved {content}/drive/MyDrive/colab-everywhere/{written.name} to {colab.ws.drive / 'downloads' / written.name}" in log
    assert colab.secret not in log + proc.stdout + proc.stderr


def test_a_script_under_torchrun(colab: Colab):
    """Two processes (gloo on the CPU): each mounts at the same moment, reads the secret, writes to the drive."""
    content = colab.content("torchrun")
    colab.place("train.py", content)
    proc = colab.drivelab("run", "--run", "ddp", "--restarts", "0", "--nproc-per-node", "2", "drive/colab/train.py", env=colab.env(content), timeout=300)
    assert proc.returncode == 0, describe(proc)
    log = (colab.ws.run_dir("ddp") / "log").read_text()
    assert "torch.distributed.run" in json.loads((colab.ws.run_dir("ddp") / "status.json").read_text())["command"]
    for rank in (0, 1):
        assert f"rank {rank}: all_reduce gives 3" in log
        assert f"rank {rank}: no google.colab.auth here (GoogleAuthMissingError)" in log
        written = colab.ws.drive / "colab-everywhere" / f"script-2-rank{rank}.txt"
        assert written.read_text() == f"rank {rank} of 2; key sha256 {colab.digest}\n"
        assert (colab.ws.drive / "downloads" / written.name).is_file()
    assert "must not already contain files" not in log
    assert (content / "drive" / "MyDrive").resolve() == colab.ws.drive.resolve()
    assert colab.secret not in log + proc.stdout + proc.stderr


def test_a_real_google_colab_wins(colab: Colab, tmp_path: Path):
    """A google.colab installed on the user's path is used, never hidden; the stand-in alone is not taken for a real one."""
    real = tmp_path / "site" / "google" / "colab"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\n")
    (colab.ws.colab / "which.py").write_text("import google.colab\nprint('colab from', google.colab.__file__, getattr(google.colab, 'REAL', False))\n")
    proc = colab.drivelab("run", "--run", "real", "--restarts", "0", "drive/colab/which.py", env=colab.env(PYTHONPATH=str(tmp_path / "site")))
    assert proc.returncode == 0, describe(proc)
    assert f"colab from {real / '__init__.py'} True" in (colab.ws.run_dir("real") / "log").read_text()
    assert "PYTHONPATH" not in json.loads((colab.ws.run_dir("real") / "status.json").read_text())["spec"]["env"]

    probe = "from drivelab.colab import has_real_colab; print(has_real_colab())"
    for pythonpath, expected in ((str(tmp_path / "site"), "True"), (str(SHIM), "False"), ("", "False")):
        done = subprocess.run([sys.executable, "-c", probe], env=colab.env(PYTHONPATH=pythonpath), capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
        assert done.stdout.strip() == expected, (pythonpath, done.stderr)


# --- the environment a job gets ----------------------------------------------------------


def test_the_job_environment_merge_rule():
    inherited = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/mine", "DRIVELAB_LAB_BASE_URL": "/", "KEEP": "1", "OVER": "old"}
    merged = merge_environment(inherited, {"PYTHONPATH": "/shim:/mine", "PATH": "/bin", "JUPYTER_PATH": "/k", "DRIVELAB_LAB_BASE_URL": "", "OVER": "new"})
    assert merged["PYTHONPATH"] == "/mine:/shim"  # appended after what is inherited, never repeated
    assert merged["PATH"] == "/usr/bin:/bin" and merged["JUPYTER_PATH"] == "/k"
    assert "DRIVELAB_LAB_BASE_URL" not in merged  # empty: removed
    assert merged["KEEP"] == "1" and merged["OVER"] == "new"
    assert inherited["PYTHONPATH"] == "/mine"  # the inherited mapping is left alone


def test_the_spec_records_its_environment(colab: Colab):
    spec = JobSpec(colab.ws.main_script, run="x", env=job_environment(colab.ws))
    again = JobSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.env == spec.env == {"DRIVELAB_LAB_BASE_URL": "", "PYTHONPATH": str(SHIM)}
    old = spec.to_dict()
    del old["env"]  # a status.json written before the field existed
    assert JobSpec.from_dict(old).env == {}
    spec.env = {"BAD NAME": "1"}
    with pytest.raises(JobError, match="not a usable environment variable"):
        spec.validate()


# --- secrets -----------------------------------------------------------------------------


def test_secrets_cli(colab: Colab):
    path = colab.ws.state / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = colab.env(MY_TOKEN_VAR="from-the-environment")
    assert colab.drivelab("secrets", "set", "ENV_ONE", "--from-env", "MY_TOKEN_VAR", env=env).returncode == 0
    assert colab.drivelab("secrets", "set", "GONE", stdin="x").returncode == 0
    listed = colab.drivelab("secrets", "list", "--json")
    assert listed.returncode == 0, describe(listed)
    doc = json.loads(listed.stdout)
    assert doc["kind"] == "secrets.list"
    assert doc["secrets"] == [
        {"name": "ENV_ONE", "source": "env", "env": "MY_TOKEN_VAR"},
        {"name": "GONE", "source": "stored", "env": None},
        {"name": "WANDB_KEY", "source": "stored", "env": None},
    ]
    plain = colab.drivelab("secrets", "list")
    assert plain.stderr.splitlines() == ["ENV_ONE  (from $MY_TOKEN_VAR)", "GONE", "WANDB_KEY"]  # human text: stderr
    assert colab.secret not in listed.stdout + plain.stdout + plain.stderr
    assert "from-the-environment" not in path.read_text()  # only the variable's name is kept
    assert colab.drivelab("secrets", "remove", "GONE").returncode == 0
    removed = colab.drivelab("secrets", "remove", "GONE")
    assert removed.returncode == 2 and "no secret named 'GONE'" in removed.stderr + removed.stdout
    bad = colab.drivelab("secrets", "set", "not a name", stdin="x")
    assert bad.returncode == 2 and "not a usable secret name" in bad.stdout + bad.stderr
    empty = colab.drivelab("secrets", "set", "EMPTY", stdin="\n")
    assert empty.returncode == 1 and "is empty" in empty.stdout + empty.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # userdata.get, in a plain Python process of the workspace: env-backed secrets are read at get time.
    code = (
        "from google.colab import userdata\n"
        "print(userdata.get('ENV_ONE'))\n"
        "for name in ('GONE', 'ENV_TWO'):\n"
        "    try:\n"
        "        userdata.get(name)\n"
        "    except userdata.SecretNotFoundError as e:\n"
        "        print(type(e).__mro__[1].__module__, str(e).splitlines()[0])\n"
    )
    assert colab.drivelab("secrets", "set", "ENV_TWO", "--from-env", "UNSET_VAR").returncode == 0
    run = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(SHIM), "DRIVELAB_WORKSPACE": str(colab.ws.root)},
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert run.stdout.splitlines() == [
        "from-the-environment",
        "google.colab.errors Secret GONE does not exist.",
        "google.colab.errors Secret ENV_TWO does not exist.",
    ], run.stderr


# --- the lab, with a browser -------------------------------------------------------------


class LabKernel:
    """A kernel the lab's server starts for a notebook, as JupyterLab asks for it, talked to over its WebSocket (``api/kernels/ID/channels``)."""

    def __init__(self, server, notebook: str) -> None:
        self.server = server
        body = json.dumps({"path": notebook, "type": "notebook", "name": Path(notebook).name, "kernel": {"name": "python3"}}).encode()
        reply = self._request("POST", "api/sessions", body)
        self.kernel_id = reply["kernel"]["id"]
        url = server.url.replace("http://", "ws://") + f"api/kernels/{self.kernel_id}/channels"
        self.closing = ExitStack()
        self.ws = self.closing.enter_context(
            websockets_sync.connect(url, additional_headers={"Authorization": f"token {server.token}"}, max_size=None, open_timeout=60)
        )

    def _request(self, method: str, path: str, body: bytes | None = None) -> dict:
        request = urllib.request.Request(self.server.url + path, data=body, method=method,
                                         headers={"Authorization": f"token {self.server.token}", "Content-Type": "application/json"})  # fmt: skip
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=60) as answer:
            return json.loads(answer.read() or b"{}")

    def send(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request", "version": "5.3", "date": ""}
        content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []}))
        return msg_id

    def outputs(self, msg_id: str):
        """The cell's outputs as they come, until the kernel is idle again."""
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("parent_header", {}).get("msg_id") != msg_id or message.get("channel") != "iopub":
                continue
            kind = message["msg_type"]
            if kind == "status" and message["content"]["execution_state"] == "idle":
                return
            if kind in ("stream", "display_data", "execute_result", "error"):
                yield kind, message["content"]

    def run(self, code: str) -> list[tuple[str, dict]]:
        return list(self.outputs(self.send(code)))

    def close(self) -> None:
        self.closing.close()


def _stdout(outputs) -> str:
    return "".join(c["text"] for kind, c in outputs if kind == "stream")


def _errors(outputs) -> list[str]:
    return [f"{c['ename']}: {c['evalue']}" for kind, c in outputs if kind == "error"]


def _html(outputs) -> list[str]:
    return [c["data"]["text/html"] for kind, c in outputs if kind == "display_data" and "text/html" in c.get("data", {})]


def test_the_lab_with_a_browser(colab: Colab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chromium: DevTools):
    """In a kernel the lab's server started: drive.mount links to "Connect a drive", files.download makes the
    browser save the file (through Jupyter's /files/), files.upload takes files from a file picker."""
    from drivelab.lab import start_lab

    use_environment(monkeypatch, colab.env(colab.content("lab")))
    downloads = tmp_path / "browser-downloads"
    downloads.mkdir()
    server = start_lab(colab.ws.root, port=0, open_browser=False)
    kernel = None
    try:
        kernel = LabKernel(server, "drive/colab/in-the-lab.ipynb")
        chromium.download_to(downloads)
        chromium.open(f"{server.url}lab?token={server.token}")  # logs in: the lab's cookie and its _xsrf cookie

        mounted = kernel.run(
            "from google.colab import drive, files\ndrive.mount('/content/drive')\n"
            "import os, subprocess\nprint(os.environ.get('DRIVELAB_LAB_BASE_URL'), 'DRIVELAB_LAB_BASE_URL' in subprocess.run(['env'], capture_output=True, text=True).stdout)"
        )
        assert _stdout(mounted) == "Mounted at /content/drive\nNone False\n", mounted  # the kernel keeps the URL to itself, from what it starts too
        assert any('href="/drivelab/connect"' in html for html in _html(mounted)), mounted

        # files.download: a copy in drive/downloads/, and the browser saves it.
        payload = secrets.token_bytes(3000)
        (colab.ws.drive / "weights.bin").write_bytes(payload)
        shown = kernel.run("files.download('drive/weights.bin')")
        assert not _errors(shown), shown
        assert (colab.ws.drive / "downloads" / "weights.bin").read_bytes() == payload
        [html] = _html(shown)
        assert 'href="/files/drive/downloads/weights.bin?download=1"' in html
        chromium.render(html)
        chromium.wait(lambda: (downloads / "weights.bin").is_file(), "the browser's download")
        chromium.wait(lambda: (downloads / "weights.bin").read_bytes() == payload, "the download to complete")
        chromium.render(html)  # the notebook opened again later: no second download
        time.sleep(0.5)
        assert sorted(p.name for p in downloads.iterdir()) == ["weights.bin"]

        # files.upload: a file picker; the chosen files (a large one sent in chunks, a hidden one, a name
        # already taken) land in the target folder, and Colab's {name: bytes} comes back.
        chosen = tmp_path / "chosen"
        chosen.mkdir()
        big = secrets.token_bytes(2 * 1024 * 1024 + 12345)
        (chosen / "data.bin").write_bytes(big)
        (chosen / "notes.txt").write_text("new notes")
        (chosen / ".env").write_text("A=1")
        target = colab.ws.drive / "uploaded"
        target.mkdir()
        (target / "notes.txt").write_text("old notes")
        msg_id = kernel.send("up = files.upload('drive/uploaded')\nprint(sorted((k, len(v)) for k, v in up.items()))")
        outputs = []
        for kind, content in kernel.outputs(msg_id):
            outputs.append((kind, content))
            if kind == "display_data" and "text/html" in content["data"]:
                html = content["data"]["text/html"]
                input_id = re.search(r'<input type="file" id="([^"]+)"', html)[1]
                status_id = re.search(r'<output id="([^"]+)"', html)[1]
                chromium.render(html)
                chromium.wait_enabled(input_id)
                chromium.choose_files(input_id, [chosen / "data.bin", chosen / "notes.txt", chosen / ".env"])
                chromium.wait_text(status_id, "uploaded|failed")
                assert chromium.element(status_id, "textContent").endswith(" uploaded."), chromium.element(status_id, "textContent")
        assert not _errors(outputs), outputs
        printed = _stdout(outputs)
        assert "Saving data.bin to drive/uploaded/data.bin\n" in printed
        assert "Saving notes.txt to drive/uploaded/notes (1).txt\n" in printed and "Saving .env to drive/uploaded/.env\n" in printed
        assert printed.endswith(f"[('.env', 3), ('data.bin', {len(big)}), ('notes.txt', 9)]\n"), printed
        assert (target / "data.bin").read_bytes() == big
        assert (target / "notes (1).txt").read_text() == "new notes" and (target / "notes.txt").read_text() == "old notes"
        assert (target / ".env").read_text() == "A=1"
        assert sorted(p.name for p in target.iterdir()) == [".env", "data.bin", "notes (1).txt", "notes.txt"]  # nothing left behind
        chromium.render(html)  # the picker shown again after the upload ended (the notebook reopened) says so
        chromium.wait_text(status_id, "has ended")
        assert chromium.element(input_id, "disabled")

        # Cancel upload: Colab's empty result.
        msg_id = kernel.send("print(files.upload())")
        outputs = []
        for kind, content in kernel.outputs(msg_id):
            outputs.append((kind, content))
            if kind == "display_data" and "text/html" in content["data"]:
                cancel_id = re.search(r'<button id="([^"]+)"', content["data"]["text/html"])[1]
                chromium.render(content["data"]["text/html"])
                chromium.wait_enabled(cancel_id)
                chromium.element(cancel_id, "click()")
        assert _stdout(outputs) == "{}\n", outputs
        assert not list(colab.ws.root.glob("drivelab-upload-*"))
    finally:
        if kernel is not None:
            kernel.close()
        server.stop()


# --- last: the secret's value is nowhere but in its file ----------------------------------


def test_the_secret_is_nowhere_else(colab: Colab):
    """Every file the tests left (notebooks, logs, status.json, the drive, Jupyter's state) is free of the value."""
    secret_file = colab.ws.state / "secrets.json"
    assert colab.secret in secret_file.read_text()
    needle = colab.secret.encode()
    found = [p for p in colab.root.rglob("*") if p.is_file() and not p.is_symlink() and p != secret_file and needle in p.read_bytes()]
    assert found == []

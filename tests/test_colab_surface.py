"""The rest of ``google.colab`` that notebooks call, on the lab's real kernel: ``output``,
``patches.cv2_imshow``, ``auth``, ``files.view``, ``runtime.unassign`` and ``_message``.

One notebook runs every pattern in one kernel (nbclient, as papermill does; no browser);
its later cells tell the kernel a browser is attached (``set_lab_frontend('/base/')``, what
the lab's kernel does as it starts) to check the links that go through the lab. A second
notebook ends its kernel with ``runtime.unassign()``. Plain Python (a script, ``drivelab
run``) gets the headless behaviour, and importing the stand-in loads none of IPython,
numpy or PIL.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbclient
import nbformat
import numpy as np
import psutil
import pytest
from _notebooks import text_of
from PIL import Image

from drivelab.colab import install_kernel
from drivelab.workspace import init_workspace

SHIM = Path(__file__).resolve().parents[1] / "src" / "drivelab" / "colab" / "_shim"

BGR = [[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [40, 50, 60], [70, 80, 90]]]
BGRA = [[[255, 0, 0, 255], [0, 255, 0, 128]], [[0, 0, 255, 0], [1, 2, 3, 4]]]
GRAY = [[0, 64, 128], [192, 255, 7]]
FLOATS = [[-5.0, 0.4, 1.0], [127.9, 255.0, 300.0]]  # Colab clips to [0, 255] and truncates: no scaling

CELLS = {
    "imshow-bgr": f"import numpy as np\nfrom google.colab.patches import cv2_imshow\ncv2_imshow(np.array({BGR}, dtype=np.uint8))",
    "imshow-bgra": f"cv2_imshow(np.array({BGRA}, dtype=np.uint8))",
    "imshow-gray": f"cv2_imshow(np.array({GRAY}, dtype=np.uint8))",
    "imshow-gray1": f"cv2_imshow(np.array({GRAY}, dtype=np.uint8)[:, :, None])",
    "imshow-float": f"cv2_imshow(np.array({FLOATS}))",
    "imshow-bad": "cv2_imshow(np.zeros((2, 2, 2), dtype=np.uint8))",
    "clear": "print('before')\nfrom google.colab import output\noutput.clear()\nprint('after')",
    "clear-wait": "print('shown until the next output')\noutput.clear(wait=True)\nprint('the next output')",
    "quiet": (
        "print(output.enable_custom_widget_manager(), output.disable_custom_widget_manager(), output.no_vertical_scroll())\n"
        "with output.redirect_to_element('#somewhere'):\n    print('redirected')\n"
        "with output.use_tags('progress') as tags:\n    print('tagged', sorted(tags))\n"
        "with output.temporary():\n    print('temporary')"
    ),
    "callback": "output.register_callback('notebook.answer', lambda: 42)",
    "eval-headless": "print('result:', output.eval_js('1 + 1'))",
    "eval-ignored-headless": "print('result:', output.eval_js('1 + 1', ignore_result=True))",
    "window-headless": "output.serve_kernel_port_as_window(8000, path='/app/')",
    "iframe-headless": "output.serve_kernel_port_as_iframe(8001)",
    "bad-port": "output.serve_kernel_port_as_window(0)",
    "message": (
        "from google.colab import _message\n"
        "print(_message.blocking_request('get_ipynb', request='', timeout_sec=5), "
        "_message.send_request('x', {}), _message.read_reply_from_input('id', timeout_sec=1))"
    ),
    "auth-installed": (
        "from google.colab import auth\n"
        "try:\n    import google.auth\nexcept ImportError:\n    print('google-auth is not installed')\n"
        "else:\n    auth.authenticate_user()"
    ),
    "auth-missing": "import sys\nsys.modules['google.auth'] = None  # as if google-auth were not installed\nauth.authenticate_user(project_id='my-project')",
    "auth-fallback": "try:\n    auth.authenticate_user()\nexcept ImportError as e:\n    print('fallback taken:', type(e).__name__)",
    "view-headless": "import os\nos.makedirs('drive/viewed', exist_ok=True)\nopen('drive/viewed/a b.txt', 'w').close()\nfrom google.colab import files\nfiles.view('drive/viewed/a b.txt')",
    "view-missing": "files.view('drive/not-there.txt')",
    "uncovered": "from google.colab import widgets",
    "uncovered-attr": "import google.colab\nprint(getattr(google.colab, 'data_table', None))",
    # From here on a browser is attached, as in the lab.
    "attach": "from drivelab.colab._calls import set_lab_frontend\nset_lab_frontend('/base/')",
    "window-lab": "output.serve_kernel_port_as_window(8000, path='/app/?q=1&r=2', anchor_text='the <app>')",
    "iframe-lab": "output.serve_kernel_port_as_iframe(8001, path='dash', width='50%', height=300)",
    "eval-lab": "print('result:', output.eval_js(\"document.title = '</script><b>bold'\", ignore_result=True))",
    "eval-lab-result": "print('result:', output.eval_js('navigator.userAgent'))",
    "view-lab": "files.view('drive/viewed/a b.txt')",
    "view-lab-folder": "files.view('drive/viewed')",
    "view-lab-outside": "import tempfile\nfiles.view(tempfile.mkdtemp())",
    "detach": "set_lab_frontend(None)",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """A fresh workspace with the lab's kernelspec; no Google credentials anywhere the kernel could look."""
    tmp = tmp_path_factory.mktemp("surface")
    ws = init_workspace(tmp / "ws").workspace
    kernel = install_kernel(ws)
    home = tmp / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith(("DRIVELAB_", "JUPYTER", "GOOGLE_", "CLOUDSDK_"))]:
            mp.delenv(name)
        mp.setenv("JUPYTER_PATH", str(kernel.jupyter_path))
        for folder in ("config", "data", "runtime"):
            mp.setenv(f"JUPYTER_{folder.upper()}_DIR", str(home / "jupyter" / folder))
        mp.setenv("IPYTHONDIR", str(home / "ipython"))
        mp.setenv("HOME", str(home))  # no ~/.config/gcloud here
        mp.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
        mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(home / "missing.json"))
        mp.setenv("NO_GCE_CHECK", "True")  # google-auth: not a Compute Engine machine
        mp.setenv("NO_COLOR", "1")
        mp.setenv("COLUMNS", "120")
        yield ws


def execute(nb, ws, *, allow_errors: bool = True):
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        startup_timeout=120,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(ws.colab)}},  # where the lab starts a notebook's kernel
    )
    client.execute()
    return nb


def notebook(sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(scope="module")
def cells(lab):
    """Every pattern of :data:`CELLS`, run in order in one kernel: name -> the executed cell."""
    nb = execute(notebook(CELLS.values()), lab)
    return dict(zip(CELLS, nb.cells))


def error_of(cell):
    errors = [o for o in cell.outputs if o["output_type"] == "error"]
    return (errors[0]["ename"], errors[0]["evalue"]) if errors else None


def html_of(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def png_of(cell) -> np.ndarray:
    images = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, cell.outputs
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(images[0]))))


def test_cv2_imshow_shows_bgr_as_rgb_png(cells):
    bgr = np.array(BGR, dtype=np.uint8)
    assert error_of(cells["imshow-bgr"]) is None
    assert np.array_equal(png_of(cells["imshow-bgr"]), bgr[..., ::-1])
    bgra = np.array(BGRA, dtype=np.uint8)
    assert np.array_equal(png_of(cells["imshow-bgra"]), bgra[..., [2, 1, 0, 3]])  # alpha kept


def test_cv2_imshow_grayscale_and_floats(cells):
    gray = np.array(GRAY, dtype=np.uint8)
    assert np.array_equal(png_of(cells["imshow-gray"]), gray)
    assert np.array_equal(png_of(cells["imshow-gray1"]), gray)  # (N, M, 1) is grayscale too
    expected = np.array([[0, 0, 1], [127, 255, 255]], dtype=np.uint8)  # clipped to [0, 255], then truncated
    assert np.array_equal(png_of(cells["imshow-float"]), expected)
    ename, evalue = error_of(cells["imshow-bad"])
    assert ename == "ValueError" and "(2, 2, 2)" in evalue and "BGR" in evalue


def test_output_clear_removes_what_the_cell_showed(cells):
    assert text_of(cells["clear"]) == "after\n"
    assert text_of(cells["clear-wait"]) == "the next output\n"


def test_output_helpers_that_only_arrange_outputs_change_nothing(cells):
    quiet = cells["quiet"]
    assert error_of(quiet) is None
    assert text_of(quiet) == "None None None\nredirected\ntagged ['progress']\ntemporary\n"


def test_register_callback_warns_that_the_browser_cannot_call_back(cells):
    text = text_of(cells["callback"])
    assert "UserWarning" in text and "notebook.answer" in text and "never called" in text


def test_eval_js_without_a_browser(cells):
    text = text_of(cells["eval-headless"])
    assert "result: None\n" in text
    assert "UserWarning" in text and "eval_js" in text and "cannot return" in text
    assert text_of(cells["eval-ignored-headless"]) == "result: None\n"  # nothing to run it: nothing shown, no warning
    assert not html_of(cells["eval-ignored-headless"])


def test_eval_js_with_a_browser_runs_the_script(cells):
    ignored = cells["eval-lab"]
    assert text_of(ignored) == "result: None\n"
    html = html_of(ignored)
    assert html.count("<script>") == 1 and html.count("</script>") == 1  # the script's own '</script>' is escaped
    assert "document.title" in html and "\\u003c/script\\u003e\\u003cb\\u003ebold" in html
    asked = cells["eval-lab-result"]
    assert "navigator.userAgent" in html_of(asked)  # it still runs in the browser
    text = text_of(asked)
    assert "result: None\n" in text and "UserWarning" in text and "cannot return" in text


def test_serve_kernel_port_without_a_browser_prints_the_loopback_url(cells):
    assert "http://127.0.0.1:8000/app/" in text_of(cells["window-headless"])
    assert "http://127.0.0.1:8001/" in text_of(cells["iframe-headless"])
    assert not html_of(cells["window-headless"])
    ename, evalue = error_of(cells["bad-port"])
    assert ename == "ValueError" and "port" in evalue


def test_serve_kernel_port_in_the_lab_goes_through_the_lab(cells):
    html = html_of(cells["window-lab"])
    assert 'href="/base/proxy/8000/app/?q=1&amp;r=2"' in html and 'target="_blank"' in html
    assert "the &lt;app&gt;" in html
    assert "127.0.0.1:8000" in text_of(cells["window-lab"])  # the text form names the port
    iframe = html_of(cells["iframe-lab"])
    assert '<iframe src="/base/proxy/8001/dash"' in iframe and 'width="50%"' in iframe and 'height="300"' in iframe


def test_the_lab_reaches_a_port_of_the_machine_at_proxy_port(tmp_path):
    """What the links lead to: ``drivelab lab`` serves ``<base_url>proxy/PORT/PATH`` from the server at PORT, behind its token."""
    from test_lab import http, start_cli_lab, stop

    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.txt").write_text("served by the notebook's server")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    lab = start_cli_lab(init_workspace(tmp_path / "ws").workspace.root, tmp_path / "jupyter")
    try:
        assert http(f"{lab.base}proxy/{port}/hello.txt", token=lab.token) == (200, b"served by the notebook's server")
        status, body = http(f"{lab.base}proxy/{port}/hello.txt")  # without the token: the login page, never the file
        assert b"served by the notebook's server" not in body
    finally:
        stop(lab)
        server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def test_blocking_request_returns_none(cells):
    assert text_of(cells["message"]) == "None None None\n"


def test_authenticate_user_without_credentials_names_gcloud(cells):
    installed = cells["auth-installed"]
    if text_of(installed).strip() != "google-auth is not installed":
        ename, evalue = error_of(installed)
        assert ename == "AuthorizationError" and "gcloud auth application-default login" in evalue
        assert "missing.json" in evalue  # what google-auth found wrong
    ename, evalue = error_of(cells["auth-missing"])
    assert ename == "GoogleAuthMissingError"
    assert "pip install google-auth" in evalue and "gcloud auth application-default login" in evalue
    # Its class is also an ImportError: `try: ... except ImportError:` fallbacks still work.
    assert text_of(cells["auth-fallback"]) == "fallback taken: GoogleAuthMissingError\n"


def test_files_view(cells, lab):
    path = (lab.root / "drive" / "viewed" / "a b.txt").resolve()
    assert str(path) in text_of(cells["view-headless"])
    assert error_of(cells["view-missing"]) == ("FileNotFoundError", "Cannot find file: drive/not-there.txt")
    assert 'href="/base/lab/tree/drive/viewed/a%20b.txt"' in html_of(cells["view-lab"])
    assert 'href="/base/lab/tree/drive/viewed"' in html_of(cells["view-lab-folder"])
    ename, evalue = error_of(cells["view-lab-outside"])
    assert ename == "NotInWorkspaceError" and str(lab.root) in evalue


def test_what_is_not_covered_still_says_what_is(cells):
    ename, evalue = error_of(cells["uncovered"])
    assert ename == "NotCoveredError"
    for name in ("drive", "files", "userdata", "output", "patches", "auth", "runtime"):
        assert f"google.colab.{name}" in evalue
    assert text_of(cells["uncovered-attr"]) == "None\n"
    assert all(error_of(cells[name]) is None for name in ("attach", "detach", "view-lab", "window-lab", "eval-lab"))


def test_runtime_unassign_ends_the_kernel(lab):
    nb = notebook(
        [
            "import os\nprint(os.getpid())",
            "from google.colab import runtime\nruntime.unassign()",
            "print('still running')",
        ]
    )
    with pytest.raises(nbclient.exceptions.DeadKernelError):
        execute(nb, lab, allow_errors=False)
    pid, ended, after = nb.cells
    assert "Ending this runtime" in text_of(ended)
    assert after.outputs == []
    assert not psutil.pid_exists(int(text_of(pid))) or psutil.Process(int(text_of(pid))).status() == psutil.STATUS_ZOMBIE


def shim_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_", "PYTHON"))}
    env["PYTHONPATH"] = str(SHIM)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_plain_python_gets_the_headless_behaviour(lab):
    code = (
        "import numpy as np\n"
        "from google.colab import output, files, patches, runtime\n"
        "output.serve_kernel_port_as_window(8000, path='/app')\n"
        "output.clear()\n"
        "print('eval:', output.eval_js('1 + 1'))\n"
        "patches.cv2_imshow(np.zeros((4, 3, 3), dtype=np.uint8))\n"
        "open('notes.txt', 'w').close()\n"
        "files.view('notes.txt')\n"
        "runtime.unassign()\n"
        "print('not reached')\n"
    )
    done = shim_python(code, lab.root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "http://127.0.0.1:8000/app" in lines[0]
    assert lines[1] == "eval: None" and "UserWarning" in done.stderr
    assert "3x4" in lines[2]  # what would have been shown
    assert str((lab.root / "notes.txt").resolve()) in lines[3]
    assert "Ending this runtime" in lines[4] and "not reached" not in done.stdout


def test_importing_the_stand_in_stays_cheap(tmp_path):
    code = (
        "import sys\n"
        "import google.colab\n"
        "from google.colab import drive, files, userdata, output, patches, auth, runtime, errors, _message\n"
        "print(sorted(m for m in ('IPython', 'numpy', 'PIL', 'google.auth') if m in sys.modules))"
    )
    done = shim_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"

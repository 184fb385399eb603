"""``/content`` is the workspace, in lab kernels and jobs, for a user without root; private to each workspace.

Real parts throughout: ``drivelab setup colab`` (the one step with root) makes
``/content``; a user made with ``useradd`` runs real drivelab kernels (two
workspaces at once) and ``drivelab run`` jobs through ``runuser``; a drive on
a loopback S3 server is attached from inside a kernel's namespace by its
keeper outside it, with a real FUSE mount, and that server is stopped to make
a flush fail on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import psutil
import pytest
from _guards import skip_or_fail
from _notebooks import lab_kernel_workspace, text_of

from drivelab import drive
from drivelab.colab import content_status, setup_machine
from drivelab.errors import ColabError
from drivelab.jobs import JobSpec, run_job
from drivelab.workspace import Workspace, init_workspace

if TYPE_CHECKING:
    from _users import PlainUser

pytest_plugins = ["_users"]  # the `test_user` fixture

CONTENT = Path("/content")
SHIM = Path(__file__).resolve().parents[1] / "src" / "drivelab" / "colab" / "_shim"


@pytest.fixture(scope="module")
def machine() -> dict:
    """``sudo drivelab setup colab`` done, through the real CLI (idempotent: a second run changes nothing)."""
    if sys.platform != "linux":
        skip_or_fail("/content for each workspace needs Linux mount namespaces")
    if not CONTENT.is_dir() and os.geteuid() != 0:
        skip_or_fail("/content is missing and making it needs root: run `sudo drivelab setup colab`")
    runs = [subprocess.run([sys.executable, "-m", "drivelab", "setup", "colab", "--json"], capture_output=True, text=True, timeout=60, check=False) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr
    _first, second = (json.loads(done.stdout) for done in runs)
    assert second["created"] is False and second["user_namespaces"] is True
    assert second["notes"] == [] or not second["notes"][0].startswith("made / a shared mount")  # done once, not again
    assert CONTENT.is_dir() and os.stat(CONTENT).st_uid == 0
    return second


# --- as a user without root ------------------------------------------------------------------

KERNELS = textwrap.dedent(
    """
    # Start one drivelab kernel per workspace, all at once, then run the cells on each in turn.
    import json, sys
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from drivelab.colab import install_kernel
    from pathlib import Path
    from drivelab.workspace import Workspace

    plan = json.loads(sys.argv[1])
    kernels = []
    for root in plan["workspaces"]:
        spec = install_kernel(Workspace(Path(root)))
        km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.path.parent)]))
        km.start_kernel(cwd=root + "/drive/colab")
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        kernels.append((root, km, kc))
    seen = {root: [] for root in plan["workspaces"]}
    try:
        for cell in plan["cells"]:
            for root, km, kc in kernels:
                out = {"text": "", "error": None}
                def hook(msg, out=out):
                    kind, content = msg["msg_type"], msg["content"]
                    if kind == "stream":
                        out["text"] += content["text"]
                    elif kind == "error":
                        out["error"] = content["ename"] + ": " + content["evalue"]
                    elif kind in ("display_data", "execute_result"):
                        out.setdefault("data", []).append(content["data"])
                kc.execute_interactive(cell.replace("NAME", repr(root.rsplit("/", 1)[1])), output_hook=hook, timeout=120)
                seen[root].append(out)
    finally:
        for root, km, kc in kernels:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    print(json.dumps(seen))
    """
)


def _user_workspaces(user: PlainUser, tmp_path: Path, *names: str) -> tuple[Path, list[Workspace]]:
    home = user.home(tmp_path.name)
    made = []
    for name in names:
        done = user.run([str(user.python), "-m", "drivelab", "init", str(home / name)], home=home)
        assert done.returncode == 0, done.stderr
        made.append(Workspace(home / name))
    return home, made


def test_two_workspaces_each_see_their_own_content(machine: dict, test_user: PlainUser, tmp_path: Path):
    """Two kernels of two workspaces at once: each reads and writes its own workspace at /content; nobody else sees either."""
    home, (alpha, beta) = _user_workspaces(test_user, tmp_path, "alpha", "beta")
    before = sorted(os.listdir(CONTENT))
    cells = [
        "import os\nopen('/content/who.txt', 'w').write(NAME)\nprint(os.getuid())",
        "print(open('/content/who.txt').read(), sorted(os.listdir('/content')))",
        "from google.colab import drive\ndrive.mount('/content/drive')",
        "open('/content/drive/MyDrive/mine.txt', 'w').write(NAME)\nprint(open('/content/drive/My Drive/mine.txt').read(), sorted(os.listdir('/content/drive')))",
        "%cd /content\nprint(os.getcwd())\n!cat /content/who.txt; echo; ls /content/drive/MyDrive/mine.txt",
    ]
    plan = json.dumps({"workspaces": [str(alpha.root), str(beta.root)], "cells": cells})
    script = home / "kernels.py"
    script.write_text(KERNELS)
    done = test_user.run([str(test_user.python), str(script), plan], home=home, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    for ws in (alpha, beta):
        name = ws.root.name
        out = seen[str(ws.root)]
        assert [o["error"] for o in out] == [None] * len(cells), out
        assert out[0]["text"].strip() == str(test_user.uid)  # not root inside, and no root was needed
        assert out[1]["text"].startswith(f"{name} ['.drivelab', 'drive', 'who.txt']"), out[1]
        assert "Mounted at /content/drive" in out[2]["text"]
        assert out[3]["text"].strip() == f"{name} ['My Drive', 'MyDrive']"
        assert out[4]["text"].splitlines() == ["/content", "/content", name, "/content/drive/MyDrive/mine.txt"]
        # What landed, seen from outside: the workspace's own files, its drive.
        assert (ws.root / "who.txt").read_text() == name
        assert (ws.drive / "mine.txt").read_text() == name
        assert (ws.root / ".drivelab" / "colab" / "drive" / "MyDrive").resolve() == ws.drive.resolve()
    assert sorted(os.listdir(CONTENT)) == before  # the machine's /content is untouched


def test_a_job_sees_its_workspace_at_content(machine: dict, test_user: PlainUser, tmp_path: Path):
    """drivelab run, a script and a notebook, as the user without root: /content paths land in the workspace and its drive."""
    home, (ws,) = _user_workspaces(test_user, tmp_path, "lab")
    (ws.colab / "job.py").write_text(
        "import os\n"
        "from google.colab import drive\n"
        "drive.mount('/content/drive')\n"
        "open('/content/drive/MyDrive/from-job.txt', 'w').write('job')\n"
        "open('/content/scratch.txt', 'w').write('scratch')\n"
        "print('uid', os.getuid(), 'content', sorted(os.listdir('/content')))\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.path.isdir('/content/drive/colab'), os.path.isdir('drive/colab'))\n"
                                          "from google.colab import drive\ndrive.mount('/content/gdrive')\n"
                                          "open('/content/gdrive/MyDrive/from-notebook.txt', 'w').write('nb')"),
                nbformat.v4.new_code_cell("from google.colab import runtime\nruntime.unassign()  # as notebooks written on Colab end, to free the GPU")]
    nbformat.write(nb, ws.colab / "job.ipynb")
    test_user.own(ws.root)
    for run, script in (("py", "drive/colab/job.py"), ("nb", "drive/colab/job.ipynb")):
        done = test_user.run([str(test_user.python), "-m", "drivelab", "run", "--run", run, "--restarts", "0", script], home=home, cwd=ws.root)
        assert done.returncode == 0, done.stdout + done.stderr
    log = (ws.run_dir("py") / "log").read_text()
    assert f"uid {test_user.uid} content ['.drivelab', 'drive', 'scratch.txt']" in log, log
    assert (ws.drive / "from-job.txt").read_text() == "job"
    assert (ws.root / "scratch.txt").read_text() == "scratch"
    out = nbformat.read(ws.run_dir("nb") / "job.ipynb", as_version=4)
    # /content/drive is the mount folder (empty until drive.mount), not the workspace's drive/: False.
    assert text_of(out.cells[0]).startswith("False True\nMounted at /content/gdrive"), text_of(out.cells[0])
    assert (ws.drive / "from-notebook.txt").read_text() == "nb"
    assert "ends when the job ends" in text_of(out.cells[1])  # the job's runtime: the job succeeded
    assert (ws.root / "gdrive" / "MyDrive").resolve() == ws.drive.resolve()


PATTERNS = [
    'epochs = 2  #@param {type:"slider", min:1, max:10}\nsize = "base"  #@param ["base", "large"]',
    "print('bound', epochs, size)",
    "%%shell\necho from-bash\necho $((6*7)) > /content/shell.txt",
    "import subprocess\ntry:\n    get_ipython().run_cell_magic('shell', '', 'exit 3')\nexcept subprocess.CalledProcessError as e:\n    print('shell failed', e.returncode)",
    "import numpy as np\nfrom google.colab.patches import cv2_imshow\nimage = np.zeros((4, 6, 3), np.uint8)\nimage[..., 0] = 255  # blue, in OpenCV's BGR\ncv2_imshow(image)",
    "from google.colab import auth\ntry:\n    auth.authenticate_user()\nexcept Exception as e:\n    print('auth', type(e).__name__)",
    "from google.colab import drive\ndrive.mount('/content/drive')\nopen('/content/drive/MyDrive/patterns.txt', 'w').write(f'{epochs} {size}')",
]


def _first_pixel(png_base64: str) -> tuple[int, ...]:
    import base64
    import io

    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(png_base64))).convert("RGB").getpixel((0, 0))


def test_colab_patterns_as_a_user_without_root(machine: dict, test_user: PlainUser, tmp_path: Path):
    """One notebook of Colab's patterns, in a lab kernel and through drivelab run -p, as the user without root:
    the form bound, %%shell's output and file, CalledProcessError, a PNG of the RGB image, auth's error, the drive."""
    home, (ws,) = _user_workspaces(test_user, tmp_path, "patterns")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in PATTERNS])
    nbformat.write(nb, ws.colab / "patterns.ipynb")
    test_user.own(ws.root)

    # The lab's kernel.
    script = home / "kernels.py"
    script.write_text(KERNELS)
    done = test_user.run([str(test_user.python), str(script), json.dumps({"workspaces": [str(ws.root)], "cells": PATTERNS})], home=home)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])[str(ws.root)]
    assert [o["error"] for o in seen] == [None] * len(PATTERNS), seen
    assert seen[1]["text"] == "bound 2 base\n" and seen[2]["text"] == "from-bash\n" and seen[3]["text"] == "shell failed 3\n"
    assert _first_pixel(seen[4]["data"][0]["image/png"]) == (0, 0, 255)
    assert seen[5]["text"] == "auth GoogleAuthMissingError\n"
    assert (ws.root / "shell.txt").read_text() == "42\n" and (ws.drive / "patterns.txt").read_text() == "2 base"

    # A job, the form's values given with -p.
    done = test_user.run([str(test_user.python), "-m", "drivelab", "run", "--run", "p", "--restarts", "0", "-p", "epochs", "5", "-p", "size", "large",
                          "drive/colab/patterns.ipynb"], home=home, cwd=ws.root)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = nbformat.read(ws.run_dir("p") / "patterns.ipynb", as_version=4)
    assert [text_of(c) for c in out.cells[1:4]] == ["bound 5 large\n", "from-bash\n", "shell failed 3\n"]
    png = [o for o in out.cells[4].outputs if "image/png" in o.get("data", {})]
    assert len(png) == 1 and _first_pixel(png[0]["data"]["image/png"]) == (0, 0, 255)
    assert text_of(out.cells[5]) == "auth GoogleAuthMissingError\n"
    assert (ws.drive / "patterns.txt").read_text() == "5 large"
    # A value the slider does not allow: a usage error, before anything starts.
    done = test_user.run([str(test_user.python), "-m", "drivelab", "run", "--run", "q", "-p", "epochs", "50", "drive/colab/patterns.ipynb"], home=home, cwd=ws.root)
    assert done.returncode == 2 and "epochs" in done.stderr and "from 1 to 10" in " ".join(done.stderr.split()), done.stderr
    assert not ws.run_dir("q").exists()


def test_outside_a_kernel_or_job_content_paths_say_what_to_do(machine: dict, test_user: PlainUser, tmp_path: Path):
    """Plain python, not started by drivelab: /content is the machine's root-owned folder; the error names the way."""
    home, (ws,) = _user_workspaces(test_user, tmp_path, "plain")
    shim = str(SHIM)
    code = (
        "import os, sys; sys.path.append(" + repr(shim) + ")\n"
        "from google.colab import drive\n"
        "try:\n    drive.mount('/content/drive')\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = test_user.run([str(test_user.python), "-c", code], home=home, cwd=ws.root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ColabError cannot create /content/drive: Permission denied"), done.stdout
    assert "run the code in the lab or with `drivelab run`" in done.stdout
    probe = "from drivelab.colab import content_status; import json; print(json.dumps(content_status().to_dict()))"
    status = json.loads(test_user.run([str(test_user.python), "-c", probe], home=home).stdout)
    assert status["available"] is False and "not started in its workspace's /content" in status["why"]


def test_setup_colab_as_the_user_changes_nothing(machine: dict, test_user: PlainUser, tmp_path: Path):
    home = test_user.home(tmp_path.name)
    done = test_user.run([str(test_user.python), "-m", "drivelab", "setup", "colab", "--json"], home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {**machine, "kind": "setup.colab", "created": False}


def test_setup_refuses_what_is_in_the_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from drivelab.colab import _content

    (tmp_path / "content").write_text("a file, not a folder")
    monkeypatch.setattr(_content, "CONTENT", tmp_path / "content")
    with pytest.raises(ColabError, match="is in the way: it is not a folder") as failure:
        setup_machine()
    assert "drivelab setup colab" in (failure.value.hint or "")
    assert (tmp_path / "content").read_text() == "a file, not a folder"


# --- the drive, attached from inside the namespace by its keeper -----------------------------


@pytest.fixture
def kernel_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: dict):
    ws = lab_kernel_workspace(tmp_path, monkeypatch)
    yield ws
    state = drive.status(ws)
    if state.watchdog_pid:
        try:
            drive.detach(ws, timeout=60, force=True)
        except drive.DriveError:
            os.kill(state.watchdog_pid, 9)
    if os.path.ismount(ws.drive):
        subprocess.run(["fusermount3", "-uz", str(ws.drive)], check=False)


class Kernel:
    """One drivelab kernel, kept for several cells."""

    def __init__(self, ws: Workspace) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(ws.root))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.pid = self.km.provisioner.pid

    def run(self, code: str, timeout: float = 180) -> tuple[str, str, str | None]:
        out, err, error = [], [], []

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif msg["msg_type"] == "error":
                error.append(f"{content['ename']}: {content['evalue']}")

        self.kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        return "".join(out), "".join(err), error[0] if error else None

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _mount_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def test_a_remote_drive_mounted_from_a_kernel_lives_outside_its_namespace(kernel_ws: Workspace, s3, monkeypatch: pytest.MonkeyPatch):
    ws = kernel_ws
    bucket = f"content{os.getpid()}"
    drive.connect(ws, "box", "s3", s3.options(), root=bucket)
    drive.attach(ws, "box", local_files="copy", timeout=60)  # the workspace's drive from now on
    assert drive.detach(ws, timeout=60).detached
    kernel = Kernel(ws)
    keepers: list[psutil.Process] = []
    try:
        assert _mount_namespace(kernel.pid) != _mount_namespace(os.getpid())  # the kernel has its own
        out, err, error = kernel.run("from google.colab import drive\ndrive.mount('/content/drive')")
        assert error is None and out.startswith("Mounted at /content/drive"), (out, err, error)
        state = drive.status(ws)
        assert state.live and state.mode == "mount" and os.path.ismount(ws.drive)  # seen from outside: the keeper made it here
        assert _mount_namespace(state.watchdog_pid) == _mount_namespace(os.getpid())
        out, err, error = kernel.run("open('/content/drive/MyDrive/ckpt.txt', 'w').write('weights')\ndrive.flush_and_unmount()")
        assert error is None and out.strip() == "All changes made in this colab session should now be visible in Drive.", (out, err)
        assert (s3.backing / bucket / "ckpt.txt").read_text() == "weights"
        assert not drive.status(ws).live

        # readonly=True: that mount only. Writing fails; the next attach (a job's, the lab's) is read-write.
        out, err, error = kernel.run("drive.mount('/content/drive', readonly=True)\n"
                                     "try:\n    open('/content/drive/MyDrive/no.txt', 'w').write('x')\nexcept OSError as exc:\n    print('refused', exc.errno)")
        assert error is None and "refused 30" in out, (out, err)  # EROFS
        assert drive.status(ws).read_only
        kernel.run("drive.flush_and_unmount()")
        again = drive.attach(ws)
        assert not again.read_only
        (ws.drive / "yes.txt").write_text("x")  # read-write again
        # A read-only mount asked of a drive attached read-write already: it says so, and stays read-write.
        out, err, error = kernel.run("drive.mount('/content/drive', readonly=True)")
        assert error is None and "attached read-write already" in err and "readonly=True did not change it" in err, (out, err)
        assert not drive.status(ws).read_only

        # The server stops answering: uploads cannot land. No Colab line: a warning with the pending count.
        kernel.run("open('/content/drive/MyDrive/late.txt', 'w').write('late')")
        s3.stop()
        try:
            out, err, error = kernel.run("import warnings\nwarnings.simplefilter('always')\ndrive.flush_and_unmount(timeout_ms=4000)", timeout=240)
        finally:
            s3.restart()
        assert error is None, (out, err, error)
        assert "All changes" not in out, out
        assert "Drive unmounted with" in err and "upload(s) pending" in err and "next drive.mount()" in err, err
        keepers = psutil.Process(kernel.pid).children()
        assert len(keepers) == 1 and keepers[0].cmdline()[1:4] == ["-m", "drivelab.colab._content", "--keeper"]  # named so in `ps`
        assert _mount_namespace(keepers[0].pid) == _mount_namespace(os.getpid())  # outside
    finally:
        kernel.close()
    # The keeper ends with its kernel.
    gone, alive = psutil.wait_procs(keepers, timeout=10)
    assert not alive


def test_a_library_caller_gets_the_colab_environment(tmp_path: Path, machine: dict):
    """drivelab.jobs applies the Colab environment itself: no CLI in between."""
    ws = init_workspace(tmp_path / "ws").workspace
    (ws.colab / "where.py").write_text("import os, google.colab\nprint('content is workspace', os.path.samefile('/content', os.getcwd()), google.colab.IS_DRIVELAB)\n")
    lines: list[str] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        status = run_job(ws, JobSpec(ws.colab / "where.py", run="lib", restarts=0), on_line=lines.append)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert status.state == "succeeded", lines
    assert "content is workspace True True" in lines
    assert status.spec["env"]["PYTHONPATH"] == str(SHIM)
    assert content_status(ws.root).available is False  # this test process itself never entered


def test_a_killed_keeper_is_a_clear_error_not_a_hang(kernel_ws: Workspace):
    """SIGKILL the keeper: the kernel's next drive.mount says what happened and what to do, at once."""
    kernel = Kernel(kernel_ws)
    try:
        out, err, error = kernel.run("from google.colab import drive\ndrive.mount('/content/drive')")
        assert error is None, (out, err, error)
        (keeper,) = psutil.Process(kernel.pid).children()
        keeper.kill()
        deadline = time.monotonic() + 10  # a child of the kernel's: a zombie until the kernel reaps it
        while keeper.is_running() and keeper.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        out, err, error = kernel.run("drive.mount('/content/drive', force_remount=True)", timeout=60)
        assert error is not None and error.startswith("ColabError: the process that attaches the drive for this kernel or job is gone"), error
        assert "restart the kernel" in error
        # The rest of the kernel is unharmed: /content still works.
        out, err, error = kernel.run("open('/content/after.txt', 'w').write('ok')")
        assert error is None and (kernel_ws.root / "after.txt").read_text() == "ok"
    finally:
        kernel.close()


def test_no_namespace_where_mounts_would_not_reach_it(machine: dict, tmp_path: Path):
    """In a mount namespace whose / is private (as on a machine without systemd before `setup colab`),
    entering is refused with the reason: a remount of the drive would never reach such a /content."""
    ws = init_workspace(tmp_path / "ws").workspace
    probe = (
        "import json; from drivelab.colab._content import enter_content\n"
        f"print(json.dumps(enter_content({str(ws.root)!r}).to_dict()))"
    )
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", probe],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    if done.returncode != 0 and "unshare" in done.stderr:
        skip_or_fail(f"cannot make a private mount namespace here: {done.stderr.strip()}")
    found = json.loads(done.stdout)
    assert found["available"] is False and "is a private mount on this machine" in found["why"], found
    assert "sudo drivelab setup colab" in found["hint"]
    assert not (ws.root / ".drivelab" / "colab").exists()  # nothing made


def test_drivelab_commands_typed_in_a_kernel_attach_the_drive_outside(kernel_ws: Workspace, s3):
    """`%drivelab drive mount` and `!drivelab drive unmount` in a kernel: run by the keeper, so the mount is the machine's."""
    ws = kernel_ws
    drive.connect(ws, "box", "s3", s3.options(), root=f"typed{os.getpid()}")
    drive.attach(ws, "box", local_files="copy", timeout=60)
    assert drive.detach(ws, timeout=60).detached
    kernel = Kernel(ws)
    try:
        out, err, error = kernel.run("%drivelab drive mount")
        assert error is None, (out, err, error)
        state = drive.status(ws)
        assert state.live and os.path.ismount(ws.drive), (out, err)
        assert _mount_namespace(state.watchdog_pid) == _mount_namespace(os.getpid())
        out, err, error = kernel.run("open('drive/typed.txt', 'w').write('typed')\n!drivelab drive unmount; echo exit $?")
        assert error is None and "exit 0" in out, (out, err)
        assert not os.path.ismount(ws.drive) and not drive.status(ws).live
        assert (s3.backing / f"typed{os.getpid()}" / "typed.txt").read_text() == "typed"
        out, err, error = kernel.run("!drivelab drive status --json")  # not forwarded: it only reads
        assert error is None and '"live": false' in out, out
    finally:
        kernel.close()

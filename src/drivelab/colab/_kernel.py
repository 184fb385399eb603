"""The lab's kernel (``python -m drivelab.colab._kernel -f CONNECTION_FILE``), and what a job gets of it.

An ordinary IPython kernel (ipykernel), set up the way a Colab runtime is:

- its working folder is the workspace root, as Colab's is ``/content``, so
  ``!python drive/colab/main.py`` and ``drive/...`` paths work from any notebook;
- the workspace root is seen at ``/content`` too, where the machine allows it
  (see :mod:`drivelab.colab._content`);
- this interpreter's folder comes first on ``PATH``, so ``!python`` and
  ``!drivelab`` are the kernel's own;
- Colab's magics (``%shell``, ``%%shell``, ``%tensorflow_version``) and ``%drivelab`` are loaded;
- when no real ``google.colab`` can be imported, drivelab's stand-in is
  (for this kernel and the processes it starts);
- a browser is attached when the lab's server started it (see
  :func:`drivelab.colab._calls.lab_base_url`).

Jobs (``drivelab run``) get the same through :func:`job_environment`: the
stand-in on ``PYTHONPATH`` for a script, a torchrun worker or a notebook's
kernel, and for a notebook this kernel itself (the workspace's kernelspec
``python3``, found first on ``JUPYTER_PATH``); ``drivelab.jobs`` runs their
command through :func:`drivelab.colab.content_command` for ``/content``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from drivelab.colab._calls import LAB_BASE_URL_ENV, set_lab_frontend
from drivelab.workspace import WORKSPACE_ENV, Workspace

__all__ = ["SHIM", "has_real_colab", "job_environment", "prepare_environment"]

SHIM = Path(__file__).resolve().parent / "_shim"
_SERVER_MODULE = "drivelab.lab._serve"
"""What the lab's server runs as (``python -m drivelab.lab._serve``): a kernel whose parent it is has a browser."""


def has_real_colab() -> bool:
    """A ``google.colab`` other than drivelab's stand-in can be imported (Colab's own, or one the user installed)."""
    try:
        spec = importlib.util.find_spec("google.colab")
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = [spec.origin or "", *(spec.submodule_search_locations or [])]
    return not any(p and Path(p).resolve().is_relative_to(SHIM) for p in places)


def _started_by_the_lab() -> bool:
    """The parent process is the lab's Jupyter server (which starts kernels as its own children)."""
    try:
        import psutil
    except ImportError:
        return False
    try:
        return _SERVER_MODULE in psutil.Process(os.getppid()).cmdline()
    except (psutil.Error, OSError):  # gone, or not ours to look at: no browser, never a failure
        return False


def prepare_environment() -> list[str]:
    """Set up this process as a lab kernel; returns what was done, for the log."""
    done = []
    root = os.environ.get(WORKSPACE_ENV)
    if root and Path(root).is_dir():
        os.chdir(root)
        done.append(f"cwd {root}")
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[p for p in path if p]])
    # Only this kernel may believe a browser is attached: what it starts (a script, papermill) has none.
    base_url = os.environ.pop(LAB_BASE_URL_ENV, "")
    if base_url and _started_by_the_lab():
        set_lab_frontend(base_url)
        done.append(f"lab frontend at {base_url}")
    if not has_real_colab():
        # Appended, never prepended: a real google.colab (or any google.* package) always wins.
        if str(SHIM) not in sys.path:
            sys.path.append(str(SHIM))
        children = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if str(SHIM) not in children:
            os.environ["PYTHONPATH"] = os.pathsep.join([*children, str(SHIM)])
        done.append("google.colab shim")
    return done


def job_environment(ws: Workspace, *, notebook: bool = False) -> dict[str, str]:
    """What a job of ``ws`` adds to its environment so that Colab code runs there as in the lab.

    For :attr:`drivelab.jobs.JobSpec.env` (merged into the inherited environment as
    its docstring says: folders after the inherited ones, an empty value removes):

    - ``PYTHONPATH``: the ``google.colab`` stand-in, unless a real one can be
      imported (checked here, with this interpreter, which the job uses too);
    - ``DRIVELAB_LAB_BASE_URL`` empty, so removed: a job has no browser, even
      one started from the lab's terminal;
    - for a notebook, ``JUPYTER_PATH``: the workspace's kernelspec folder
      (written now if needed), so that papermill's ``python3`` is the lab's
      kernel: working folder the workspace root, the stand-in, ``%drivelab``.
      A ``python3`` kernelspec on a ``JUPYTER_PATH`` the user set comes first.

    Never a secret: the spec and so this environment are recorded in ``status.json``.
    """
    env = {LAB_BASE_URL_ENV: ""}
    if not has_real_colab():
        env["PYTHONPATH"] = str(SHIM)
    if notebook:
        from drivelab.colab._kernelspec import install_kernel

        env["JUPYTER_PATH"] = str(install_kernel(ws).jupyter_path)
    return env


def main() -> None:
    root = os.environ.get(WORKSPACE_ENV)
    if root and Path(root).is_dir():
        # First, while this process has one thread: user namespaces need it.
        from drivelab.colab._content import enter_content

        enter_content(root)
    prepare_environment()
    from ipykernel.kernelapp import launch_new_instance

    # Cheap (their names load on use), and `import drivelab; drivelab.runtime.info()` then works.
    import drivelab.drive
    import drivelab.runtime  # noqa: F401

    launch_new_instance(argv=[*sys.argv[1:], "--ext=drivelab.colab"])


if __name__ == "__main__":
    main()

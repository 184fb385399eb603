"""JupyterLab on the workspace.

::

    from drivelab.lab import start_lab
    server = start_lab("~/lab", port=8888)   # init if needed, attach the drive, start JupyterLab
    print(server.lab_url)                   # http://127.0.0.1:8888/lab?token=...
    stopped = server.stop()                 # stop the server and its kernels, flush and detach the drive

Kernels started by the lab are the workspace's Colab kernel (see
:mod:`drivelab.colab`: the ``google.colab`` stand-in, ``/content``, Colab's
magics, the workspace's secrets). The Jupyter server extension
(``drivelab.lab``) serves the API of the lab's panels under ``/drivelab/api/``
(the runtime, the doctor, the drive, secrets, jobs: :mod:`drivelab.lab._extension`)
and the "Connect a drive" pages under ``/drivelab/connect`` (sign in to a cloud drive, then attach it). In any IPython, ``%load_ext drivelab.lab`` adds
the kernel's magics (``%drivelab``, ``%shell``, ...). Names load on first use: importing this package does
not import Jupyter.
"""

from __future__ import annotations

from typing import Any

from drivelab import colab
from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_server": ["LabServer", "LabStopped", "start_lab"],
    "_documents": ["runtime_document", "doctor_document", "drive_document", "status_document", "secrets_document", "jobs_document"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*__all__, "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext drivelab.lab``: the kernel's magics, ``%drivelab`` among them (see :mod:`drivelab.colab`)."""
    colab.load_ipython_extension(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    # The Jupyter server finds the extension's loader here (``drivelab.lab`` is enabled by name).
    return [{"module": "drivelab.lab._extension"}]

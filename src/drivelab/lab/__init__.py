"""JupyterLab on the workspace, kernel integration, Colab compatibility.

::

    from drivelab.lab import start_lab
    server = start_lab("~/lab", port=8888)   # init if needed, attach the drive, start JupyterLab
    print(server.lab_url)                   # http://127.0.0.1:8888/lab?token=...
    stopped = server.stop()                 # stop the server and its kernels, flush and detach the drive

Kernels started by the lab run ``python -m drivelab.lab._kernel`` (see
:func:`install_kernel`): their working folder is the workspace root (Colab's
``/content``), ``%drivelab`` is loaded, and a ``google.colab`` stand-in
(``drive``, ``files``, ``userdata``) is provided when the real one is not
installed. Jobs get the same: ``drivelab run`` puts :func:`job_environment`
in the job's spec. Secrets for ``userdata.get`` are the workspace's
(:func:`set_secret`, ``drivelab secrets``). The Jupyter server extension
(``drivelab.lab``) serves ``GET /drivelab/api/runtime``,
``GET /drivelab/api/drive`` and the "Connect a drive" pages under
``/drivelab/connect`` (sign in to a cloud drive, then attach it). In any IPython, ``%load_ext drivelab.lab`` adds
the ``%drivelab`` magic. Names load on first use: importing this package does
not import Jupyter.
"""

from __future__ import annotations

from typing import Any

from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_server": ["LabServer", "LabStopped", "start_lab"],
    "_kernelspec": ["KernelSpecInfo", "install_kernel", "KERNEL_NAME"],
    "_colab": ["ColabMount", "ColabDownload", "colab_mount", "colab_flush_and_unmount", "colab_content", "colab_download"],
    "_kernel": ["job_environment", "has_real_colab"],
    "_secrets": ["SecretInfo", "check_secret_name", "find_secret", "list_secrets", "remove_secret", "set_secret"],
    "_documents": ["runtime_document", "drive_document"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*__all__, "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext drivelab.lab``: registers the ``%drivelab`` line magic."""
    from drivelab.lab._magic import register

    register(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    # The Jupyter server finds the extension's loader here (``drivelab.lab`` is enabled by name).
    return [{"module": "drivelab.lab._extension"}]

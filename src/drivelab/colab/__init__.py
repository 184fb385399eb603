"""What makes a notebook written on Colab run unchanged, in the lab's kernels and in jobs alike.

::

    from drivelab import colab
    env = colab.job_environment(ws, notebook=True)   # what a job adds to its environment
    argv = colab.content_command(ws, argv)            # run argv with /content reachable, where it can be
    colab.setup_machine()                             # `sudo drivelab setup colab`: the empty /content
    colab.set_secret(ws, "HF_TOKEN", value)           # what userdata.get("HF_TOKEN") returns

- the ``google.colab`` stand-in (``_shim/google/colab``): ``drive``, ``files``,
  ``userdata``, ``output``, ``patches``, ``auth``, ``runtime``, ``_message``,
  ``errors``; put on the path of kernels and jobs only where no real
  ``google.colab`` can be imported;
- ``/content``: the working folder of a kernel or job (the workspace root) seen at
  ``/content`` through a mount namespace of the process's own (:mod:`._content`);
- the kernel (``python -m drivelab.colab._kernel``) and its kernelspec, with
  Colab's magics (``%shell``, ``%%shell``, ``%tensorflow_version``) and ``%drivelab``;
- forms: ``NAME = value  #@param`` lines bound like papermill parameters (:mod:`._forms`);
- the workspace's secrets (:mod:`._secrets`).

Names load on first use: importing this package imports nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_calls": [
        "LAB_BASE_URL_ENV",
        "ColabMount",
        "ColabDownload",
        "colab_mount",
        "colab_flush_and_unmount",
        "colab_content",
        "colab_download",
    ],
    "_content": ["ContentStatus", "SetupResult", "content_command", "content_status", "forward_command", "setup_machine"],
    "_forms": ["FormField", "bind_form_parameters", "find_form_fields"],
    "_kernel": ["has_real_colab", "job_environment"],
    "_kernelspec": ["KERNEL_NAME", "KernelSpecInfo", "install_kernel"],
    "_secrets": ["SecretInfo", "check_secret_name", "find_secret", "list_secrets", "remove_secret", "set_secret"],
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS)
__all__ = [*_names, "load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext drivelab.colab``: Colab's magics (``%shell``, ``%%shell``, ``%tensorflow_version``) and ``%drivelab``."""
    from drivelab.colab._magics import register

    register(ipython)


if TYPE_CHECKING:
    from drivelab.colab._calls import (
        LAB_BASE_URL_ENV,
        ColabDownload,
        ColabMount,
        colab_content,
        colab_download,
        colab_flush_and_unmount,
        colab_mount,
    )
    from drivelab.colab._content import ContentStatus, SetupResult, content_command, content_status, forward_command, setup_machine
    from drivelab.colab._forms import FormField, bind_form_parameters, find_form_fields
    from drivelab.colab._kernel import has_real_colab, job_environment
    from drivelab.colab._kernelspec import KERNEL_NAME, KernelSpecInfo, install_kernel
    from drivelab.colab._secrets import SecretInfo, check_secret_name, find_secret, list_secrets, remove_secret, set_secret

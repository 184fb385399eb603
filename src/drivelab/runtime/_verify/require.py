"""Is PyTorch here? The one check for code that needs torch, before it starts work.

torch is not a dependency of drivelab (``drivelab setup torch`` installs the
build that fits the machine), so anything that needs it calls
:func:`require_torch` first and fails with :class:`TorchMissingError`, whose
hint names ``drivelab setup torch``, instead of a traceback halfway through.
"""

from __future__ import annotations

import importlib.util
import sys

from drivelab.errors import TorchMissingError

__all__ = ["require_torch", "torch_installed"]


def torch_installed() -> bool:
    """Whether ``import torch`` can find a torch in this interpreter.

    Looks the package up without importing it (milliseconds, not seconds). A
    torch that is installed but broken counts as installed: importing it then
    fails with its own error, which ``drivelab doctor`` explains.
    """
    if "torch" in sys.modules:
        # None there is how an import is blocked on purpose; a module is torch, loaded.
        return sys.modules["torch"] is not None
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch(needed_for: str | None = None) -> None:
    """Return when torch can be imported here; else raise :class:`TorchMissingError`.

    ``needed_for`` (e.g. ``"drivelab demo"``) goes into the message. Cheap: call
    it before a download or a child process, so the error comes first.
    """
    if not torch_installed():
        raise TorchMissingError(sys.executable, needed_for=needed_for)

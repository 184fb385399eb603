"""drivelab's stand-in for ``google.colab``, where the real one is absent: lab kernels and jobs alike.

It covers, with Colab's signatures, messages and exception classes:

- ``google.colab.drive``: ``mount``, ``flush_and_unmount``;
- ``google.colab.files``: ``download``, ``upload``, ``view``;
- ``google.colab.userdata``: ``get``;
- ``google.colab.output``: ``clear``, ``eval_js``, ``serve_kernel_port_as_window``,
  ``serve_kernel_port_as_iframe``, ``enable_custom_widget_manager`` and the
  other helpers that arrange outputs;
- ``google.colab.patches``: ``cv2_imshow``;
- ``google.colab.auth``: ``authenticate_user`` (this machine's Google credentials);
- ``google.colab.runtime``: ``unassign`` (ends the kernel);
- ``google.colab.errors`` and ``google.colab._message`` (requests to Colab's
  page, which nothing answers here: None).

See docs/lab.md for what each does here. Importing any other part of
``google.colab`` (``widgets``, ``data_table``, ``sheets``, ...) raises
:class:`NotCoveredError`, a ``ModuleNotFoundError`` that says so.

Importing this package, or any of its modules, is cheap: its modules load when
first used, and IPython, NumPy and PIL when a call first needs them.
"""

import sys as _sys

__all__ = ["auth", "drive", "files", "output", "patches", "runtime", "userdata"]

IS_DRIVELAB = True
COVERED = ("drive", "files", "userdata", "output", "patches", "auth", "runtime")
_HELPERS = ("errors", "_message")  # provided too: Colab's exception classes; its page's requests (answered with None)
_DOCS = "drivelab's docs/lab.md, section 'Colab notebooks'"


class NotCoveredError(ModuleNotFoundError):
    """A part of ``google.colab`` that drivelab does not provide was imported.

    Its ``name`` is left unset: Python ignores a ``ModuleNotFoundError`` naming
    the very submodule ``from google.colab import X`` looked for, and this one
    must reach the notebook with its message.
    """

    def __init__(self, module: str) -> None:
        super().__init__(
            f"No module named {module!r}: drivelab's stand-in for google.colab covers only "
            + ", ".join(f"google.colab.{n}" for n in COVERED[:-1])
            + f" and google.colab.{COVERED[-1]}; this part needs Colab itself (see {_DOCS})"
        )
        self.module = module


def __getattr__(name: str):
    if name in COVERED or name in _HELPERS:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    hint = "" if name.startswith("__") else f"; drivelab's stand-in covers {', '.join(COVERED)} ({_DOCS})"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{hint}")


class _NotCoveredFinder:
    """Last on ``sys.meta_path``: asked only for a ``google.colab.X`` no other finder found, it raises :class:`NotCoveredError`."""

    _drivelab_colab = True

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        this = _sys.modules.get(__name__)
        if fullname.startswith(__name__ + ".") and getattr(this, "IS_DRIVELAB", False):
            raise NotCoveredError(fullname)


if not any(getattr(finder, "_drivelab_colab", False) for finder in _sys.meta_path):
    _sys.meta_path.append(_NotCoveredFinder)

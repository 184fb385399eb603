"""The lab's kernel: ``python -m drivelab.lab._kernel -f CONNECTION_FILE``.

An ordinary IPython kernel (ipykernel), set up the way a Colab runtime is:

- its working folder is the workspace root, as Colab's is ``/content``, so
  ``!python drive/colab/main.py`` and ``drive/...`` paths work from any notebook;
- this interpreter's folder comes first on ``PATH``, so ``!python`` and
  ``!drivelab`` are the kernel's own;
- the ``%drivelab`` magic is loaded;
- when no real ``google.colab`` can be imported, drivelab's
  ``google.colab.drive`` is (for this kernel and the processes it starts).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from drivelab.workspace import WORKSPACE_ENV

SHIM = Path(__file__).resolve().parent / "_colab_shim"


def has_real_colab() -> bool:
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
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
    if not has_real_colab():
        # Appended, never prepended: a real google.colab (or any google.* package) always wins.
        sys.path.append(str(SHIM))
        children = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if str(SHIM) not in children:
            os.environ["PYTHONPATH"] = os.pathsep.join([*children, str(SHIM)])
        done.append("google.colab shim")
    return done


def main() -> None:
    prepare_environment()
    # Cheap (their names load on use), and `import drivelab; drivelab.runtime.info()` then works.
    import drivelab.drive  # noqa: F401
    import drivelab.runtime  # noqa: F401

    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance(argv=[*sys.argv[1:], "--ext=drivelab.lab"])


if __name__ == "__main__":
    main()

"""The kernel's magics: Colab's ``%shell``, ``%%shell`` and ``%tensorflow_version``, and ``%drivelab``.

- ``%shell CMD`` runs ``/bin/bash -c CMD``; ``%%shell`` runs the cell as a bash
  script (``%%shell --ignore-errors``: a failure is not raised). Their output,
  stdout and stderr together, is shown line by line as it comes, and they
  return a :class:`ShellResult` (``args``, ``returncode``, ``output``), shown
  as nothing; a non-zero exit raises ``subprocess.CalledProcessError``, as on
  Colab. Unlike Colab, the command gets no input (its stdin is empty).
- ``%tensorflow_version 2.x`` has no effect and says so (the installed
  TensorFlow, if any, is the one imported); ``%tensorflow_version 1.x`` raises
  ``ValueError``: TensorFlow 1.x is no longer available, on Colab or here.
- ``%drivelab ARGS`` runs ``python -m drivelab ARGS`` with the kernel's
  interpreter, in the kernel's working folder, and shows its output (stdout and
  stderr, as it comes) in the cell. A failing command shows its exit code, as a
  shell would.
"""

from __future__ import annotations

import importlib.metadata
import shlex
import subprocess
import sys
from typing import Any

from drivelab._subprocess import stream

__all__ = ["ShellResult", "drivelab_magic", "register", "shell_cell_magic", "shell_line_magic", "tensorflow_version_magic"]

BASH = "/bin/bash"
_TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos", "tf-nightly")
TF2_GUIDE = "https://www.tensorflow.org/guide/migrate"


def drivelab_magic(line: str) -> None:
    """Run ``drivelab <line>``, e.g. ``%drivelab setup torch --dry-run``."""
    try:
        args = shlex.split(line)
    except ValueError as exc:
        print(f"%drivelab: cannot parse the command line: {exc}", file=sys.stderr)
        return
    done = stream(
        [sys.executable, "-m", "drivelab", *args],
        env={"COLUMNS": "100", "NO_COLOR": "1"},
        on_line=lambda text: print(text, flush=True),
    )
    if done.returncode != 0:
        print(f"(drivelab exited with code {done.returncode})", file=sys.stderr, flush=True)


# --- %shell, %%shell ---------------------------------------------------------------------


class ShellResult:
    """What ``%shell`` and ``%%shell`` return: like ``subprocess.CompletedProcess``, with one merged ``output``.

    ``args`` is the command as given, ``returncode`` its exit code (negative:
    killed by that signal) and ``output`` what it printed, stdout and stderr
    together, in the order it came. A notebook shows nothing for it: the output
    was shown as it came.
    """

    def __init__(self, args: str, returncode: int, output: str) -> None:
        self.args = args
        self.returncode = returncode
        self.output = output

    def check_returncode(self) -> None:
        """Raise ``subprocess.CalledProcessError`` for a non-zero exit code."""
        if self.returncode:
            raise subprocess.CalledProcessError(returncode=self.returncode, cmd=self.args, output=self.output)

    def _ipython_display_(self) -> None:
        """Shown as nothing in a notebook (its output is already there)."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Shown as nothing in a terminal IPython either."""

    def __repr__(self) -> str:
        return f"ShellResult(args={self.args!r}, returncode={self.returncode})"


def _run_bash(command: str) -> ShellResult:
    lines: list[str] = []

    def show(text: str) -> None:
        lines.append(text)
        print(text, flush=True)

    done = stream([BASH, "-c", command], on_line=show, keep=1)
    return ShellResult(command, done.returncode, "".join(f"{text}\n" for text in lines))


def shell_line_magic(line: str) -> ShellResult:
    """``%shell CMD``: run CMD with bash; a non-zero exit raises ``CalledProcessError``."""
    result = _run_bash(line)
    result.check_returncode()
    return result


def shell_cell_magic(line: str, cell: str) -> ShellResult:
    """``%%shell [--ignore-errors]``: run the cell as a bash script; a non-zero exit raises unless ``--ignore-errors``."""
    options = line.split()
    unknown = [o for o in options if o != "--ignore-errors"]
    if unknown:
        raise ValueError(f"%%shell takes no {' '.join(unknown)}: its only option is --ignore-errors (a failing script raises no error)")
    result = _run_bash(cell)
    if "--ignore-errors" not in options:
        result.check_returncode()
    return result


# --- %tensorflow_version -----------------------------------------------------------------


def _installed_tensorflow() -> str | None:
    """``tensorflow 2.16.1`` for the TensorFlow installed for this interpreter, without importing it; None if none is."""
    for name in _TENSORFLOW_DISTRIBUTIONS:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def tensorflow_version_magic(line: str) -> None:
    """``%tensorflow_version 2.x``: nothing to switch (the installed TensorFlow is used); ``1.x`` raises."""
    wanted = line.strip()
    if wanted.startswith("1"):
        raise ValueError(
            f"TensorFlow 1.x is not available: `%tensorflow_version {wanted}` cannot select it, here or on Colab, "
            f"which no longer supports it either. Update the notebook to TensorFlow 2 (see {TF2_GUIDE}), "
            "and remove the %tensorflow_version line."
        )
    installed = _installed_tensorflow()
    which = f"the installed TensorFlow ({installed}) is used" if installed else (
        f"TensorFlow is not installed for {sys.executable}; `%pip install tensorflow` installs TensorFlow 2"
    )  # fmt: skip
    print(f"%tensorflow_version has no effect here ({wanted or 'no version given'}): {which}.")


def register(ipython: Any) -> None:
    ipython.register_magic_function(drivelab_magic, magic_kind="line", magic_name="drivelab")
    ipython.register_magic_function(shell_line_magic, magic_kind="line", magic_name="shell")
    ipython.register_magic_function(shell_cell_magic, magic_kind="cell", magic_name="shell")
    ipython.register_magic_function(tensorflow_version_magic, magic_kind="line", magic_name="tensorflow_version")

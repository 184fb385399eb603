"""Colab's magics on the lab's real kernel (nbclient on the workspace's kernelspec): ``%shell`` and
``%%shell`` (bash, output streamed as it comes, a failing command raising ``CalledProcessError``) and
``%tensorflow_version``.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbclient
import nbformat
import pytest
from _notebooks import lab_kernel_workspace, text_of



@pytest.fixture
def lab_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh workspace with the lab's kernelspec, found by Jupyter as the lab finds it."""
    return lab_kernel_workspace(tmp_path, monkeypatch)


class TimedClient(nbclient.NotebookClient):
    """Notes when each output of each cell arrived, to tell streamed output from output shown at the end."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: dict[int, list[tuple[float, str]]] = {}

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream":
            self.arrivals.setdefault(cell_index, []).append((time.monotonic(), msg["content"]["text"]))
        return super().output(outs, msg, display_id, cell_index)


CELLS = [
    # 0: a script, stdout and stderr, a file written in the kernel's working folder (the workspace)
    "%%shell\necho first line\nsleep 1.5\necho 'to stderr' >&2\nfor i in 1 2; do echo \"loop $i\"; done\necho made > shell-made.txt",
    # 1: the result, as Colab's: output merged, return code, nothing more shown
    "result = %shell echo hello && echo oops >&2\nprint('returncode', result.returncode, repr(result.output))",
    # 2: a failing command raises
    "%shell exit 3",
    # 3: ... a CalledProcessError with the return code and the command
    "import subprocess\ntry:\n    %shell echo before; exit 3\nexcept subprocess.CalledProcessError as exc:\n    print('caught', exc.returncode, exc.cmd)",
    # 4: --ignore-errors, as Colab's %%shell
    "%%shell --ignore-errors\necho still here\nexit 4",
    # 5: the kernel's variables reach the line magic, as IPython expands them
    "word = 'expanded'\n%shell echo $word",
    "%tensorflow_version 2.x",
    "%tensorflow_version 1.x",
    "print('after the errors')",
]


def test_colab_magics_in_the_labs_kernel(lab_kernel):
    ws = lab_kernel
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    client = TimedClient(nb, kernel_name="python3", timeout=120, startup_timeout=120, allow_errors=True,
                         resources={"metadata": {"path": str(ws.colab)}})  # fmt: skip
    client.execute()
    cells = nb.cells

    shown = text_of(cells[0])
    assert shown == "first line\nto stderr\nloop 1\nloop 2\n", cells[0].outputs
    arrivals = client.arrivals[0]
    first = next(t for t, text in arrivals if "first line" in text)
    last = next(t for t, text in arrivals if "loop 2" in text)
    assert last - first > 1.0, arrivals  # the first line was shown while the script still ran
    assert (ws.root / "shell-made.txt").read_text() == "made\n"  # the kernel's working folder: the workspace
    assert not [o for o in cells[0].outputs if o["output_type"] in ("error", "execute_result")], cells[0].outputs

    assert text_of(cells[1]) == "hello\noops\nreturncode 0 'hello\\noops\\n'\n"

    [error] = [o for o in cells[2].outputs if o["output_type"] == "error"]
    assert error["ename"] == "CalledProcessError" and "returned non-zero exit status 3" in error["evalue"], error
    assert text_of(cells[3]) == "before\ncaught 3 echo before; exit 3\n"
    assert text_of(cells[4]).startswith("still here\n") and not [o for o in cells[4].outputs if o["output_type"] == "error"]
    assert text_of(cells[5]).strip() == "expanded"

    message = text_of(cells[6])
    assert "%tensorflow_version has no effect" in message and "2.x" in message, message
    assert "TensorFlow" in message
    [error] = [o for o in cells[7].outputs if o["output_type"] == "error"]
    assert error["ename"] == "ValueError" and "TensorFlow 1.x is not available" in error["evalue"], error
    assert "TensorFlow 2" in error["evalue"]
    assert text_of(cells[8]) == "after the errors\n"


def test_shell_result_off_the_kernel():
    """The result object and the error, as code that checks them sees them."""
    import subprocess

    from drivelab.colab._magics import shell_cell_magic, shell_line_magic

    result = shell_line_magic("printf 'a\\nb'")
    assert (result.returncode, result.output, result.args) == (0, "a\nb\n", "printf 'a\\nb'")
    with pytest.raises(subprocess.CalledProcessError) as caught:
        shell_cell_magic("", "echo out\nexit 5\n")
    assert caught.value.returncode == 5 and caught.value.output == "out\n" and caught.value.cmd == "echo out\nexit 5\n"
    assert shell_cell_magic("--ignore-errors", "exit 6").returncode == 6
    with pytest.raises(Exception, match="--ignore-errors"):
        shell_cell_magic("--bogus", "true")

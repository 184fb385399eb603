"""``google.colab.runtime.unassign()``: end this runtime, as Colab does to free its machine.

In a notebook it prints a line, then stops the kernel the way the kernel
stops on a shutdown request: the cell's outputs so far are kept, no further
cell runs, and the kernel's memory (GPU memory included) is freed. The lab
then starts a fresh kernel for the notebook, as Colab gives a fresh runtime on
reconnecting; a notebook run by some other executor (papermill, nbclient)
ends with that executor's kernel-died error. Processes the notebook started
are not stopped.

In a notebook run as a ``drivelab run`` job (``$DRIVELAB_RUN_DIR`` set) the runtime is the job's
and ends with it, so ``unassign()`` says so and returns: a notebook that
ends with it, as many written on Colab do to free the GPU, succeeds.

In plain Python (a script, ``drivelab run`` of a script) it prints the line
and raises ``SystemExit(0)``: the program ends there, successfully.
"""

import sys as _sys

__all__ = ["unassign"]


def unassign():
    """End this runtime: stop the kernel (or, outside a notebook, the program)."""
    import os as _os

    ipython = _sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        print("Ending this runtime: the program stops here (runtime.unassign()).", flush=True)
        raise SystemExit(0)
    if _os.environ.get("DRIVELAB_RUN_DIR"):
        print("runtime.unassign(): this runtime is a drivelab job's notebook, and ends when the job ends.", flush=True)
        return
    print("Ending this runtime: the kernel stops now and this notebook's variables are lost (runtime.unassign()).", flush=True)
    _sys.stderr.flush()
    done = kernel.do_shutdown(False)  # the kernel's own shutdown: its event loop stops shortly after
    if hasattr(done, "close"):  # a kernel whose do_shutdown is a coroutine: the stop below does it
        done.close()
    loop = getattr(kernel, "io_loop", None)
    if loop is not None:
        loop.add_callback(loop.stop)  # before the next request is handled: no further cell runs

"""What importing drivelab's ``google.colab`` stand-in costs a fresh interpreter.

    python benchmarks/colab_import.py              # 20 runs of each
    python benchmarks/colab_import.py --runs 41

Each line runs --runs times as a fresh process with the stand-in on
``PYTHONPATH`` (as a lab kernel or a job has it), after one warm-up run so
byte-code is cached; the median, min and max are printed, and the difference
to the baseline, a bare ``python -c pass`` with the same ``PYTHONPATH``, in
the same run. The last line says whether the imports loaded IPython, NumPy or
PIL (they must not: those load when a call first needs them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHIM = Path(__file__).resolve().parents[1] / "src" / "drivelab" / "colab" / "_shim"
COLAB = "import google.colab; from google.colab import drive, files, userdata, output, patches"
CODE = {
    "python -c pass (baseline)": "pass",
    "import google.colab": "import google.colab",
    "+ from google.colab import drive, files, userdata, output, patches": COLAB,
    "+ auth, runtime, _message too": COLAB + "; from google.colab import auth, runtime, _message",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="interpreter to run the imports with")
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(SHIM)
    print(f"python: {args.python}; stand-in: {SHIM}")
    baseline = None
    for label, code in CODE.items():
        subprocess.run([args.python, "-c", code], capture_output=True, check=True, env=env)  # warm-up
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([args.python, "-c", code], capture_output=True, check=True, env=env)
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        baseline = median if baseline is None else baseline
        extra = "" if median is baseline else f"  (+{(median - baseline) * 1000:.0f} ms over the baseline)"
        print(f"{label:66s} median {median * 1000:5.0f} ms  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={len(times)}){extra}")
    check = CODE["+ auth, runtime, _message too"] + "; import sys; print(sorted(m for m in ('IPython', 'numpy', 'PIL') if m in sys.modules))"
    loaded = subprocess.run([args.python, "-c", check], capture_output=True, text=True, check=True, env=env).stdout.strip()
    print(f"loaded by the imports, of IPython, numpy, PIL: {loaded}")


if __name__ == "__main__":
    main()

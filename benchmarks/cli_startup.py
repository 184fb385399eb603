"""Wall time of the quick commands: `drivelab --help`, `drivelab runtime --json` and `drivelab setup torch --dry-run --json`.

    python benchmarks/cli_startup.py                       # with this interpreter
    python benchmarks/cli_startup.py --python /tmp/notorch/bin/python --runs 21

Each command runs --runs times as a fresh process (after one warm-up run, so
byte-code is cached: PYTHONDONTWRITEBYTECODE is dropped for the children); the median, min and max are printed, next to the
baseline of a bare `python -c pass` in the same run. Pass the interpreter of
an environment without torch to measure "torch absent".
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (baseline)": ["-c", "pass"],
    "drivelab --version": ["-m", "drivelab", "--version"],
    "drivelab --help": ["-m", "drivelab", "--help"],
    "drivelab runtime --json": ["-m", "drivelab", "runtime", "--json"],
    "drivelab setup torch --dry-run --json": ["-m", "drivelab", "setup", "torch", "--dry-run", "--json"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default=sys.executable, help="interpreter to run drivelab with")
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    probe = subprocess.run([args.python, "-c", "import importlib.util as u; print(u.find_spec('torch') is not None)"], capture_output=True, text=True)
    print(f"python: {args.python} (torch installed: {probe.stdout.strip()})")
    for label, argv in COMMANDS.items():
        subprocess.run([args.python, *argv], capture_output=True, check=True, env=env)  # warm-up
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([args.python, *argv], capture_output=True, check=True, env=env)
            times.append(time.perf_counter() - started)
        print(f"{label:42s} median {statistics.median(times) * 1000:6.0f} ms  (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, n={len(times)})")


if __name__ == "__main__":
    main()

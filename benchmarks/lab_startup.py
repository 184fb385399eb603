"""How fast the lab comes up: `drivelab lab` to the server answering, and a
kernel's start to `import drivelab` done.

    python benchmarks/lab_startup.py              # 5 runs of each
    python benchmarks/lab_startup.py --runs 9 --json out.json

Server: from launching `drivelab lab --no-browser` to the first 200 from
`GET /api/status` (with the token), then to `GET /drivelab/api/runtime`
answering. Baseline in the same run: plain `python -m jupyterlab` on the same
folder, to its first `/api/status`. Each run is a fresh process on a free
loopback port, stopped with SIGINT (drivelab) or SIGTERM (plain JupyterLab).

Kernel: from `KernelManager.start_kernel()` to the kernel answering
(`wait_for_ready`), and to `import drivelab` done, for the lab's kernel and,
as the baseline, ipykernel's own. Jupyter's folders (config, data, runtime)
are temporary, so the user's set-up plays no part. One warm-up of each first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

TOKEN = "benchmark-token-" + os.urandom(8).hex()
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_of(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    try:
        with OPENER.open(request, timeout=5) as reply:
            reply.read()
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@contextlib.contextmanager
def serving(argv: list[str], env: dict[str, str], port: int, stop_signal: int) -> Iterator[tuple[float, float]]:
    """Launch a server and wait for its first 200 from `/api/status` (with TOKEN); yields the launch's
    `time.perf_counter()` and the seconds until that answer, and stops the server (``stop_signal``) after."""
    base = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while status_of(base + "api/status") != 200:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}: {' '.join(argv)}")
            time.sleep(0.02)
        yield started, time.perf_counter() - started
    finally:
        proc.send_signal(stop_signal)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def time_server(argv: list[str], env: dict[str, str], port: int, extension: bool, stop_signal: int) -> tuple[float, float | None]:
    with serving(argv, env, port, stop_signal) as (started, ready):
        runtime = None
        if extension:
            if status_of(f"http://127.0.0.1:{port}/drivelab/api/runtime") != 200:
                raise SystemExit("/drivelab/api/runtime did not answer 200")
            runtime = time.perf_counter() - started
        return ready, runtime


def time_kernel(kernel_dirs: list[str] | None) -> tuple[float, float]:
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager(kernel_dirs=kernel_dirs) if kernel_dirs else KernelSpecManager()
    km = KernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    started = time.perf_counter()
    km.start_kernel()
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        ready = time.perf_counter() - started
        reply = client.execute_interactive("import drivelab", timeout=120, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"import drivelab failed in the kernel: {reply['content']}")
        imported = time.perf_counter() - started
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=False)
    return ready, imported


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def show(label: str, values: list[float]) -> None:
    s = summary(values)
    print(f"{label:55s} median {s['median']:6.2f} s  (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()

    from drivelab.colab import install_kernel
    from drivelab.workspace import init_workspace

    home = Path(tempfile.mkdtemp(prefix="drivelab-lab-bench-"))
    ws = init_workspace(home / "ws").workspace
    jupyter = {
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_", "JUPYTER")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(jupyter, JUPYTER_TOKEN=TOKEN)
    os.environ.update(jupyter)
    for name in [k for k in os.environ if k.startswith("DRIVELAB_") or k == "JUPYTER_PATH"]:
        del os.environ[name]
    root_flag = ["--allow-root"] if os.name == "posix" and os.geteuid() == 0 else []
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; workspace {ws.root}")

    def drivelab_lab(port: int) -> list[str]:
        return [sys.executable, "-m", "drivelab", "lab", "--no-browser", "--port", str(port), "-w", str(ws.root)]

    def plain_lab(port: int) -> list[str]:
        return [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", f"--ServerApp.root_dir={ws.root}", *root_flag]

    results: dict[str, list[float]] = {k: [] for k in ("lab_api_status", "lab_drivelab_runtime", "plain_api_status", "kernel_ready", "kernel_import", "plain_kernel_ready", "plain_kernel_import")}
    for i in range(args.runs + 1):  # the first run of each is a warm-up
        port = free_port()
        ready, runtime = time_server(drivelab_lab(port), env, port, True, signal.SIGINT)
        port = free_port()
        plain, _ = time_server(plain_lab(port), env, port, False, signal.SIGTERM)
        if i:
            results["lab_api_status"].append(ready)
            results["lab_drivelab_runtime"].append(runtime or 0.0)
            results["plain_api_status"].append(plain)
    show("drivelab lab -> /api/status answers", results["lab_api_status"])
    show("drivelab lab -> /drivelab/api/runtime answers", results["lab_drivelab_runtime"])
    show("python -m jupyterlab -> /api/status answers (baseline)", results["plain_api_status"])

    kernel = install_kernel(ws)
    for i in range(args.runs + 1):
        ready, imported = time_kernel([str(kernel.jupyter_path / "kernels")])
        plain_ready, plain_imported = time_kernel(None)
        if i:
            results["kernel_ready"].append(ready)
            results["kernel_import"].append(imported)
            results["plain_kernel_ready"].append(plain_ready)
            results["plain_kernel_import"].append(plain_imported)
    show("lab kernel: start -> ready", results["kernel_ready"])
    show("lab kernel: start -> import drivelab done", results["kernel_import"])
    show("ipykernel (baseline): start -> ready", results["plain_kernel_ready"])
    show("ipykernel (baseline): start -> import drivelab done", results["plain_kernel_import"])
    if args.json:
        args.json.write_text(json.dumps({k: summary(v) for k, v in results.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()

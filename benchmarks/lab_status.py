"""What the lab's status bar costs: `GET /drivelab/api/status` against Jupyter's own `GET /api/status`.

    python benchmarks/lab_status.py               # 60 requests of each
    python benchmarks/lab_status.py --requests 200

Starts `drivelab lab --no-browser` on a fresh workspace (local drive), then
asks each endpoint in turn, one request at a time, and measures the wall time
of each and the CPU time the server's process spends on them (psutil). The
status bar asks once every 5 s, so its idle cost is the server's CPU time per
request divided by 5 s: printed as a share of one core.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

POLL_SECONDS = 5.0
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        token = "status-" + os.urandom(8).hex()
        env = {
            **os.environ,
            "JUPYTER_TOKEN": token,
            **{name: str(Path(tmp) / sub) for name, sub in (("JUPYTER_CONFIG_DIR", "c"), ("JUPYTER_DATA_DIR", "d"), ("JUPYTER_RUNTIME_DIR", "r"))},
        }
        port = _free_port()
        lab = subprocess.Popen(
            [sys.executable, "-m", "drivelab", "lab", "--no-browser", "--port", str(port), "-w", str(Path(tmp) / "ws")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/"
            _wait(base + "api/status", token)
            server = _server_process(lab.pid)
            results = {}
            for name, path in (("jupyter /api/status (baseline)", "api/status"), ("drivelab /drivelab/api/status", "drivelab/api/status")):
                _get(base + path, token)  # warm-up
                before = sum(server.cpu_times()[:2])
                times = [_get(base + path, token) for _ in range(args.requests)]
                cpu = (sum(server.cpu_times()[:2]) - before) / args.requests
                results[name] = (times, cpu)
        finally:
            lab.send_signal(signal.SIGINT)
            lab.wait(60)
    print(f"{args.requests} requests each, one at a time; machine: {_cpu()}")
    for name, (times, cpu) in results.items():
        ordered = sorted(times)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"{name:34s} median {statistics.median(times) * 1000:6.1f} ms  p90 {p90 * 1000:6.1f} ms  server CPU {cpu * 1000:5.1f} ms/request")
    (base_times, base_cpu), (times, cpu) = results.values()
    print(f"ratio drivelab/baseline: latency {statistics.median(times) / statistics.median(base_times):.1f}x, server CPU {cpu / max(base_cpu, 1e-9):.1f}x")
    print(f"status bar polling every {POLL_SECONDS:.0f} s while idle: {100 * cpu / POLL_SECONDS:.2f} % of one core")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    started = time.perf_counter()
    with OPENER.open(request, timeout=30) as reply:
        reply.read()
    return time.perf_counter() - started


def _wait(url: str, token: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            _get(url, token)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("drivelab lab did not answer within 120 s")


def _server_process(pid: int) -> psutil.Process:
    """The Jupyter server `drivelab lab` started (its child running drivelab.lab._serve)."""
    for child in psutil.Process(pid).children(recursive=True):
        if "drivelab.lab._serve" in " ".join(child.cmdline()):
            return child
    raise SystemExit("no Jupyter server process found under drivelab lab")


def _cpu() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores, {' '.join(wanted)}"


if __name__ == "__main__":
    sys.exit(main())

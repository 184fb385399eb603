"""Read and write throughput of the drive, against a loopback S3 server (rclone serve s3).

    python benchmarks/drive_io.py                        # 10,000 small files, as specified
    python benchmarks/drive_io.py --small-files 2000     # quicker
    python benchmarks/drive_io.py --json out.json
    python benchmarks/drive_io.py --latency-ms 20 --small-files 2000   # a cloud-like round trip
    python benchmarks/drive_io.py --cache writes         # another VFS cache mode (default: the drive's default)

In one run, on one machine: the four MNIST files and a folder of small files
(4-64 KiB each) are read from
  (a) local disk (the baseline; the page cache is warm, as it is for (c) and (d);
      (a) and (d) are the best of 5 reads, too quick to time once),
  (b) the mount, cold (a fresh mount with an empty VFS cache),
  (c) the mount, warm (the same files read again: from the VFS cache in mode
      full, from the remote again in mode writes),
  (d) the staged copy (`drivelab data stage`), and the time staging itself took;
then 1,000 small files are written through the mount and flushed, and every
one is checked on the server. Throughput and the ratio to local disk are printed.

Loopback has no round-trip time and the server shares the CPU with the
client; ``--latency-ms`` puts a proxy in front of the server that delays every
request by that much, as a cloud drive's round trip would.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from rclone_servers import LatencyProxy, S3Server  # noqa: E402

from drivelab import drive  # noqa: E402
from drivelab.drive._config import CACHE_MODES, DriveSettings  # noqa: E402
from drivelab.data import get_mnist, stage_dataset  # noqa: E402
from drivelab.workspace import init_workspace  # noqa: E402

MNIST_MIRROR = (ROOT / "tests" / "data" / "mnist").as_uri() + "/"


def read_tree(folder: Path) -> tuple[int, int, float]:
    """(files, bytes, seconds) to read every file under ``folder`` once, one by one."""
    files = total = 0
    start = time.perf_counter()
    for dirpath, _dirs, names in os.walk(folder):
        for name in sorted(names):
            if name.startswith(".drivelab-stage"):
                continue
            with open(os.path.join(dirpath, name), "rb") as fh:
                while block := fh.read(1 << 20):
                    total += len(block)
            files += 1
    return files, total, time.perf_counter() - start


def best_of(folder: Path, runs: int = 5) -> tuple[int, int, float]:
    """``read_tree`` repeated: reads from the page cache are too quick to time once."""
    return min((read_tree(folder) for _ in range(runs)), key=lambda r: r[2])


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16") if f in flags]
    return f"{model} ({', '.join(simd) or 'no AVX2'})"


def row(label: str, files: int, nbytes: int, seconds: float, base: float | None) -> dict[str, float | str]:
    mbps = nbytes / seconds / 1e6
    ratio = mbps / base if base else 1.0
    print(f"  {label:34s} {files:6d} files {nbytes / 1e6:8.1f} MB {seconds:8.2f} s {mbps:9.1f} MB/s {files / seconds:9.0f} files/s  x{ratio:.2f} of local")
    return {"label": label, "files": files, "bytes": nbytes, "seconds": round(seconds, 3), "mb_per_s": round(mbps, 1), "ratio_to_local": round(ratio, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small-files", type=int, default=10_000)
    p.add_argument("--write-files", type=int, default=1_000)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every request's round trip (default 0: plain loopback)")
    p.add_argument("--cache", choices=CACHE_MODES, default=DriveSettings.cache_mode, help=f"VFS cache mode of the mount (default: the drive's default, {DriveSettings.cache_mode})")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if not drive.fuse_available()[0]:
        sys.exit(f"no FUSE here: {drive.fuse_available()[1]}")

    tmp = Path(tempfile.mkdtemp(prefix="drive-io-"))
    server = S3Server(tmp / "s3", listing_cache="5m")
    results: dict[str, object] = {"small_files": args.small_files, "latency_ms": args.latency_ms, "cache_mode": args.cache}
    try:
        # The data, on local disk and on the server.
        local = tmp / "local"
        get_mnist(local, mirrors=[MNIST_MIRROR])
        rng = random.Random(0)
        small = local / "small"
        small.mkdir()
        for i in range(args.small_files):
            (small / f"{i:05d}.bin").write_bytes(rng.randbytes(rng.randrange(4096, 65537)))
        bucket = server.backing / "bench"
        shutil.copytree(local, bucket / "dataset")
        server.start()

        ws = init_workspace(tmp / "ws").workspace
        shutil.rmtree(ws.drive)
        options = server.options()
        if args.latency_ms:
            proxy = LatencyProxy(server.port, args.latency_ms / 1000)
            options["endpoint"] = proxy.url
        drive.connect(ws, "bench", "s3", options, root="bench")
        drive.attach(ws, "bench", cache_mode=args.cache)
        print(f"rclone {drive.find_rclone().version_text}, S3 on loopback (+{args.latency_ms:g} ms per request), VFS cache mode {args.cache}; {args.small_files} small files")
        print(f"CPU {_cpu()}, {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for name, folder in (("MNIST", "MNIST"), ("small files", "small")):
            print(name)
            read_tree(local / folder)  # warm the page cache
            files, nbytes, seconds = best_of(local / folder)
            base = nbytes / seconds / 1e6
            out = [row("(a) local disk", files, nbytes, seconds, None)]
            out.append(row("(b) mount, cold", *read_tree(ws.dataset / folder), base))
            out.append(row("(c) mount, warm", *read_tree(ws.dataset / folder), base))
            drive.detach(ws)  # a cold mount again, for staging from the remote
            shutil.rmtree(drive.DrivePaths(ws).cache, ignore_errors=True)
            drive.attach(ws)
            staged = stage_dataset(ws, f"dataset/{folder}")
            out.append(row("    staging (rclone, verified)", staged.files, staged.bytes, staged.seconds, base))
            read_tree(staged.path)
            out.append(row("(d) staged copy", *best_of(staged.path), base))
            cold = out[1]["seconds"]
            print(f"  staging is x{float(cold) / staged.seconds:.1f} faster than reading one by one through a cold mount")
            results[name] = out
            drive.detach(ws)
            shutil.rmtree(drive.DrivePaths(ws).cache, ignore_errors=True)
            drive.attach(ws)

        print(f"write + flush {args.write_files} small files")
        expected = {}
        folder = ws.drive / "runs" / "written"
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for i in range(args.write_files):
            data = rng.randbytes(rng.randrange(4096, 65537))
            (folder / f"{i:05d}.bin").write_bytes(data)
            expected[f"{i:05d}.bin"] = hashlib.md5(data).hexdigest()
        written = time.perf_counter() - start
        flushed = drive.flush(ws)
        total = time.perf_counter() - start
        on_server = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in (bucket / "runs" / "written").iterdir()}
        lost = sorted(set(expected) - set(on_server))
        wrong = sorted(n for n in expected if n in on_server and on_server[n] != expected[n])
        nbytes = sum((folder / n).stat().st_size for n in expected)
        print(f"  written in {written:.2f} s, flushed ({flushed.files} files, {flushed.bytes / 1e6:.1f} MB) after {total:.2f} s in all: {nbytes / total / 1e6:.1f} MB/s")
        print(f"  on the server: {len(on_server)} of {len(expected)} files, {len(lost)} missing, {len(wrong)} with the wrong bytes")
        results["write_flush"] = {"files": len(expected), "bytes": nbytes, "write_s": round(written, 3), "total_s": round(total, 3), "lost": len(lost), "wrong": len(wrong)}
        drive.detach(ws)
    finally:
        with_state = drive.status(ws) if "ws" in locals() else None
        if with_state and with_state.watchdog_pid:
            drive.detach(ws)
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Everything worth knowing about drivelab on a machine with NVIDIA GPUs, in one run and one JSON file.
#
#   benchmarks/gpu_check.sh                         on the GPU(s): about 2-4 minutes, at most 8 on one GPU
#   benchmarks/gpu_check.sh --out check.json        where the JSON goes (default: gpu-check-<host>-<time>.json here)
#   benchmarks/gpu_check.sh --dry-run               every part on the CPU with tiny settings (checks the plumbing; < 1 minute)
#
# Parts, each under its own time limit (a hang costs that part, never the rest; a part that ignores SIGTERM is
# killed 10 s later), in this order; on one GPU the limits add up to under 8 minutes, hangs and all:
#   nvidia-smi    the GPUs and the driver, as nvidia-smi lists them
#   runtime       drivelab runtime --json
#   setup         drivelab setup torch --dry-run --json (the build it would install; nothing is installed)
#   doctor        drivelab doctor --json (the installed PyTorch checked against the machine)
#   fast          the fast recipe for 10 seeds: time to 99.0% each, first epoch and start-up included
#                 (benchmarks/mnist_train.py; on a GPU every epoch ends by reading its results back, so
#                 the times are synchronised), then once more as a fresh process (wall to the 99% line)
#   reference     one epoch of the reference recipe (the classic PyTorch example)
#   torchrun      drivelab run --nproc-per-node 2 of the fast recipe, one process per GPU (two GPUs or more)
# The JSON holds each part's command, exit code, seconds, whether it timed out, its output's tail and what it
# reported as JSON; a short table is printed at the end and kept beside the JSON (.txt). Exit code: 0 when every
# part that ran passed, 1 otherwise.
#
# PYTHON: the interpreter with drivelab and torch (default: the repository's .venv, else python3).
# MNIST: --data-dir DIR (holding MNIST/raw), else $DRIVELAB_MNIST_MIRROR, else the repository's tests/data/mnist.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
DRY_RUN=0
OUT=""
DATA=""
SEEDS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run|--cpu) DRY_RUN=1 ;;
    --out) OUT="$2"; shift ;;
    --data-dir) DATA="$2"; shift ;;
    --seeds) SEEDS="$2"; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$OUT" ] || OUT="$PWD/gpu-check-$(hostname -s 2>/dev/null || echo host)-$(date -u +%Y%m%d-%H%M%S).json"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/drivelab-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PARTS="$WORK/parts"
mkdir -p "$PARTS"
export NO_COLOR=1 COLUMNS=200 PYTHONUNBUFFERED=1
unset DRIVELAB_RUN_DIR DRIVELAB_RUN_NAME DRIVELAB_WORKSPACE

# part NAME SECONDS COMMAND...: run it under its time limit; keep its output, exit code and time in $PARTS/NAME.*
part() {
  local name=$1 limit=$2
  shift 2
  printf '%s\n' "$@" > "$PARTS/$name.cmd"
  echo "== $name (at most ${limit}s): $*" >&2
  local started ended rc
  started=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" > "$PARTS/$name.out" 2> "$PARTS/$name.err" < /dev/null
  rc=$?
  ended=$(date +%s.%N)
  echo "$rc" > "$PARTS/$name.rc"
  echo "$limit" > "$PARTS/$name.limit"
  "$PYTHON" -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$started" "$ended" > "$PARTS/$name.seconds"
  echo "   exit $rc in $(cat "$PARTS/$name.seconds")s" >&2
}

skip() {  # skip NAME WHY
  echo "$2" > "$PARTS/$1.skipped"
  echo "== $1: skipped: $2" >&2
}

GPUS=0
if command -v nvidia-smi > /dev/null 2>&1; then
  GPUS=$(timeout 30 nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
fi

if [ "$DRY_RUN" = 1 ]; then
  DEVICE=cpu
  # Tiny: the plumbing, not the figures. The target is low so that every part has a "reached" line to find.
  FAST=(--seeds 2 --epochs 1 --limit-train 500 --threads 1 --target 10)
  REFERENCE=(--limit-train 500)  # scoring the 10,000 test images dominates: every core
  TORCHRUN=(--epochs 1 --limit-train 500 --threads 1)
else
  DEVICE=cuda
  FAST=(--seeds "$SEEDS")
  REFERENCE=()
  TORCHRUN=()
fi

if [ -z "$DATA" ]; then
  DATA="$WORK/dataset"
  MIRROR=${DRIVELAB_MNIST_MIRROR:-$(cd "$ROOT/tests/data/mnist" 2>/dev/null && echo "file://$PWD/")}
  part data 40 "$PYTHON" -c "import sys; from pathlib import Path; from drivelab.data import get_mnist; get_mnist(Path(sys.argv[1]), mirrors=[sys.argv[2]])" "$DATA" "$MIRROR"
fi

if [ "$GPUS" -gt 0 ]; then
  part nvidia-smi 20 nvidia-smi
else
  skip nvidia-smi "no NVIDIA GPU listed by nvidia-smi"
fi
part runtime 25 "$PYTHON" -m drivelab runtime --json
part setup 40 "$PYTHON" -m drivelab setup torch --dry-run --json
part doctor 75 "$PYTHON" -m drivelab doctor --json --timeout 60

if [ "$DRY_RUN" = 1 ] || [ "$GPUS" -gt 0 ]; then
  part fast 135 "$PYTHON" "$ROOT/benchmarks/mnist_train.py" --skip-reference --device "$DEVICE" --data-dir "$DATA" \
    --process-runs 1 --json "$PARTS/fast.json" "${FAST[@]}"
  part reference 65 "$PYTHON" "$ROOT/benchmarks/mnist_train.py" --seeds 0 --reference-epochs 1 --full --device "$DEVICE" \
    --data-dir "$DATA" --process-runs 0 --json "$PARTS/reference.json" "${REFERENCE[@]}"
else
  skip fast "no NVIDIA GPU (run with --dry-run to check the plumbing on the CPU)"
  skip reference "no NVIDIA GPU"
fi

if [ "$DRY_RUN" = 1 ] || [ "$GPUS" -ge 2 ]; then
  WS="$WORK/ws"
  if "$PYTHON" -m drivelab init "$WS" > "$WORK/init.log" 2>&1; then
    part torchrun 240 bash -c 'cd "$1" && shift && exec "$@"' _ "$WS" "$PYTHON" -m drivelab run --run ddp --nproc-per-node 2 \
      --restarts 0 drive/colab/main.py --device "$DEVICE" --data-dir "$DATA" --log-every 0 "${TORCHRUN[@]}"
    cp "$WS/drive/runs/ddp/metrics.jsonl" "$PARTS/torchrun.metrics.jsonl" 2>/dev/null || true
  else
    skip torchrun "drivelab init failed: $(tail -n 3 "$WORK/init.log")"
  fi
else
  skip torchrun "needs two GPUs; this machine has $GPUS"
fi

"$PYTHON" - "$PARTS" "$OUT" "$DRY_RUN" "$GPUS" <<'EOF'
"""Gather the parts into one JSON file and a short table."""
import json
import platform
import sys
import time
from pathlib import Path

parts_dir, out, dry_run, gpus = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
ORDER = ["data", "nvidia-smi", "runtime", "setup", "doctor", "fast", "reference", "torchrun"]


def read(name: str, suffix: str) -> str | None:
    path = parts_dir / f"{name}.{suffix}"
    return path.read_text(errors="replace") if path.exists() else None


def as_json(text: str | None):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


parts = {}
for name in ORDER:
    skipped = read(name, "skipped")
    if skipped is not None:
        parts[name] = {"status": "skipped", "why": skipped.strip()}
        continue
    if read(name, "rc") is None:
        continue
    rc = int(read(name, "rc"))
    timed_out = rc in (124, 137)
    out_text, err_text = read(name, "out") or "", read(name, "err") or ""
    entry = {
        "status": "timed out" if timed_out else ("ok" if rc == 0 else "failed"),
        "command": (read(name, "cmd") or "").splitlines(),
        "exit_code": rc,
        "seconds": float(read(name, "seconds") or "nan"),
        "limit_s": int(read(name, "limit") or 0),
        "timed_out": timed_out,
        "stdout_tail": out_text[-4000:],
        "stderr_tail": err_text[-4000:],
    }
    entry["json"] = as_json(read(name, "json")) or as_json(out_text)
    if name == "torchrun":
        lines = (read("torchrun", "metrics.jsonl") or "").splitlines()
        entry["metrics"] = [json.loads(line) for line in lines if line.strip()]
    parts[name] = entry

# The figures that matter, pulled out of the parts.
figures = {}
fast = (parts.get("fast") or {}).get("json") or {}
if fast:
    s = fast.get("summary", {})
    figures["fast"] = {k: s.get(k) for k in ("precision", "target", "fast_mean_train_s", "fast_max_train_s", "fast_mean_wall_s", "fast_min_final",
                                              "fast_mean_final", "fast_seeds_reaching_target", "process_mean_wall_s")}
    figures["fast"]["seeds"] = [{k: r.get(k) for k in ("seed", "epoch_to_target", "train_s_to_target", "final_accuracy", "s_per_epoch")} for r in fast.get("runs", [])]
reference = (parts.get("reference") or {}).get("json") or {}
if reference.get("runs"):
    r = reference["runs"][0]
    figures["reference_epoch"] = {"seconds": r.get("s_per_epoch"), "accuracy": r.get("final_accuracy")}
torchrun = (parts.get("torchrun") or {}).get("metrics")
if torchrun:
    figures["torchrun"] = {"epochs": len(torchrun), "train_s": torchrun[-1]["elapsed"], "final_accuracy": torchrun[-1]["test_accuracy"],
                           "precision": torchrun[-1].get("precision")}

ran = [p for p in parts.values() if p["status"] != "skipped"]
document = {
    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": platform.node(),
    "mode": "dry-run (CPU, tiny settings)" if dry_run else "gpu",
    "gpus": gpus,
    "ok": all(p["status"] == "ok" for p in ran),
    "figures": figures,
    "parts": parts,
}
out.write_text(json.dumps(document, indent=2) + "\n")


def fmt(value, spec=".2f"):
    return "-" if value is None else format(value, spec)


rows = [f"{'part':11s} {'status':10s} {'seconds':>8s}  note"]
for name, p in parts.items():
    note = p.get("why", "")
    if name == "fast" and "fast" in figures:
        f = figures["fast"]
        note = (f"{f['precision']}: mean {fmt(f['fast_mean_train_s'])} s (max {fmt(f['fast_max_train_s'])}) to {f['target']}%, "
                f"{f['fast_seeds_reaching_target']}/{len(f['seeds'])} seeds, final min {fmt(f['fast_min_final'])}%, process wall {fmt(f['process_mean_wall_s'])} s")
    elif name == "reference" and "reference_epoch" in figures:
        note = f"one epoch {fmt(figures['reference_epoch']['seconds'])} s, {fmt(figures['reference_epoch']['accuracy'])}%"
    elif name == "torchrun" and "torchrun" in figures:
        t = figures["torchrun"]
        note = f"{t['epochs']} epoch(s) in {fmt(t['train_s'])} s, {fmt(t['final_accuracy'])}% ({t['precision']})"
    elif name == "doctor" and isinstance(p.get("json"), dict):
        note = "all checks passed" if p["exit_code"] == 0 else "see parts.doctor in the JSON"
    elif p["status"] in ("failed", "timed out"):
        note = (p["stderr_tail"].strip().splitlines() or [""])[-1][:100]
    rows.append(f"{name:11s} {p['status']:10s} {fmt(p.get('seconds'), '8.1f') if 'seconds' in p else '       -'}  {note}")
table = "\n".join(rows) + f"\n\n{'all parts that ran passed' if document['ok'] else 'SOME PARTS FAILED'}; JSON: {out}\n"
out.with_suffix(".txt").write_text(table)
print(table, end="")
sys.exit(0 if document["ok"] else 1)
EOF

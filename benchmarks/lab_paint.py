"""What drivelab's JupyterLab extension costs the lab's first paint: `drivelab lab` with it against without it.

    python benchmarks/lab_paint.py                       # 5 rounds; with, absent, disabled
    python benchmarks/lab_paint.py --rounds 3 --json out.json
    python benchmarks/lab_paint.py --baseline absent     # one baseline only (quicker)

Each launch is a fresh `drivelab lab --no-browser` on a free loopback port (one
workspace, set up beforehand and past its first start, so the lab opens on
plain `/lab`), with Jupyter's folders (config, data, runtime, settings,
workspaces) new for the launch, and a headless Chromium with a new profile:
a user's first visit, nothing cached. The variants differ only in a file of
the launch's own Jupyter config folder (`$JUPYTER_CONFIG_DIR`):

- with: nothing there; the server finds the extension where `drivelab lab`
  puts it (`_frontend/` on `JUPYTER_PATH`).
- absent: `jupyter_lab_config.py` sets `LabApp.labextensions_path` to the
  usual folders less drivelab's `_frontend/labextensions`: JupyterLab never
  hears of the extension, and the browser fetches none of it.
- disabled: `labconfig/page_config.json` with `disabledExtensions` (what
  `jupyter labextension disable @drivelab/lab` writes): the page still lists
  the extension and the browser still fetches and runs its module, but none of
  its plugins start and its style is not loaded.

drivelab's server extension (`/drivelab/api/...`) runs in every variant; only
the front-end differs. Every launch is checked: the page config the server
hands out names the extension or not (and disables it or not), and in the
browser the status item (`data-drivelab="status"`) exists with the extension
and not without, and nothing of `@drivelab/lab` was fetched when absent.

Measures, per launch:

- server: from launching `drivelab lab` to the first 200 from `GET /api/status`;
  the browser is sent to `/lab` then.
- in the browser, from the navigation's start (`performance.now()`; a script
  injected before the page's own records each animation frame's state):
  first contentful paint (`performance.getEntriesByType('paint')`), the
  splash screen starting to fade (JupyterLab's `app.restored` resolved),
  the splash gone and the main dock area shown ("painted"), and, with the
  extension, its status item showing its first figures ("RAM" in its text).
- start to painted: from launching the server to that painted frame.
- warm (unless `--no-warm`): the same page opened again in the same browser
  and server (HTTP cache warm).

Variants alternate within each round, in the opposite order every other round;
one warm-up launch of each is not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _chromium import DevTools, chromium  # noqa: E402
from lab_startup import TOKEN, serving, summary  # noqa: E402
from lab_status import _cpu  # noqa: E402
from test_lab import free_port, http, jupyter_env  # noqa: E402

import drivelab.lab  # noqa: E402
from drivelab.lab._server import FIRST_START_MARK  # noqa: E402
from drivelab.workspace import init_workspace  # noqa: E402

FRONTEND = Path(drivelab.lab.__file__).parent / "_frontend"
EXTENSION = "@drivelab/lab"
GOAL = 1.1
"""The docs' goal for the extension's cost: app restored within 1.1x of the time without it."""

# Runs in the page before its own scripts: records, at each animation frame, when the page reached each state.
RECORDER = """(() => {
  const marks = (window.__drivelabPaint = {});
  const now = () => performance.now();
  const frame = () => {
    const splash = document.getElementById('jupyterlab-splash');
    if (splash) {
      if (marks.splash === undefined) marks.splash = now();
      if (marks.restored === undefined && splash.classList.contains('splash-fade')) marks.restored = now();
    } else if (marks.splash !== undefined && marks.painted === undefined) {
      const dock = document.getElementById('jp-main-dock-panel');
      if (dock && dock.getBoundingClientRect().width > 0) {
        if (marks.restored === undefined) marks.restored = now();
        marks.painted = now();
      }
    }
    const item = document.querySelector('[data-drivelab="status"]');
    if (item && marks.item === undefined) marks.item = now();
    if (item && marks.figures === undefined && (item.textContent || '').includes('RAM')) marks.figures = now();
    if (!marks.done) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();"""
READ_MARKS = """(() => {
  const marks = window.__drivelabPaint || {};
  const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
  const nav = performance.getEntriesByType('navigation')[0];
  return {...marks, fcp: fcp ? fcp.startTime : undefined, dom_ready: nav ? nav.domContentLoadedEventEnd : undefined,
          ours_fetched: performance.getEntriesByType('resource').filter((e) => e.name.includes('@drivelab/lab')).length,
          status_polled: performance.getEntriesByType('resource').filter((e) => e.name.includes('drivelab/api/status')).length,
          item_now: document.querySelector('[data-drivelab="status"]') !== null};
})()"""
PAGE_MEASURES = ("fcp", "restored", "painted", "figures")
MEASURES = ("server", *PAGE_MEASURES, "start_to_painted", *(f"warm_{m}" for m in PAGE_MEASURES))
LABELS = {
    "server": "server: launch -> /api/status answers",
    "fcp": "cold page: first contentful paint",
    "restored": "cold page: app restored (splash fading)",
    "painted": "cold page: splash gone, main dock shown",
    "figures": "cold page: status item shows its figures",
    "start_to_painted": "launch -> painted (server + cold page)",
    "warm_fcp": "warm page: first contentful paint",
    "warm_restored": "warm page: app restored",
    "warm_painted": "warm page: splash gone, main dock shown",
    "warm_figures": "warm page: status item shows its figures",
}


def configure(variant: str, config_dir: Path) -> None:
    """Write what takes the extension away (``absent``, ``disabled``) into a launch's own Jupyter config folder."""
    config_dir.mkdir(parents=True, exist_ok=True)
    if variant == "absent":
        ours = os.path.realpath(FRONTEND / "labextensions")
        lines = [
            "import os",
            "from jupyter_core.paths import jupyter_path",
            f"c.LabApp.labextensions_path = [p for p in jupyter_path('labextensions') if os.path.realpath(p) != {ours!r}]",
        ]
        (config_dir / "jupyter_lab_config.py").write_text("\n".join(lines) + "\n")
    elif variant == "disabled":
        (config_dir / "labconfig").mkdir(exist_ok=True)
        (config_dir / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": {EXTENSION: True}}) + "\n")


def page_config(base: str) -> dict[str, Any]:
    """The page config the server hands the browser with ``/lab``."""
    status, body = http(f"{base}lab?token={TOKEN}")
    assert status == 200, status
    text = body.decode()
    start = text.index('id="jupyter-config-data"')
    start = text.index(">", start) + 1
    return json.loads(text[start : text.index("</script>", start)])


def open_page(devtools: DevTools, url: str, with_extension: bool, timeout: float = 120) -> tuple[float, dict[str, Any]]:
    """Navigate to ``url``; the host's time the navigation was sent, and the page's marks (ms from its start)."""
    devtools.events.clear()
    sent = time.perf_counter()
    devtools.call("Page.navigate", url=url)
    deadline = time.monotonic() + timeout
    while True:
        marks = devtools.evaluate(READ_MARKS) or {}
        if "painted" in marks and (not with_extension or "figures" in marks):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the page did not finish within {timeout:.0f} s: {marks}")
        time.sleep(0.1)
    devtools.settle()  # a frame more: an item would be there by now
    marks = devtools.evaluate(READ_MARKS)
    devtools.evaluate("window.__drivelabPaint.done = true")
    devtools.events.clear()
    return sent, marks


def check(variant: str, config: dict[str, Any], marks: dict[str, Any]) -> None:
    """The extension is there, or not, as ``variant`` says: in the page config and in the page."""
    listed = EXTENSION in [e["name"] for e in config.get("federated_extensions", [])]
    disabled = EXTENSION in config.get("disabledExtensions", [])
    expected = {"with": (True, False), "absent": (False, False), "disabled": (True, True)}[variant]
    if (listed, disabled) != expected:
        raise SystemExit(f"{variant}: the page config lists the extension: {listed}, disables it: {disabled}")
    if marks["item_now"] != (variant == "with") or ("figures" in marks) != (variant == "with"):
        raise SystemExit(f"{variant}: the status item is {'there' if marks['item_now'] else 'missing'}: {marks}")
    if variant == "absent" and marks["ours_fetched"]:
        raise SystemExit(f"absent: the browser fetched {marks['ours_fetched']} file(s) of {EXTENSION}")
    if variant != "with" and marks["status_polled"]:
        raise SystemExit(f"{variant}: the page asked drivelab/api/status")


def launch(variant: str, ws: Path, home: Path, warm: bool) -> dict[str, float]:
    """One launch of ``variant``: a new browser, a new server, the page opened cold (and warm); its figures in seconds."""
    configure(variant, home / "config")
    env = jupyter_env(home, JUPYTER_TOKEN=TOKEN)  # the token serving() asks /api/status with
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    (home / "browser").mkdir()
    with contextlib.contextmanager(chromium.__wrapped__)(home / "browser") as devtools:  # tests' fixture: a new profile
        devtools.call("Page.enable")
        devtools.call("Page.addScriptToEvaluateOnNewDocument", source=RECORDER)
        argv = [sys.executable, "-m", "drivelab", "lab", "--no-browser", "--port", str(port), "-w", str(ws)]
        with serving(argv, env, port, signal.SIGINT) as (started, server):
            url = f"{base}lab?token={TOKEN}"
            sent, marks = open_page(devtools, url, variant == "with")
            config = page_config(base)  # asked after the page, so as not to warm the server for it
            check(variant, config, marks)
            figures = {"server": server, "start_to_painted": sent - started + marks["painted"] / 1000, "fetched": marks["ours_fetched"]}
            figures.update({m: marks[m] / 1000 for m in PAGE_MEASURES if m in marks})
            if warm:
                _, marks = open_page(devtools, url, variant == "with")
                check(variant, config, marks)
                figures.update({f"warm_{m}": marks[m] / 1000 for m in PAGE_MEASURES if m in marks})
            return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", choices=("absent", "disabled", "both"), default="both", help="how the extension is taken away (default: both ways)")
    parser.add_argument("--no-warm", dest="warm", action="store_false", help="only the cold first visit")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if not (FRONTEND / "labextensions" / "@drivelab" / "lab" / "package.json").is_file():
        raise SystemExit(f"drivelab's JupyterLab extension is not built ({FRONTEND}): scripts/bootstrap.sh builds it")
    variants = ["with", *(["absent", "disabled"] if args.baseline == "both" else [args.baseline])]
    machine = _cpu()
    static = sorted((FRONTEND / "labextensions" / "@drivelab" / "lab" / "static").glob("*.js"))
    build = f"{len(static)} .js files, {sum(p.stat().st_size for p in static) / 1024:.0f} KiB ({', '.join(p.name for p in static)})"
    print(f"machine: {machine}; python {sys.version.split()[0]}; the extension's build: {build}", flush=True)

    results: dict[str, dict[str, list[float]]] = {v: {m: [] for m in (*MEASURES, "fetched")} for v in variants}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="drivelab-lab-paint-") as tmp:
        ws = init_workspace(Path(tmp) / "ws").workspace
        (ws.state / FIRST_START_MARK).touch()  # the lab opens on /lab, not the getting-started notebook
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for variant in variants if round_ % 2 == 0 else variants[::-1]:
                figures = launch(variant, ws.root, Path(tmp) / f"{variant}-{round_}", args.warm)
                line = "  ".join(f"{k} {v:.2f}" for k, v in figures.items() if k != "fetched")
                print(f"round {round_}{' (warm-up)' if not round_ else ''} {variant:8s} {line}", flush=True)
                if round_:
                    for measure, value in figures.items():
                        results[variant][measure].append(value)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.rounds} rounds, {time.monotonic() - began:.0f} s, load average {load}; seconds (median, min); machine: {machine}")
    print("ratios with/baseline: of the medians, and (in brackets) of the minima; the server's start is the same in every variant, so its ratio shows the noise")
    print(f"{'measure':44s}" + "".join(f"{v:>18s}" for v in variants) + "".join(f"{'with/' + v:>18s}" for v in variants[1:]))
    table: dict[str, Any] = {}
    for measure in MEASURES:
        cells = {v: results[v][measure] for v in variants if results[v][measure]}
        if not cells:
            continue
        table[measure] = {v: summary(values) for v, values in cells.items()}
        row = f"{LABELS[measure]:44s}" + "".join(f"{statistics.median(c):10.2f} ({min(c):5.2f})" if (c := cells.get(v)) else f"{'—':>18s}" for v in variants)
        for v in variants[1:]:
            if "with" in cells and v in cells:
                ratio = statistics.median(cells["with"]) / statistics.median(cells[v])
                table[measure][f"with/{v}"] = ratio
                table[measure][f"with/{v} (minima)"] = min(cells["with"]) / min(cells[v])
                row += f"{ratio:9.2f}x ({table[measure][f'with/{v} (minima)']:.2f}x)"
        print(row)
    fetched = {v: results[v]["fetched"] for v in variants}
    print("files of the extension the cold page fetched, per launch: " + ", ".join(f"{v} {sorted(set(n))}" for v, n in fetched.items()))
    for v in variants[1:]:
        ratio = table["restored"][f"with/{v}"]
        print(f"app restored, with / {v}: {ratio:.2f}x (goal <= {GOAL}x): {'met' if ratio <= GOAL else 'NOT met'}")
    if args.json:
        document = {"machine": machine, "load_average": os.getloadavg(), "extension_build": build, "rounds": args.rounds, "variants": variants}
        args.json.write_text(json.dumps({**document, "measures": table, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

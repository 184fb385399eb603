"""Install a :class:`TorchPlan` with pip or uv, from one index (or a folder of wheels) only.

Security and correctness rules, each for a reason:

* ``--index-url`` (or ``--no-index --find-links``), never ``--extra-index-url``:
  with two indexes an installer takes the package from whichever it likes, which
  is how the 2022 torchtriton dependency-confusion attack reached PyTorch users.
  For the same reason pip's configuration files are set aside when they add
  sources of their own (``extra-index-url``, ``find-links``); the harmless
  settings in them (constraints, certificates, proxy) are passed on explicitly.
* Exact pins with the build tag (``torch==2.14.1+cu130``): an installed
  ``2.14.1+cpu`` does not satisfy that pin, so it is replaced instead of being
  reported "already satisfied".
* argv lists only, no shell; the installer's whole output goes to a log file
  that errors name, with credentials redacted.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from drivelab import _subprocess
from drivelab.errors import InstallError
from drivelab.runtime._model.pytorch import FAMILY, TorchPlan
from drivelab.runtime._model.results import InstallResult

__all__ = ["install_torch", "installer_argv", "build_matches"]

# pip settings from configuration files that are safe to carry over when the files
# themselves are set aside (they change how to connect or what to accept, not where
# packages come from).
_PIP_KEEP = ("constraint", "cert", "client-cert", "proxy", "trusted-host", "timeout", "retries")
_PIP_SOURCES = ("extra-index-url", "find-links", "index-url", "no-index")
# Environment variables that would add or replace package sources behind our back.
_SOURCE_ENV = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
)


# ------------------------------------------------------------------- what is there

_INSTALLED_SCRIPT = """
import importlib.metadata as m, importlib.util as u, json
out = {}
for name in ("torch", "torchvision", "torchaudio"):
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
out["pip"] = u.find_spec("pip") is not None
print(json.dumps(out))
"""


def _inspect(python: str) -> dict[str, Any]:
    """The torch family installed in ``python`` (package metadata only), and whether it has pip."""
    try:
        done = subprocess.run(
            [python, "-c", _INSTALLED_SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"cannot run the Python interpreter {python}: {exc}", hint="pass a working interpreter") from exc
    if done.returncode != 0:
        raise InstallError(
            f"the Python interpreter {python} failed to start: {done.stderr.strip()[-500:]}",
            hint="pass a working interpreter",
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_matches(installed: str | None, pin: str, build: str) -> bool:
    """Whether an installed version is the one a plan pins, build included.

    A pin with a local tag must match it exactly; a pin without one (PyPI's
    default build, aarch64 CPU wheels) matches the public version with no tag
    (or ``+cpu`` for the CPU build).
    """
    if installed is None:
        return False
    try:
        have, want = Version(installed), Version(pin)
    except InvalidVersion:
        return installed == pin
    if have.public != want.public:
        return False
    if want.local:
        return have.local == want.local
    if build == "default":
        return have.local is None
    if build == "cpu":
        return have.local in (None, "cpu")
    return True


def _pip_config(python: str) -> dict[str, list[str]]:
    """pip's settings from configuration files, ``{"find-links": [...], ...}`` (sections global and install)."""
    try:
        done = subprocess.run(
            [python, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    settings: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or "." not in key:
            continue
        section, name = key.split(".", 1)
        if section not in ("global", "install"):
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        settings[name] = str(value).split()
    return settings


# ------------------------------------------------------------------------ commands


def _sources(plan: TorchPlan) -> list[str]:
    if plan.find_links is not None:
        return ["--no-index", "--find-links", plan.find_links]
    assert plan.index_url is not None
    return ["--index-url", plan.index_url]


def installer_argv(
    plan: TorchPlan,
    *,
    python: str,
    installer: str,
    requirements: Sequence[str] | None = None,
    force: bool = False,
    pip_options: Sequence[str] = (),
    uv: str = "uv",
) -> list[str]:
    """The installer command for ``plan`` (or just ``requirements`` of it).

    ``force`` is the repair step: ``--force-reinstall --no-deps`` for the torch
    family alone, run only when the first step left a build other than the
    planned one in place. The dependencies were resolved by the first step, so
    ``--no-deps`` keeps numpy and friends as they are instead of reinstalling
    them all.
    """
    reqs = list(requirements if requirements is not None else plan.requirements())
    if installer == "pip":
        argv = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
        if force:
            argv += ["--force-reinstall", "--no-deps"]
        return argv + _sources(plan) + list(pip_options) + reqs
    if installer == "uv":
        # --no-config: a uv.toml may add indexes that uv would search *before* ours.
        argv = [uv, "pip", "install", "--python", python, "--no-config"]
        if force:
            argv += ["--no-deps"] + [f"--reinstall-package={r.split('==')[0]}" for r in reqs]
        return argv + _sources(plan) + reqs
    raise ValueError(f"unknown installer {installer!r}")


def _read_lines(log: Path) -> list[str]:
    try:
        return log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _log_path(log_dir: Path | None, workspace: Any) -> Path:
    if log_dir is None:
        if workspace is not None:
            log_dir = Path(workspace.state) / "logs"
        else:
            log_dir = Path(tempfile.gettempdir()) / "drivelab-logs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(log_dir) / f"setup-torch-{stamp}-{os.getpid()}.log"


# What pip and uv print when a host cannot be reached (DNS, refused, routed nowhere, timeout).
_UNREACHABLE = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "failed to resolve",
    "dns error",
    "network is unreachable",
    "failed to establish a new connection",
    "connection refused",
    "tcp connect error",
    "connecterror",
    "connecttimeout",
    "timed out",
)


def _unreachable_hint(plan: TorchPlan) -> str:
    """The ways out when the plan's index cannot be reached: wheels on disk, or a requirement pip can install."""
    return (
        "install offline from a folder of wheels: `drivelab setup torch --find-links DIR` (fetch them where the index "
        "is reachable, with `pip download`); or, for scripts/bootstrap.sh (scripts/demo.sh, scripts/test.sh), set "
        f"DRIVELAB_TORCH_SPEC to a requirement your own pip configuration can install (e.g. torch=={plan.torch_release} "
        "from a mirror) to install that instead of the plan; or check the network and proxy"
    )


# The reason inside pip's retry warning ("... connection broken by 'NewConnectionError(...:
# Failed to establish a new connection: [Errno 111] Connection refused')': /whl/cpu/torch/").
_REASON = re.compile(r"Failed to resolve [^()]*\([^()]*\)|Failed to establish a new connection: [^\"']+|(?:Read|Connect) timed out[^\"']*")


def _unreachable(lines: Sequence[str]) -> str | None:
    """Why a host could not be reached, from the first installer line that says so; else None."""
    for line in lines:
        low = line.lower()
        if any(s in low for s in _UNREACHABLE):
            reason = _REASON.search(line)
            return reason.group(0).strip() if reason else line.strip()[:300]
    return None


# pip's and uv's words for "the index listed nothing", which is also what an
# index that never answered looks like when the installer does not retry.
_NOTHING_FOUND = ("from versions: none", "no matching distribution", "not found in the package registry")


def _index_unreachable(plan: TorchPlan, lines: Sequence[str]) -> str | None:
    """Why the plan's index could not be reached, if that is why the installer failed; else None.

    First the installer's own words (pip's retry warnings, uv's connect errors);
    then, when it only says it found nothing (pip with no retries says no more),
    one request to the index page of the first package tells an empty index
    from one that does not answer.
    """
    said = _unreachable(lines)
    if said is not None:
        return said
    where = plan.index_url or plan.find_links
    text = "\n".join(lines).lower()
    if where is None or not where.startswith(("http://", "https://")) or not any(s in text for s in _NOTHING_FOUND):
        return None
    import httpx  # only on this failure path

    url = f"{where.rstrip('/')}/{next(iter(plan.packages), 'torch')}/"
    try:
        httpx.get(url, timeout=10, follow_redirects=True)
    except httpx.TransportError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _failure_hint(tail: Sequence[str], plan: TorchPlan) -> str:
    text = "\n".join(tail).lower()
    contradict = (
        "the packages contradict each other (a torchvision or torchaudio built for another torch?): "
        "let drivelab plan the set, or fix the wheels in --find-links"
    )
    if "depends on torch" in text or ("no solution found" in text and "depends on" in text):
        return contradict
    if "no matching distribution" in text or "could not find a version" in text or "not found in the package registry" in text:
        where = plan.find_links or plan.index_url
        return f"{where} has no wheel for {', '.join(plan.requirements())} on Python {plan.python}: check the index URL or the folder"
    if "(constraint)" in text:
        return "a pip constraint file forbids the planned versions: see the log, and relax the constraint or choose --torch"
    if "resolutionimpossible" in text or "conflict" in text or "no solution found" in text:
        return contradict
    if "no space left" in text:
        return "the disk is full: free space (CUDA wheels need several GB) and run again"
    return "read the log for the installer's own explanation"


def install_torch(
    plan: TorchPlan,
    *,
    python: str | os.PathLike[str] = sys.executable,
    installer: str = "auto",
    log_dir: str | os.PathLike[str] | None = None,
    workspace: Any = None,
    on_line: Callable[[str], None] | None = None,
    reinstall: bool = False,
) -> InstallResult:
    """Install ``plan`` into the environment of ``python`` and check what landed.

    ``installer``: ``"pip"``, ``"uv"`` or ``"auto"`` (uv when it is on PATH,
    else pip). The installer's full output goes to a log file in ``log_dir``
    (default: ``<workspace>/.drivelab/logs`` when a workspace is given, else
    the temp folder). ``reinstall`` also reinstalls the torch family when the
    planned builds are already in place (a damaged install). Raises :class:`InstallError`, naming the log and quoting
    its last lines, when the installer fails or the builds in place afterwards
    are not the planned ones.
    """
    start = time.perf_counter()
    python = str(python)
    if installer not in ("auto", "pip", "uv"):
        raise InstallError(f"unknown installer {installer!r}", hint="use pip, uv or auto")
    before = _inspect(python)
    uv = shutil.which("uv")
    chosen = installer
    if installer == "auto":
        chosen = "uv" if uv else "pip"
    if chosen == "uv" and not uv:
        raise InstallError("uv was asked for but is not on PATH", hint="install uv (pip install uv), or use --installer pip")
    if chosen == "pip" and not before.get("pip"):
        if installer == "auto" and uv:
            chosen = "uv"
        else:
            raise InstallError(
                f"pip is not installed in the environment of {python}",
                hint=f"run `{python} -m ensurepip`, or install uv",
            )

    notes: list[str] = []
    pip_options: list[str] = []
    env: dict[str, str] = {}
    if chosen == "pip":
        config = _pip_config(python)
        adds_sources = sorted(k for k in config if k in _PIP_SOURCES)
        if adds_sources:
            env["PIP_CONFIG_FILE"] = os.devnull
            kept = [k for k in _PIP_KEEP if k in config]
            for key in kept:
                for value in config[key]:
                    pip_options += [f"--{key}", value]
            notes.append(
                f"pip's configuration files name package sources ({', '.join(adds_sources)}); they were set aside so "
                "that the torch family comes from the planned source only"
                + (f" (kept from them: {', '.join(kept)})" if kept else "")
                + "."
            )

    log = _log_path(Path(log_dir) if log_dir is not None else None, workspace)
    commands: list[tuple[str, ...]] = []

    def run(argv: list[str]) -> None:
        commands.append(tuple(_subprocess.redact(a) for a in argv))
        done = _subprocess.stream(argv, env=env, drop_env=_SOURCE_ENV, on_line=on_line, log=log, keep=60)
        if done.returncode != 0:
            # The whole log, not the tail: pip's retry warnings come first, then pages of
            # resolver text that would bury them.
            said = _index_unreachable(plan, _read_lines(log) or done.tail)
            if said is not None:
                where = plan.find_links or plan.index_url
                raise InstallError(
                    _subprocess.redact(
                        f"the package index {where} could not be reached ({said}), so {chosen} could not install "
                        f"{', '.join(plan.requirements())}; full output in {log}"
                    ),
                    hint=_unreachable_hint(plan),
                )
            last = "\n".join(f"  | {line}" for line in done.tail[-15:])
            raise InstallError(
                f"{chosen} failed (exit code {done.returncode}) installing {', '.join(plan.requirements())}; "
                f"full output in {log}; its last lines:\n{last}",
                hint=_failure_hint(done.tail, plan),
            )

    run(installer_argv(plan, python=python, installer=chosen, pip_options=pip_options, uv=uv or "uv"))
    after = _inspect(python)
    wrong = [
        name
        for name in FAMILY
        if name in plan.packages and (reinstall or not build_matches(after.get(name), plan.packages[name], plan.backend))
    ]
    forced = False
    if wrong:
        # The first step left another build in place (an installer that counts an
        # installed build as satisfying the pin, or a damaged install whose metadata
        # still names the right version): reinstall just those, dependencies untouched.
        forced = True
        reqs = [f"{name}=={plan.packages[name]}" for name in wrong]
        run(installer_argv(plan, python=python, installer=chosen, requirements=reqs, force=True, pip_options=pip_options, uv=uv or "uv"))
        after = _inspect(python)
        still = [name for name in wrong if not build_matches(after.get(name), plan.packages[name], plan.backend)]
        if still:
            found = ", ".join(f"{n} {after.get(n)}" for n in still)
            raise InstallError(
                f"after installing, {found} is in place instead of the planned "
                + ", ".join(f"{n} {plan.packages[n]}" for n in still)
                + f"; full output in {log}",
                hint="another tool may manage this environment (conda?); install into a fresh virtual environment",
            )
    return InstallResult(
        plan=plan,
        installer=chosen,
        python=python,
        commands=tuple(commands),
        log=log,
        before={n: before.get(n) for n in FAMILY},
        installed={n: after.get(n) for n in FAMILY},
        forced_reinstall=forced,
        notes=tuple(notes),
        seconds=time.perf_counter() - start,
    )

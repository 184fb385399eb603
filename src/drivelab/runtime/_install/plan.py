"""Which PyTorch build fits this machine: one consistent torch/torchvision/torchaudio set.

Whether a build runs here is the rule of :mod:`drivelab.runtime._builds.compat` (the driver runs its CUDA
version, natively or through CUDA's minor-version compatibility, and every GPU
finds kernels in it). Among the builds that run, the newest torch release wins,
then the best build of it: stable before experimental, the full
torch/torchvision/torchaudio set before a partial one, one the driver runs
natively before one it runs through minor-version compatibility, the newest
CUDA. What the user forced (:mod:`.overrides`) is resolved before choosing.

Planning is offline: it reads the release table (:mod:`drivelab.runtime._builds.releases`), or a
refreshed copy of it, and, for ``find_links``, the wheels in that folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from drivelab.errors import PlanError
from drivelab.runtime._builds.compat import (
    Fit,
    Needs,
    cuda_build_text,
    fit,
    fmt_platform,
    fmt_version,
    gpu_list,
    machine_needs,
    min_driver_to_run,
    minor_compat_note,
)
from drivelab.runtime._builds.releases import MACOS_X86_64_LAST, RELEASES
from drivelab.runtime._builds.wheel_tags import index_url_for, parse_backend
from drivelab.runtime._cuda import CC, minor_compat_minimum
from drivelab.runtime._install.overrides import BACKEND_ENV, Overrides, resolve_overrides
from drivelab.runtime._model.machine import MachineInfo
from drivelab.runtime._model.pytorch import FAMILY, Backend, TorchPlan, TorchRelease

if TYPE_CHECKING:  # wheel files are read only for --find-links
    from drivelab.runtime._builds.wheel_files import WheelFile

__all__ = ["plan_torch_install", "BACKEND_ENV"]

_KIND_NAMES = {"cuda": "a CUDA", "rocm": "a ROCm", "xpu": "an XPU", "cpu": "a CPU", "default": "a PyPI"}


# --------------------------------------------------------------------- availability


class _Source(NamedTuple):
    """Where packages come from: an index (the table says what exists) or a folder
    of wheels (only what is there exists). The planner's own records are named
    tuples: a dry run pays for no dataclass machinery it does not use."""

    releases: Sequence[TorchRelease]
    wheels: list[WheelFile] | None = None

    def version_of(self, package: str, release: TorchRelease, backend: str, needs: Needs) -> str | None:
        """The exact version of ``package`` for ``release`` to pin, or None when that
        package has no wheel of this build for this Python and platform."""
        version = release.package_version(package)
        if version is None:
            return None
        if self.wheels is not None:
            for wheel in self.wheels:
                if wheel.package == package and wheel.version == version and wheel.backend == backend and wheel.fits(needs.python, needs.platform):
                    return wheel.full_version
            return None
        if not release.has_wheel(package, backend, needs.python, needs.platform):
            return None
        return _pin(version, backend, needs.platform)

    def torch_available(self, release: TorchRelease, backend: str, needs: Needs) -> bool:
        return self.version_of("torch", release, backend, needs) is not None


def _pin(version: str, backend: str, platform: str) -> str:
    if backend == "default":
        return version
    if backend == "cpu" and platform == "linux_aarch64":
        # aarch64 CPU wheels on whl/cpu have been published with and without the
        # "+cpu" tag; that index holds CPU builds only, so the public version is exact
        # enough, and install_torch checks the build it got.
        return version
    return f"{version}+{backend}"


# ------------------------------------------------------------------------ the choice


def _rank(backend: Backend, release: TorchRelease, source: _Source, needs: Needs) -> tuple[Any, ...]:
    """Sort key, best first: stable, full set, (widest archs when GPUs are unknown), run natively
    rather than through minor-version compatibility (which may lack features), newest version."""
    full = source.version_of("torchaudio", release, backend.name, needs) is not None
    unknown_cc = needs.target == "cuda" and (not needs.gpus or any(cc is None for _, cc in needs.gpus))
    width = -len(backend.sm) if unknown_cc else 0
    return (backend.experimental, not full, width, fit(backend, needs).minor_compat, tuple(-v for v in (backend.version or ())))


class _Choice(NamedTuple):
    release: TorchRelease
    backend: Backend
    partial: list[int] | None = None


def _candidates(source: _Source, needs: Needs, version: str | None) -> list[TorchRelease]:
    releases = sorted(source.releases, key=lambda r: r.parsed, reverse=True)
    if version is not None:
        releases = [r for r in releases if r.version == version or r.line == version]
    return releases


def _choose_auto(source: _Source, needs: Needs, version: str | None) -> tuple[_Choice | None, list[str]]:
    """The best (release, backend) for the machine's accelerator, and why others failed."""
    kind = needs.target
    rejected: list[str] = []
    releases = _candidates(source, needs, version)
    for release in releases:
        options = [
            b
            for b in release.backends
            if b.kind == kind and needs.platform in b.platforms and source.torch_available(release, b.name, needs)
        ]
        fitting = []
        for backend in options:
            result = fit(backend, needs)
            if result.ok:
                fitting.append(backend)
            elif result.reason and result.reason not in rejected:
                rejected.append(result.reason)
        if fitting:
            fitting.sort(key=lambda b: _rank(b, release, source, needs))
            return _Choice(release, fitting[0]), rejected
    if kind == "cuda" and len(needs.gpus) > 1:
        # No build serves every GPU: serve as many as possible, the newest GPUs
        # first (they are why the machine was bought), the newest release first.
        def score(served: list[int]) -> tuple[int, CC]:
            return len(served), max((needs.gpus[i][1] or (0, 0) for i in served), default=(0, 0))

        best: _Choice | None = None
        for release in releases:
            for b in release.backends:
                if b.kind != "cuda" or needs.platform not in b.platforms or not source.torch_available(release, b.name, needs):
                    continue
                result = fit(b, needs)  # serves nothing where the driver does not run the build
                if result.served and (best is None or score(result.served) > score(best.partial or [])):
                    best = _Choice(release, b, result.served)
        if best is not None:
            return best, rejected
    return None, rejected


def _first_with_backend(source: _Source, needs: Needs, name: str, version: str | None) -> tuple[_Choice | None, list[str]]:
    """For a forced backend: the newest release that has it and fits this machine."""
    rejected: list[str] = []
    first_failure: str | None = None
    for release in _candidates(source, needs, version):
        backend = release.backend(name, needs.platform)
        if backend is None or not source.torch_available(release, name, needs):
            continue
        result = fit(backend, needs)
        if result.ok:
            return _Choice(release, backend), rejected
        if first_failure is None:
            first_failure = f"torch {release.version}: {result.reason}"
    if first_failure:
        rejected.append(first_failure)
    return None, rejected


# ------------------------------------------------------------------------- the plan


class _Request(NamedTuple):
    """One planning call, once the overrides are resolved: where packages come from, what the
    machine asks, what the user forced, and the warnings gathered so far."""

    source: _Source
    needs: Needs
    overrides: Overrides
    warnings: list[str]


def plan_torch_install(
    machine: MachineInfo,
    *,
    backend: str | None = None,
    torch_version: str | None = None,
    index_url: str | None = None,
    find_links: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    releases: Sequence[TorchRelease] | None = None,
) -> TorchPlan:
    """Plan the torch/torchvision/torchaudio install that fits ``machine``.

    ``backend`` (else ``$DRIVELAB_TORCH_BACKEND``, read now from ``env`` or the
    process environment) forces a build; ``torch_version`` a release (``"2.13"``,
    ``"2.13.0"`` or ``"2.13.0+cu126"``); ``index_url`` a mirror of the build's
    index (its last path segment, when a build name, also picks the build);
    ``find_links`` a folder of wheels to install from with ``--no-index``, in
    which case only what the folder holds is planned. ``releases`` replaces the
    built-in table (see :func:`refresh_releases`).

    Raises :class:`PlanError` for an override that cannot work on this machine
    (a build without kernels for its GPU, a driver too old for it, an unknown
    build or version, a Python version without wheels) and when no PyTorch has
    wheels for this Python and platform at all.
    """
    table = tuple(releases) if releases is not None else RELEASES
    overrides = resolve_overrides(
        backend=backend,
        torch_version=torch_version,
        index_url=index_url,
        find_links=find_links,
        env=os.environ if env is None else env,
        releases=table,
    )
    needs = machine_needs(machine)
    wheels = list(overrides.wheels) if overrides.wheels is not None else None
    req = _Request(_Source(table, wheels), needs, overrides, list(needs.warnings))
    version, forced = overrides.version, overrides.backend

    if needs.platform == "macos_x86_64":
        return _plan_intel_mac(req)

    if forced is not None:
        choice, _ = _plan_forced(forced, overrides.origin, req.source, needs, version)
        if forced_kind(forced) != needs.target and forced_kind(forced) in ("cuda", "rocm", "xpu"):
            req.warnings.append(_no_gpu_for(forced, needs))
    else:
        choice, rejected = _choose_auto(req.source, needs, version)
        if choice is None and needs.target not in ("cpu", "default"):
            req.warnings.append(_gpu_unusable(needs, rejected))
            fallback = "default" if needs.platform.startswith("macos") else "cpu"
            choice, _ = _choose_auto(req.source, replace(needs, target=fallback), version)
        if choice is None:
            raise _nothing_fits(req.source, needs, version)
    return _assemble(choice, req)


def forced_kind(name: str) -> str:
    parsed = parse_backend(name)
    return parsed[0] if parsed else "?"


def _no_gpu_for(name: str, needs: Needs) -> str:
    kind = forced_kind(name)
    gpu = {"cuda": "NVIDIA", "rocm": "AMD", "xpu": "Intel"}[kind]
    return (
        f"The {name} build was asked for, but no {gpu} GPU was found on this machine: "
        "it will install, and run on the CPU only."
    )


def _plan_forced(name: str, origin: str, source: _Source, needs: Needs, version: str | None) -> tuple[_Choice, list[str]]:
    choice, rejected = _first_with_backend(source, needs, name, version)
    if choice is not None:
        return choice, rejected
    # Say exactly why it cannot work.
    releases = _candidates(source, needs, version)
    what = f"torch {version}" if version else "no PyTorch release drivelab knows"
    with_backend = [r for r in releases if r.backend(name, needs.platform) is not None]
    if rejected:
        fix = _suggest_for(source, needs, version)
        raise PlanError(
            f"the {name} build (from {origin}) cannot run on this machine: {rejected[0]}",
            hint=fix,
        )
    if not with_backend:
        names = sorted({n for r in releases for n in r.backend_names(needs.platform)})
        elsewhere = any(name in r.backend_names() for r in releases)
        where = f" for {fmt_platform(needs.platform)}" if elsewhere else ""
        raise PlanError(
            f"{what} has {'no ' if version else 'a '}{name} build{where}",
            hint=f"choose a build it has ({', '.join(names)}), or another --torch version"
            if version
            else f"builds for {fmt_platform(needs.platform)}: {', '.join(names)}",
        )
    pythons = sorted({p for r in with_backend for p in r.python}, key=lambda p: int(p.split('.')[1]))
    if source.wheels is not None:
        raise PlanError(
            f"the --find-links folder holds no torch wheel of the {name} build for Python {needs.python} on {fmt_platform(needs.platform)}",
            hint="add the wheel to the folder, or drop --backend/--torch to plan from what it holds",
        )
    subject = f"torch {version} has no {name} wheels" if version else f"no {name} build has wheels"
    raise PlanError(
        f"{subject} for Python {needs.python}; they exist for Python {', '.join(pythons)}",
        hint="use one of those Python versions, or another --torch version",
    )


def _suggest_for(source: _Source, needs: Needs, version: str | None) -> str:
    choice, _ = _choose_auto(source, needs, version)
    if choice is None:
        choice, _ = _choose_auto(source, needs, None)
    if choice is None:
        return "no PyTorch GPU build supports this GPU: drop --backend (and $DRIVELAB_TORCH_BACKEND) to install the CPU build"
    return (
        f"the build that fits is {choice.backend.name} (torch {choice.release.version}): "
        f"run `drivelab setup torch --backend {choice.backend.name}` or drop --backend to let drivelab choose"
    )


def _gpu_unusable(needs: Needs, rejected: list[str]) -> str:
    if needs.target == "cuda":
        driver = needs.driver
        assert driver is not None and driver.cuda is not None
        cuda_builds = [b for r in RELEASES for b in r.backends if b.kind == "cuda" and b.version and needs.platform in b.platforms]
        if cuda_builds and not any(driver.runs(b.version) for b in cuda_builds):
            oldest_cuda = min(b.version for b in cuda_builds if b.version)
            # The newest release with a CUDA build here, not the newest release: that one
            # may have none in the table yet.
            newest = max(
                (r for r in RELEASES if any(b.kind == "cuda" and needs.platform in b.platforms for b in r.backends)),
                key=lambda r: r.parsed,
            )
            widest = newest.backend("cu126", needs.platform) or next(
                (b for b in newest.backends if b.kind == "cuda" and needs.platform in b.platforms), None
            )
            want = min_driver_to_run(widest, windows=driver.windows) if widest else minor_compat_minimum(12, windows=driver.windows)
            natively = (
                f", through CUDA's minor-version compatibility; >= {widest.min_driver} runs it natively"
                if widest is not None and want != widest.min_driver
                else ""
            )
            return (
                f"The NVIDIA driver is too old for any PyTorch CUDA build: {needs.cuda_source}, and the oldest "
                f"CUDA build needs CUDA {fmt_version(oldest_cuda)}. Planning the CPU build; to use the GPU, upgrade the "
                f"NVIDIA driver (>= {want} for torch {newest.version}+{widest.name if widest else 'cu126'}{natively}), "
                "then run `drivelab setup torch` again."
            )
        why = "; ".join(rejected[:3]) or "no CUDA build fits"
        return (
            f"No PyTorch CUDA build runs on {gpu_list(needs.gpus)} with this driver ({why}). Planning the CPU build; "
            "a newer driver may open newer builds, and GPUs older than Maxwell (5.0) have no current build."
        )
    if needs.target == "rocm":
        gfx = ", ".join(f"{n} ({g})" for n, g in needs.gfx)
        hint = ""
        if any(g.startswith("gfx103") for _, g in needs.gfx):
            hint = (
                " RDNA2 cards other than gfx1030 often work with HSA_OVERRIDE_GFX_VERSION=10.3.0 and a ROCm build, "
                "unsupported by AMD and PyTorch (force it with --backend rocm7.2)."
            )
        return (
            f"No PyTorch ROCm build carries the architecture of {gfx} (supported: gfx900, gfx906, gfx908, gfx90a, "
            f"gfx942, gfx950, gfx1030, gfx110x, gfx115x, gfx120x). Planning the CPU build.{hint}"
        )
    if needs.target == "xpu":
        return f"No XPU build of PyTorch has wheels for Python {needs.python} on {fmt_platform(needs.platform)}. Planning the CPU build."
    return "No GPU build fits. Planning the CPU build."


def _nothing_fits(source: _Source, needs: Needs, version: str | None) -> PlanError:
    releases = _candidates(source, needs, version)
    if source.wheels is not None:
        found = sorted({w.filename for w in source.wheels if w.package == "torch"})
        return PlanError(
            f"no torch wheel in --find-links fits Python {needs.python} on {fmt_platform(needs.platform)}"
            + (f" (torch {version})" if version else ""),
            hint="the folder holds: " + ", ".join(found[:6]),
        )
    supported = sorted({p for r in releases for p in r.python if any(needs.platform in b.platforms for b in r.backends)}, key=lambda p: int(p.split(".")[1]))
    if not supported:
        return PlanError(f"PyTorch publishes no wheels for {fmt_platform(needs.platform)}", hint="use Linux x86_64/aarch64, Windows x86_64 or macOS arm64")
    what = f"torch {version}" if version else "no PyTorch release drivelab knows"
    if version:
        return PlanError(
            f"torch {version} has no wheels for Python {needs.python} on {fmt_platform(needs.platform)}; it supports Python {', '.join(supported)}",
            hint="use one of those Python versions, or another --torch version",
        )
    return PlanError(
        f"{what} has wheels for Python {needs.python} on {fmt_platform(needs.platform)}; PyTorch supports Python {supported[0]} to {supported[-1]}",
        hint=f"create the environment with Python {supported[-1]} (for example `uv venv --python {supported[-1]}`)",
    )


def _plan_intel_mac(req: _Request) -> TorchPlan:
    needs, version, warnings = req.needs, req.overrides.version, req.warnings
    release = MACOS_X86_64_LAST
    if version is not None and version not in (release.version, release.line):
        raise PlanError(
            f"torch {version} has no wheels for Intel Macs; the last release with them is {release.version}",
            hint=f"use --torch {release.version}, or a Linux machine / Apple silicon for newer PyTorch",
        )
    if needs.python not in release.python:
        raise PlanError(
            f"no PyTorch has wheels for Python {needs.python} on Intel Macs: the last release ({release.version}) "
            f"supports Python {release.python[0]} to {release.python[-1]}",
            hint=f"create the environment with Python {release.python[-1]}, or build PyTorch from source",
        )
    warnings.append(
        f"PyTorch stopped publishing Intel-Mac wheels after {release.version}; it was built against NumPy 1.x, so keep numpy<2 in this environment."
    )
    packages = {"torch": release.version, "torchvision": release.torchvision}
    if release.torchaudio:
        packages["torchaudio"] = release.torchaudio
    explanation = (
        f"This is an Intel Mac (macOS x86_64) with Python {needs.python}. PyTorch's last release with wheels for it is "
        f"{release.version} (torchvision {release.torchvision}, torchaudio {release.torchaudio}), from PyPI; it runs on "
        "the CPU (MPS needs Apple silicon)."
    )
    return TorchPlan(
        backend="default",
        index_url=req.overrides.index_url or index_url_for("default"),
        find_links=None,
        packages=packages,
        torch_release=release.version,
        python=needs.python,
        platform=needs.platform,
        explanation=explanation,
        warnings=tuple(warnings),
        overrides=req.overrides.record(),
    )


def _assemble(choice: _Choice, req: _Request) -> TorchPlan:
    source, needs, warnings = req.source, req.needs, req.warnings
    version, forced, origin = req.overrides.version, req.overrides.backend, req.overrides.origin
    find_links, index_url = req.overrides.find_links, req.overrides.index_url
    release, backend = choice.release, choice.backend
    packages: dict[str, str] = {}
    for package in FAMILY:
        want = release.package_version(package)
        pin = source.version_of(package, release, backend.name, needs)
        if pin is not None:
            packages[package] = pin
        elif package != "torch":
            warnings.append(_missing_package(package, want, release, backend, source, needs))
    assert "torch" in packages

    newest = max(source.releases, key=lambda r: r.parsed)
    parts: list[str] = []
    machine_text = _machine_text(needs)
    if forced is not None:
        parts.append(f"You asked for the {backend.name} build ({origin}).")
    parts.append(machine_text)

    notes: list[str] = []
    if backend.kind == "cuda" and needs.target == "cuda":
        result = fit(backend, needs)
        covers = (
            f", which cover {'every GPU here' if len(needs.gpus) > 1 else 'this GPU'}."
            if choice.partial is None and needs.gpus and all(cc for _, cc in needs.gpus)
            else "."
        )
        parts.append(cuda_build_text(backend, needs, result, covers=covers))
        if result.minor_compat:
            notes.append(minor_compat_note(backend, needs))
        skipped = _skipped_newer_cuda(release, backend, result, source, needs)
        if skipped:
            parts.append(skipped)
    elif backend.kind == "rocm" and needs.target == "rocm":
        parts.append(f"The {backend.name} build carries kernels for {', '.join(backend.gfx)}, which include {', '.join(sorted({g for _, g in needs.gfx}))}.")
    elif backend.kind == "xpu":
        parts.append("The xpu build runs on Intel GPUs supported by PyTorch's XPU backend.")
    elif backend.kind == "default" and needs.platform == "macos_arm64":
        parts.append("On Apple silicon PyPI's default build is the one to use: Metal (MPS) support is built in.")
    elif backend.kind == "cpu" and needs.target == "cpu" and not needs.warnings:
        parts.append("With no supported GPU, the CPU build is the right one: smaller, and nothing to go wrong with drivers.")
    elif backend.kind == "cpu":
        parts.append("The CPU build is planned instead (see the warnings).")

    if release.version != newest.version and version is None:
        parts.append(_why_not_newest(release, newest, backend, needs, source, forced))
    elif version is None:
        parts.append(f"torch {release.version} is the newest release drivelab knows.")
    else:
        parts.append(f"torch {release.version} was asked for.")
    if choice.partial is not None:
        unserved = [needs.gpus[i] for i in range(len(needs.gpus)) if i not in choice.partial]
        warnings.append(
            f"No PyTorch build has kernels for every GPU here. {backend.name} serves "
            f"{gpu_list([needs.gpus[i] for i in choice.partial])} but not {gpu_list(unserved)}: hide those with "
            f"CUDA_VISIBLE_DEVICES={','.join(str(i) for i in choice.partial)}, or they fail with 'no kernel image is available'."
        )
    if backend.experimental:
        warnings.append(f"The {backend.name} build of torch {release.version} is marked experimental in PyTorch's release matrix.")

    where = find_links if find_links is not None else (index_url or index_url_for(backend.name))
    if find_links is not None:
        parts.append(f"Everything is installed offline from {find_links} (--no-index).")
    else:
        pinned = "pinned to exact versions" if backend.name == "default" else "pinned with the build tag, so an installed build of another kind is replaced"
        parts.append(f"Everything comes from one index, {where}, {pinned}.")

    return TorchPlan(
        backend=backend.name,
        index_url=None if find_links is not None else where,
        find_links=find_links,
        packages=packages,
        torch_release=release.version,
        python=needs.python,
        platform=needs.platform,
        explanation=" ".join(parts),
        warnings=tuple(warnings),
        overrides=req.overrides.record(),
        cuda=backend.version_text if backend.kind == "cuda" else None,
        rocm=backend.version_text if backend.kind == "rocm" else None,
        archs=tuple(backend.arch_names()),
        notes=tuple(notes),
    )


def _machine_text(needs: Needs) -> str:
    where = f"Python {needs.python} on {fmt_platform(needs.platform)}"
    if needs.target == "cuda":
        gpus = gpu_list(needs.gpus) if needs.gpus else "an NVIDIA GPU"
        return f"This machine has {gpus}; its {needs.cuda_source}; {where}."
    if needs.target == "rocm":
        return f"This machine has AMD {', '.join(f'{n} ({g})' for n, g in needs.gfx)}; {where}."
    if needs.target == "xpu":
        return f"This machine has Intel GPU(s) {', '.join(needs.xpu)}; {where}."
    if needs.target == "default":
        return f"This is a Mac with Apple silicon; {where}."
    if needs.warnings:
        return f"No GPU can be used (see the warnings); {where}."
    return f"No GPU was found; {where}."


def _skipped_newer_cuda(release: TorchRelease, chosen: Backend, chosen_fit: Fit, source: _Source, needs: Needs) -> str:
    """Why the release's newer CUDA builds lost to ``chosen``, in the order of :func:`_rank`."""
    assert chosen.version is not None
    newer = [
        b for b in release.backends
        if b.kind == "cuda" and needs.platform in b.platforms and b.version and b.version > chosen.version
    ]  # fmt: skip
    chosen_full = source.version_of("torchaudio", release, chosen.name, needs) is not None
    reasons = []
    for b in newer:
        result = fit(b, needs)
        if not result.ok:
            reasons.append(result.reason)
        elif not source.torch_available(release, b.name, needs):
            reasons.append(f"{b.name} has no torch wheel for Python {needs.python}")
        elif b.experimental and not chosen.experimental:
            reasons.append(f"{b.name} is experimental in {release.version}")
        elif chosen_full and source.version_of("torchaudio", release, b.name, needs) is None:
            reasons.append(f"{b.name} has no torchaudio build")
        elif result.minor_compat and not chosen_fit.minor_compat:
            reasons.append(f"{b.name} would run only through CUDA's minor-version compatibility, {chosen.name} runs natively")
        else:
            reasons.append(f"{b.name} carries kernels for fewer GPU architectures ({len(b.sm)}, against {len(chosen.sm)})")
    if not reasons:
        return ""
    return "Newer CUDA builds of this release are not used: " + "; ".join(reasons) + "."


def _why_not_newest(
    release: TorchRelease, newest: TorchRelease, backend: Backend, needs: Needs, source: _Source, forced: str | None
) -> str:
    if not newest.has_wheel("torch", newest.backends[0].name, needs.python, needs.platform) and needs.python not in newest.python:
        return (
            f"torch {release.version} is the newest release with wheels for Python {needs.python} "
            f"(torch {newest.version} supports Python {newest.python[0]} to {newest.python[-1]})."
        )
    if source.wheels is not None:
        return f"torch {release.version} is the newest release in the wheel folder."
    if forced is not None:
        return f"torch {release.version} is the newest release with a {backend.name} build that runs here."
    if not any(b.kind == backend.kind and needs.platform in b.platforms for b in newest.backends):
        # The table leaves out builds whose GPU architectures are not established yet:
        # explain against the newest release that has this kind of build.
        newest_kind = max(
            (r for r in source.releases if any(b.kind == backend.kind and needs.platform in b.platforms for b in r.backends)),
            key=lambda r: r.parsed,
        )
        if newest_kind.version == release.version:
            return (
                f"torch {release.version} is the newest release with {_KIND_NAMES.get(backend.kind, 'a ' + backend.kind)} build "
                f"in drivelab's release table for {fmt_platform(needs.platform)}; it lists none of torch {newest.version}."
            )
        newest = newest_kind
    if backend.kind == "cuda":
        other = [b for b in newest.backends if b.kind == "cuda" and needs.platform in b.platforms]
        reasons = [result.reason for result in (fit(b, needs) for b in other) if not result.ok]
        return (
            f"torch {release.version} is the newest release with a build that runs here; torch {newest.version} does not: "
            + "; ".join(reasons[:3])
            + "."
        )
    return f"torch {release.version} is the newest release with a {backend.name} build for this machine."


def _missing_package(
    package: str, want: str | None, release: TorchRelease, backend: Backend, source: _Source, needs: Needs
) -> str:
    if want is None:
        return f"No {package} goes with torch {release.version}: not installed."
    if source.wheels is not None:
        there = sorted({w.full_version for w in source.wheels if w.package == package})
        found = f" (the folder has {package} {', '.join(there)})" if there else ""
        return (
            f"The wheel folder has no {package} {want} for the {backend.name} build, Python {needs.python}{found}: "
            f"{package} is left out, since another version would not match torch {release.version}."
        )
    return (
        f"{package} {want} (the one for torch {release.version}) has no {backend.name} wheel for Python {needs.python}: "
        f"{package} is left out."
    )

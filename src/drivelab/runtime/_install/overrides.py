"""What the user forced on the plan, from every source, resolved once before any build is chosen.

Four sources can force the build, checked against each other here so that the
choice itself reads one value: ``--backend`` (else ``$DRIVELAB_TORCH_BACKEND``),
the local tag of ``--torch`` (``2.13.0+cu126``), and the last path segment of
``--index-url`` when it names a build (``.../whl/cu126``). ``--torch`` also
pins the release and ``--find-links`` replaces the index with a folder of
wheels. A conflict, an unknown build or release, or a folder without a torch
wheel is a :class:`PlanError` naming where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drivelab.errors import PlanError, UnknownBackendError
from drivelab.runtime._builds.releases import KNOWN_BACKENDS, find_release
from drivelab.runtime._builds.wheel_tags import parse_backend
from drivelab.runtime._model.pytorch import TorchRelease

if TYPE_CHECKING:  # wheel files are read only for --find-links
    from drivelab.runtime._builds.wheel_files import WheelFile

__all__ = ["BACKEND_ENV", "Overrides", "resolve_overrides"]

BACKEND_ENV = "DRIVELAB_TORCH_BACKEND"


@dataclass(frozen=True)
class Overrides:
    """The user's choices, consistent with each other; all None when nothing is forced."""

    backend: str | None = None
    """A build name (``"cu126"``) every package must have."""
    origin: str = "--backend"
    """Where ``backend`` came from: ``--backend``, ``$DRIVELAB_TORCH_BACKEND``, ``--torch`` or ``--index-url``."""
    version: str | None = None
    """A release, ``"2.13"`` or ``"2.13.0"``."""
    index_url: str | None = None
    find_links: str | None = None
    wheels: tuple[WheelFile, ...] | None = None
    """The wheels in a local ``find_links`` folder; None for a URL or without one."""

    def record(self) -> dict[str, str]:
        """What :attr:`TorchPlan.overrides` shows: ``{"backend": "cu126 (--backend)", ...}``."""
        out: dict[str, str] = {}
        if self.backend is not None:
            out["backend"] = f"{self.backend} ({self.origin})"
        if self.version is not None:
            out["torch"] = self.version
        if self.index_url:
            out["index_url"] = self.index_url
        if self.find_links is not None:
            out["find_links"] = self.find_links
        return out


def resolve_overrides(
    *,
    backend: str | None,
    torch_version: str | None,
    index_url: str | None,
    find_links: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    releases: Sequence[TorchRelease],
) -> Overrides:
    """Read and check every override (see the module); ``env`` is read now, not at import."""
    if index_url and find_links:
        raise PlanError(
            "--index-url and --find-links cannot be used together",
            hint="use --find-links DIR to install offline from a folder of wheels, or --index-url URL for a mirror",
        )

    forced = _normalize_backend(backend)
    origin = "--backend"
    if forced is None:
        forced = _normalize_backend(env.get(BACKEND_ENV))
        origin = f"${BACKEND_ENV}"
    if forced is not None:
        _check_backend_name(forced, origin, releases)

    version: str | None = None
    if torch_version:
        version, _, local = torch_version.strip().partition("+")
        version = version.removeprefix("torch==").strip()
        if local:
            local = local.lower()
            if forced is not None and forced != local:
                raise PlanError(
                    f"--torch {torch_version} asks for the {local} build but {origin} asks for {forced}",
                    hint="give the build once: --torch VERSION --backend BUILD",
                )
            _check_backend_name(local, "--torch", releases)
            if forced is None:
                forced, origin = local, "--torch"

    if index_url:
        from_url = _backend_from_index_url(index_url)
        if from_url is not None:
            if forced is not None and forced != from_url:
                raise PlanError(
                    f"--index-url {index_url} is the index of the {from_url} build, but {origin} asks for {forced}",
                    hint="pass the index URL that serves the build you want (its last part names the build)",
                )
            if forced is None:
                _check_backend_name(from_url, "--index-url", releases)
                forced, origin = from_url, "--index-url"

    find_links_text = str(find_links) if find_links is not None else None
    wheels = _wheels_in(find_links_text) if find_links_text is not None and "://" not in find_links_text else None

    if version is not None and wheels is None and find_release(version, releases) is None:
        known = ", ".join(r.version for r in sorted(releases, key=lambda r: r.parsed)[-8:])
        raise PlanError(
            f"torch {version} is not a release drivelab knows",
            hint=f"known releases include {known}; a newer one is learned online with `drivelab setup torch --refresh`",
        )
    return Overrides(forced, origin, version, index_url or None, find_links_text, wheels)


def _wheels_in(folder_text: str) -> tuple[WheelFile, ...]:
    from drivelab.runtime._builds.wheel_files import scan_wheels

    folder = Path(folder_text)
    if not folder.is_dir():
        raise PlanError(
            f"--find-links {folder_text}: no such folder",
            hint="give a folder holding the torch (and torchvision, torchaudio) wheels",
        )
    wheels = scan_wheels(folder)
    if not any(w.package == "torch" for w in wheels):
        raise PlanError(
            f"--find-links {folder_text} holds no torch wheel",
            hint="fill it with `pip download --dest DIR torch==VERSION+BUILD ...` on a machine with internet",
        )
    return tuple(wheels)


def _normalize_backend(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if value in ("", "auto"):
        return None
    return value


def _check_backend_name(name: str, origin: str, releases: Sequence[TorchRelease]) -> None:
    known = set(KNOWN_BACKENDS) | {b.name for r in releases for b in r.backends}
    if name not in known:
        hint_names = ", ".join(n for n in KNOWN_BACKENDS)
        why = "no PyTorch release drivelab knows has that build" if parse_backend(name) else "not a PyTorch build name"
        raise UnknownBackendError(
            f"unknown PyTorch backend {name!r} (from {origin}): {why}",
            hint=f"choose one of: auto, {hint_names}",
        )


def _backend_from_index_url(url: str) -> str | None:
    last = url.rstrip("/").rsplit("/", 1)[-1].lower()
    return last if parse_backend(last) and last != "default" else None

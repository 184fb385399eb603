"""Learning releases newer than the built-in table: a PEP 503/691 simple index, read when online.

:func:`refresh_releases` reads ``<index>/torch/``, ``/torchvision/`` and
``/torchaudio/`` and merges what they list (versions, builds, Python tags,
platforms) into the release table of :mod:`.releases`. Offline it changes
nothing and says so, so planning never depends on the network.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from packaging.version import Version

from drivelab.runtime._builds.releases import RELEASES, TABLE_DATE
from drivelab.runtime._builds.wheel_files import WheelFile, parse_wheel
from drivelab.runtime._builds.wheel_tags import DEFAULT_INDEX_ROOT
from drivelab.runtime._model.pytorch import TorchRelease
from drivelab.runtime._model.results import RefreshResult

__all__ = ["refresh_releases", "merge_wheels"]

_HREF = re.compile(r"""<a\s[^>]*href=["']([^"'#]+)""", re.IGNORECASE)


def _filenames_from_page(body: str, content_type: str) -> list[str]:
    """File names from a PEP 691 JSON page or a PEP 503 HTML page."""
    from urllib.parse import unquote, urlparse

    if "json" in content_type:
        import json

        data = json.loads(body)
        return [entry["filename"] for entry in data.get("files", []) if "filename" in entry]
    names = []
    for href in _HREF.findall(body):
        names.append(unquote(urlparse(href).path.rsplit("/", 1)[-1]))
    return names


def refresh_releases(
    index_url: str = DEFAULT_INDEX_ROOT,
    *,
    releases: Sequence[TorchRelease] = RELEASES,
    timeout: float = 5.0,
    client: Any = None,
) -> RefreshResult:
    """Merge what a simple index lists into the release table.

    Reads ``<index_url>/torch/``, ``/torchvision/`` and ``/torchaudio/`` (PEP 691
    JSON when offered, else PEP 503 HTML). For every build the index lists, the
    Python tags and platforms it has become exact; builds it does not list keep
    the table's word (a per-build index such as ``.../whl/cu130`` lists only one).
    Torch versions newer than the table are added when their torchvision is
    listed too, with the architectures of the newest known release of the same
    build (marked ``source="index"``).

    Offline (no answer, an HTTP error) this is a no-op that says so in ``notes``.
    """
    import httpx

    start = time.perf_counter()
    base = index_url.rstrip("/")
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=True)
    pages: dict[str, list[str]] = {}
    try:
        for package in ("torch", "torchvision", "torchaudio"):
            url = f"{base}/{package}/"
            try:
                response = http.get(url, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
            except httpx.HTTPError as exc:
                if package == "torch":
                    note = f"offline or unreachable ({type(exc).__name__}: {exc}); using the built-in release table of {TABLE_DATE}"
                    return RefreshResult(tuple(releases), False, index_url, (note,), time.perf_counter() - start)
                continue
            if response.status_code != 200:
                if package == "torch":
                    note = f"{url} answered HTTP {response.status_code}; using the built-in release table of {TABLE_DATE}"
                    return RefreshResult(tuple(releases), False, index_url, (note,), time.perf_counter() - start)
                continue
            pages[package] = _filenames_from_page(response.text, response.headers.get("content-type", ""))
    finally:
        if own_client:
            http.close()
    wheels = [w for names in pages.values() for w in map(parse_wheel, names) if w is not None]
    merged, notes = merge_wheels(releases, wheels)
    return RefreshResult(merged, True, index_url, tuple(notes), time.perf_counter() - start)


def merge_wheels(releases: Sequence[TorchRelease], wheels: Sequence[WheelFile]) -> tuple[tuple[TorchRelease, ...], list[str]]:
    """The table with what a list of wheels says merged in (see :func:`refresh_releases`)."""
    by_version: dict[tuple[str, str], dict[str, set[tuple[str, str, str]]]] = {}
    for wheel in wheels:
        entries = by_version.setdefault((wheel.package, wheel.version), {})
        bucket = entries.setdefault(wheel.backend, set())
        for py in wheel.pythons:
            tag = py[5:] if py.startswith("abi3:") else py
            for plat in wheel.platforms:
                bucket.add((wheel.backend, tag, plat))

    def learned(package: str, version: str | None) -> frozenset[tuple[str, str, str]] | None:
        if version is None or (package, version) not in by_version:
            return None
        return frozenset(e for bucket in by_version[(package, version)].values() for e in bucket)

    notes: list[str] = []
    out: list[TorchRelease] = []
    for release in releases:
        found = {pkg: learned(pkg, release.package_version(pkg)) for pkg in ("torch", "torchvision", "torchaudio")}
        known = {pkg: entries for pkg, entries in found.items() if entries is not None}
        out.append(replace(release, wheels=known, source="table+index") if known else release)

    newest = max(releases, key=lambda r: r.parsed) if releases else None
    new_versions = sorted(
        {Version(v) for (pkg, v) in by_version if pkg == "torch" and not Version(v).is_prerelease and not Version(v).is_devrelease},
    )
    for version in new_versions:
        if newest is None or version <= newest.parsed:
            continue
        # torchvision's minor has stayed torch's minor + 15 since torch 2.0 (0.15).
        guess = f"0.{version.minor + 15}.{version.micro}"
        if ("torchvision", guess) not in by_version:
            notes.append(f"the index lists torch {version} but not torchvision {guess}: not added")
            continue
        torch_entries = learned("torch", str(version)) or frozenset()
        backends = []
        for name in sorted({e[0] for e in torch_entries}):
            # The newest release with this build: the newest release of all may list
            # only some of its builds (those whose architectures are established).
            holder = max((r for r in releases if name in r.backend_names()), key=lambda r: r.parsed, default=None)
            for template in holder.backends if holder is not None else ():
                if template.name == name:
                    backends.append(replace(template, note=f"architectures assumed from {holder.version}"))
        audio = [v for (pkg, v) in by_version if pkg == "torchaudio"]
        audio_version = max(audio, key=Version) if audio else None
        pythons = sorted({f"3.{int(e[1][3:])}" for e in torch_entries if e[1].startswith("cp3")}, key=lambda p: int(p[2:]))
        wheels_known = {"torch": torch_entries, "torchvision": learned("torchvision", guess) or frozenset()}
        if audio_version:
            wheels_known["torchaudio"] = learned("torchaudio", audio_version) or frozenset()
        out.append(
            TorchRelease(
                str(version), guess, audio_version, tuple(pythons), tuple(backends), "", wheels=wheels_known, source="index"
            )
        )
        notes.append(f"torch {version} is newer than the built-in table: added from the index (architectures assumed from the newest release with each build)")
    out.sort(key=lambda r: r.parsed)
    return tuple(out), notes

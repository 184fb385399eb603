"""What the runtime's steps return: an install, a verification, a refresh of the release table.

Plain, JSON-ready dataclasses (``to_dict()``): the CLI prints them with
``--json``; :class:`~drivelab.runtime._model.setup.SetupResult` gathers them
into the one document ``drivelab setup torch --json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivelab.runtime._model.pytorch import TorchPlan, TorchRelease

__all__ = ["InstallResult", "Check", "VerifyReport", "RefreshResult"]


@dataclass(frozen=True)
class InstallResult:
    """What ``install_torch`` did."""

    plan: TorchPlan
    installer: str
    """``"pip"`` or ``"uv"``."""
    python: str
    commands: tuple[tuple[str, ...], ...]
    """Each command run, redacted."""
    log: Path
    before: dict[str, str | None]
    installed: dict[str, str | None]
    forced_reinstall: bool = False
    """Whether the second, ``--force-reinstall --no-deps`` step was needed."""
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.before != self.installed

    def to_dict(self) -> dict[str, Any]:
        return {
            "installer": self.installer,
            "python": self.python,
            "commands": [list(c) for c in self.commands],
            "log": str(self.log),
            "before": dict(self.before),
            "installed": dict(self.installed),
            "changed": self.changed,
            "forced_reinstall": self.forced_reinstall,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class Check:
    """One verified fact: ``ok``, what was found (``detail``), and how to fix a failure."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class VerifyReport:
    python: str
    """The interpreter that was checked."""
    checks: tuple[Check, ...]
    python_version: str | None = None
    torch: str | None = None
    """The torch version that imported, or None."""
    expected: TorchPlan | None = None
    """What ``drivelab setup torch`` would install here (None if no plan fits)."""
    findings: dict[str, Any] = field(default_factory=dict)
    """The raw findings of the probe, by stage."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "python": self.python,
            "python_version": self.python_version,
            "torch": self.torch,
            "checks": [c.to_dict() for c in self.checks],
            "expected": self.expected.to_dict() if self.expected else None,
            "findings": self.findings,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class RefreshResult:
    releases: tuple[TorchRelease, ...]
    online: bool
    index_url: str
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"online": self.online, "index_url": self.index_url, "notes": list(self.notes), "releases": [r.version for r in self.releases]}

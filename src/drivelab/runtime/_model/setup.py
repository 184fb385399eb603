"""What ``setup_torch`` returns: the plan, and what became of it, as one JSON shape.

Kept apart from the step results it gathers (:mod:`.results`), which it names
for typing only: a dry run builds this class alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivelab.runtime._model.pytorch import TorchPlan

if TYPE_CHECKING:
    from drivelab.runtime._model.results import InstallResult, RefreshResult, VerifyReport

__all__ = ["SetupResult"]


@dataclass(frozen=True)
class SetupResult:
    """What ``setup_torch`` did: the plan, and what became of it.

    A dry run plans only (``install`` and both checks None). With ``if_needed``
    an installed PyTorch is checked first (``checked``); when it passes it is
    kept (``kept``) and nothing is installed. Otherwise the plan is installed
    (``install``) and checked afterwards (``verify``).
    """

    plan: TorchPlan
    dry_run: bool = False
    refresh: RefreshResult | None = None
    """The release table read from the index first (``refresh``), or None."""
    checked: VerifyReport | None = None
    """``if_needed``: the check of the PyTorch found installed, made before anything else."""
    kept: bool = False
    """That PyTorch passed its check and was kept: nothing was installed."""
    install: InstallResult | None = None
    verify: VerifyReport | None = None
    """The check of what the install left in place."""

    @property
    def ok(self) -> bool:
        """A dry run that planned; a kept PyTorch; an install whose check passed."""
        if self.dry_run:
            return True
        if self.kept:
            return self.checked is not None and self.checked.ok
        return self.verify is not None and self.verify.ok

    def to_dict(self) -> dict[str, Any]:
        """The one JSON shape: every key always there, null for a step that did not run."""
        return {
            "dry_run": self.dry_run,
            "refresh": self.refresh.to_dict() if self.refresh else None,
            "plan": self.plan.to_dict(),
            "kept": self.kept,
            "checked": self.checked.to_dict() if self.checked else None,
            "install": self.install.to_dict() if self.install else None,
            "verify": self.verify.to_dict() if self.verify else None,
            "ok": self.ok,
        }

"""``drivelab setup torch`` as one call: refresh, plan, keep or install, verify.

::

    from drivelab.runtime import setup_torch
    result = setup_torch(dry_run=True)          # plan only, offline
    result = setup_torch(if_needed=True)        # keep a PyTorch that passes the checks, else install the plan
    result.ok, result.to_dict()                 # one SetupResult, one JSON shape, whatever happened

The steps load as they are reached: a dry run imports neither the installer
nor the verifier.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivelab.errors import InstallError, SetupError
from drivelab.runtime._builds.wheel_tags import DEFAULT_INDEX_ROOT
from drivelab.runtime._install.plan import plan_torch_install
from drivelab.runtime._machine.detect import load_machine
from drivelab.runtime._model.pytorch import TorchPlan
from drivelab.runtime._model.setup import SetupResult

if TYPE_CHECKING:  # a dry run loads neither the installer nor the verifier, nor their results
    from drivelab.runtime._model.results import InstallResult, VerifyReport

__all__ = ["setup_torch"]


def setup_torch(
    *,
    machine_file: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    backend: str | None = None,
    torch_version: str | None = None,
    index_url: str | None = None,
    find_links: str | os.PathLike[str] | None = None,
    refresh: bool = False,
    if_needed: bool = False,
    reinstall: bool = False,
    installer: str = "auto",
    workspace: Any = None,
    before_install: Callable[[TorchPlan, VerifyReport | None], None] | None = None,
    on_line: Callable[[str], None] | None = None,
    after_install: Callable[[InstallResult], None] | None = None,
) -> SetupResult:
    """Plan the PyTorch that fits the machine and, unless ``dry_run``, install it and prove it works.

    The machine is the recorded description in ``machine_file`` (planning
    only), else this one, probed. ``refresh`` first reads the index (``index_url``,
    else download.pytorch.org) for releases newer than the built-in table.
    ``backend``, ``torch_version``, ``index_url`` and ``find_links`` are the
    overrides of :func:`plan_torch_install`. With ``if_needed`` an installed
    PyTorch that passes :func:`verify_torch` is kept and nothing is installed.
    ``installer`` (pip, uv, auto), ``reinstall`` and ``workspace`` (where the
    installer's log goes; default: the workspace holding the current folder,
    if any) are :func:`install_torch`'s.

    The caller hears of the install as it happens: ``before_install(plan,
    checked)`` just before it (``checked`` is the failed check of the PyTorch
    found installed, under ``if_needed``; raise to stop, before anything is
    installed), ``on_line`` for each line the installer prints, and
    ``after_install(result)`` before the verification.

    Raises :class:`PlanError` when no plan fits, :class:`SetupError` for an
    install asked on a recorded machine, :class:`InstallError` for an unknown
    installer or when installing fails. A verification that fails is no
    exception: ``result.ok`` is False.
    """
    machine = load_machine(machine_file)
    refreshed = None
    if refresh:
        from drivelab.runtime._builds.refresh import refresh_releases

        refreshed = refresh_releases(index_url or DEFAULT_INDEX_ROOT)
    plan = plan_torch_install(
        machine,
        backend=backend,
        torch_version=torch_version,
        index_url=index_url,
        find_links=find_links,
        releases=refreshed.releases if refreshed is not None else None,
    )
    if dry_run:
        return SetupResult(plan, dry_run=True, refresh=refreshed)

    if machine_file is not None:
        raise SetupError("--machine plans for a recorded machine; it cannot install there", hint="add --dry-run")
    if installer not in ("auto", "pip", "uv"):
        raise InstallError(f"unknown installer {installer!r}", hint="use pip, uv or auto")
    from drivelab.runtime._install.pip import install_torch
    from drivelab.runtime._verify.verify import verify_torch

    checked = None
    if if_needed and machine.torch is not None and machine.torch.torch is not None:
        checked = verify_torch(machine)
        if checked.ok:
            return SetupResult(plan, refresh=refreshed, checked=checked, kept=True)
    if before_install is not None:
        before_install(plan, checked)
    installed = install_torch(
        plan,
        installer=installer,
        workspace=workspace if workspace is not None else _workspace_here(),
        reinstall=reinstall,
        on_line=on_line,
    )
    if after_install is not None:
        after_install(installed)
    report = verify_torch(machine)
    return SetupResult(plan, refresh=refreshed, checked=checked, install=installed, verify=report)


def _workspace_here() -> Any:
    """The workspace holding the current folder, or None."""
    from drivelab.errors import WorkspaceError
    from drivelab.workspace import find_workspace

    try:
        return find_workspace(None)
    except WorkspaceError:
        return None

"""The workspace: one object that owns every path drivelab uses.

::

    <root>/
      drive/              the attached drive (a plain local folder by default)
        colab/            code and notebooks (main.py)
        dataset/          datasets, torchvision layout (dataset/MNIST/raw/...)
        runs/<run>/       one run: metrics.jsonl, checkpoints, curves.png
      .drivelab/          local state, never synced
        config.json       workspace settings
        seeds.json        hashes of the files ``init`` placed, to spot user edits

A directory is a workspace when it holds ``.drivelab/config.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from drivelab._atomic import write_bytes_atomic, write_text_atomic
from drivelab.errors import WorkspaceError

__all__ = ["Workspace", "InitResult", "init_workspace", "find_workspace", "WORKSPACE_ENV"]

WORKSPACE_ENV = "DRIVELAB_WORKSPACE"
CONFIG_VERSION = 1

# Files placed by ``init``: path inside the workspace -> resource under drivelab/_seed.
SEED_FILES = {
    "drive/colab/main.py": "colab/main.py",
    "drive/colab/getting-started.ipynb": "colab/getting-started.ipynb",
}


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace rooted at ``root`` (absolute)."""

    root: Path

    @property
    def drive(self) -> Path:
        return self.root / "drive"

    @property
    def colab(self) -> Path:
        return self.drive / "colab"

    @property
    def dataset(self) -> Path:
        return self.drive / "dataset"

    @property
    def runs(self) -> Path:
        return self.drive / "runs"

    @property
    def state(self) -> Path:
        return self.root / ".drivelab"

    @property
    def config_file(self) -> Path:
        return self.state / "config.json"

    @property
    def seeds_file(self) -> Path:
        return self.state / "seeds.json"

    @property
    def main_script(self) -> Path:
        return self.colab / "main.py"

    def run_dir(self, name: str) -> Path:
        return self.runs / name

    def exists(self) -> bool:
        return self.config_file.is_file()


@dataclass
class InitResult:
    workspace: Workspace
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Files the user edited, left alone (pass ``force`` to replace them)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _seed_bytes(resource: str) -> bytes:
    from importlib import resources  # only `init` needs it; it is slow to import

    return resources.files("drivelab").joinpath("_seed", resource).read_bytes()


def init_workspace(root: Path | str, *, force: bool = False) -> InitResult:
    """Create (or complete) a workspace at ``root``; safe to run again.

    A seed file the user has edited since ``init`` placed it is kept unless
    ``force`` is true; an unedited one is refreshed to the current version.
    """
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a directory", hint="choose another path")
    ws = Workspace(root)
    result = InitResult(ws)
    try:
        for d in (ws.colab, ws.dataset, ws.runs, ws.state):
            d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"cannot create the workspace at {root}: {exc.strerror}", hint="check the path and its permissions") from exc

    seeds: dict[str, str] = {}
    if ws.seeds_file.is_file():
        try:
            seeds = json.loads(ws.seeds_file.read_text())
        except (OSError, ValueError):
            seeds = {}
        if not isinstance(seeds, dict):
            seeds = {}
    for rel, resource in SEED_FILES.items():
        target = root / rel
        data = _seed_bytes(resource)
        if target.exists() and not target.is_file():
            raise WorkspaceError(f"{target} is in the way: it should be a file", hint="move it aside, then run `drivelab init` again")
        if not target.exists():
            write_bytes_atomic(target, data)
            result.created.append(rel)
        else:
            current = _sha256(target.read_bytes())
            if current == _sha256(data):
                pass
            elif force or seeds.get(rel) == current:
                write_bytes_atomic(target, data)
                result.updated.append(rel)
            else:
                result.kept.append(rel)
                continue
        seeds[rel] = _sha256(data)
    write_text_atomic(ws.seeds_file, json.dumps(seeds, indent=2, sort_keys=True) + "\n")

    if not ws.config_file.exists():
        config = {"version": CONFIG_VERSION, "drive": {"type": "local"}}
        write_text_atomic(ws.config_file, json.dumps(config, indent=2) + "\n")
        result.created.append(".drivelab/config.json")
    return result


def find_workspace(start: Path | str | None = None) -> Workspace:
    """The workspace holding ``start`` (default: ``$DRIVELAB_WORKSPACE`` or the cwd).

    Walks up from ``start``, so any folder inside a workspace (``drive/colab``
    included) finds it.
    """
    if start is None:
        start = os.environ.get(WORKSPACE_ENV) or Path.cwd()
    here = Path(start).expanduser().resolve()
    for candidate in (here, *here.parents):
        if Workspace(candidate).exists():
            return Workspace(candidate)
    raise WorkspaceError(
        f"no drivelab workspace at {here} or above it",
        hint="run `drivelab init` there first, or pass --workspace / set DRIVELAB_WORKSPACE",
    )

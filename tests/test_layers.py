"""The architecture holds: imports point down the layers; only the CLI knows typer and rich."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "drivelab"

# Lower rank = lower layer. A module may import its own layer or lower ones.
# data sits on the drive: it fetches and stages datasets in it.
# colab sits on the drive (drive.mount) and under jobs and the lab, which both run its kernel and environment.
# The lab sits on jobs: its panels list, start, follow and stop them.
RANK = {"core": 0, "runtime": 1, "drive": 1, "data": 2, "train": 3, "colab": 3, "jobs": 4, "lab": 5, "cli": 6}
CLI_ONLY = {"typer", "rich", "click"}


def layer_of(module: str) -> str:
    if module == "drivelab.__main__":  # `python -m drivelab` is the CLI's front door
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "core"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(p for p in SRC.rglob("*.py") if "_seed" not in p.parts)


def test_every_layer_is_a_package():
    for layer in RANK:
        if layer != "core":
            assert (SRC / layer / "__init__.py").is_file(), layer


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    module = "drivelab." + ".".join(path.relative_to(SRC).with_suffix("").parts)
    own = layer_of(module)
    for name in imports_of(path):
        top = name.split(".")[0]
        if top == "drivelab":
            target = layer_of(name)
            assert RANK[target] < RANK[own] or target == own or target == "core", f"{module} imports {name}"
        elif own != "cli":
            assert top not in CLI_ONLY, f"{module} imports {name}: only the CLI may"


def _package_of(module: str) -> str | None:
    """``drivelab.drive`` for ``drivelab.drive._attach``; None for a core module (``drivelab._atomic``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (SRC / parts[-1]).is_dir() else None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_import_across_packages(path):
    """Another package's private module (``drivelab.drive._config``) is not imported: its public names are."""
    module = "drivelab." + ".".join(path.relative_to(SRC).with_suffix("").parts)
    own = _package_of(module)
    for name in imports_of(path):
        parts = name.split(".")
        if parts[0] != "drivelab" or len(parts) < 3 or not parts[2].startswith("_"):
            continue
        assert _package_of(name) == own, f"{module} imports {name}, a private module of another package"


def _module_graph() -> dict[str, set[str]]:
    """Module -> the drivelab modules it imports, at the top or inside functions (not under TYPE_CHECKING)."""
    modules = {"drivelab." + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p for p in MODULES}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycle_inside_a_package():
    """Within a package, module imports form no cycle, counting imports inside functions."""
    graph = _module_graph()
    package = {name: ".".join(name.split(".")[:2]) for name in graph}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if package[nxt] != package[goal] or nxt in seen:
                continue
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, set()))
    assert cycles == [], f"modules on an import cycle inside their package: {cycles}"

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


def _all_imports_graph(src: Path = SRC, paths: list[Path] = MODULES) -> dict[str, set[str]]:
    """Module -> the drivelab modules it imports anywhere: at the top, inside functions, under ``if TYPE_CHECKING:``."""
    modules = {"drivelab." + ".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # `from . import x`, `from .y import x`: resolved against this module's package
                    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [node.module])])
                # `from pkg import submodule` reaches the submodule (pkg is its parent, loaded either way);
                # `from pkg import name` reaches pkg.
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected group of modules (Tarjan's algorithm, then a search in the group)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for group in groups:
        start = min(group)
        paths = {start: [start]}
        frontier = [start]
        found = None
        while frontier and found is None:
            following = []
            for node in frontier:
                for nxt in sorted(graph[node] & group):
                    if nxt == start:
                        found = paths[node] + [start]
                        break
                    if nxt not in paths:
                        paths[nxt] = paths[node] + [nxt]
                        following.append(nxt)
                if found:
                    break
            frontier = following
        cycles.append(found or sorted(group))
    return sorted(cycles)


def test_no_import_cycle_of_any_kind():
    """No two drivelab modules import each other, directly or around a loop: counting imports inside
    functions and those under ``if TYPE_CHECKING:`` (a type-only cycle is a cycle in the design)."""
    cycles = _cycles(_all_imports_graph())
    assert cycles == [], "import cycles between drivelab modules:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_check_sees_type_only_and_function_local_imports(tmp_path):
    """The check above, on a made-up package: a loop closed by a function-local import and one closed
    only by a TYPE_CHECKING import are both found and named; a submodule imported through its
    package (its parent, loaded either way) is no edge to the package."""
    root = tmp_path / "drivelab"
    files = {
        "__init__.py": "",
        "a.py": "from drivelab.b import B\n",
        "b.py": "def f():\n    from drivelab.a import A\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from drivelab.d import D\n",
        "d.py": "from drivelab.c import C\n",
        "pkg/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from drivelab.pkg.e import E\n",
        "pkg/e.py": "from drivelab.pkg import _f\n",
        "pkg/_f.py": "from . import e as _\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = _all_imports_graph(root, sorted(root.rglob("*.py")))
    assert graph["drivelab.pkg.e"] == {"drivelab.pkg._f"} and graph["drivelab.pkg._f"] == {"drivelab.pkg.e"}
    assert _cycles(graph) == [
        ["drivelab.a", "drivelab.b", "drivelab.a"],
        ["drivelab.c", "drivelab.d", "drivelab.c"],
        ["drivelab.pkg._f", "drivelab.pkg.e", "drivelab.pkg._f"],
    ]
    assert _cycles({"drivelab.a": {"drivelab.b"}, "drivelab.b": set()}) == []

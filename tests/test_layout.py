"""The package layout docs/architecture.md describes: no import cycles, a small top level."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "harness"


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its body (functions and
    ``TYPE_CHECKING`` blocks included), resolved to the longest known module name."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module, *(f"{module}.{a.name}" for a in node.names)]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # importing one's own parent package is what Python does anyway: not an edge
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module → the package modules it imports, for ``root/harness``."""
    files = {}
    for path in (root / "harness").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: _imports(path, name, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "harness"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from harness.sub.b import g\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (pkg / "sub" / "c.py").write_text("from harness.sub import a\n")  # one way only: no cycle
    assert cycles(import_graph(tmp_path)) == [["harness.sub.a", "harness.sub.b"]]


def _documented_top_level() -> set[str]:
    """Names in the package map's first column of docs/architecture.md."""
    text = (REPO / "docs" / "architecture.md").read_text("utf-8")
    names = set()
    for cell in re.findall(r"^\| `([^`|]+)` \|", text, re.M):
        names.add(cell.removeprefix("harness/").rstrip("/"))
    return names


def test_the_top_level_holds_only_what_the_architecture_doc_lists() -> None:
    present = {
        p.name
        for p in PACKAGE.iterdir()
        if p.name not in ("__pycache__", "py.typed", "__main__.py")
        and (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    assert present == _documented_top_level()


@pytest.mark.parametrize(
    "package",
    sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()),
)
def test_every_subpackage_has_a_test_folder(package: str) -> None:
    assert (REPO / "tests" / package).is_dir()

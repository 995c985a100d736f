"""Structure counts for issue 21: what a newcomer meets when reading the package.

Prints four numbers, counted the same way before and after a redesign:

- import cycles among ``mlflow_scaling`` / ``lightning_callbacks`` modules (grimp's graph,
  ``TYPE_CHECKING`` imports included): strongly connected components of two or more modules;
- internal imports inside functions, outside ``if TYPE_CHECKING`` (ast);
- functions longer than 60 lines (ast, ``end_lineno - lineno + 1``);
- modules longer than 500 lines.

Run: ``.venv/bin/python benchmarks/structure_counts.py`` (from the repository root).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mlflow_scaling", "lightning_callbacks")
FUNCTION_LIMIT = 60
MODULE_LIMIT = 500


def import_cycles() -> list[list[str]]:
    """Strongly connected components (size >= 2) of the internal import graph (Tarjan)."""
    import grimp  # reason: measurement-only dependency, kept out of module import time

    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    return strongly_connected(modules, edges)


def strongly_connected(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns components of two or more nodes, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = edges.get(node, [])
            if i < len(successors):
                work.append((node, i + 1))
                nxt = successors[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found)


def _python_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _internal(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in PACKAGES
    return any(alias.name.split(".")[0] in PACKAGES for alias in node.names)


def function_level_imports() -> list[str]:
    """Internal imports inside a function body, not under ``if TYPE_CHECKING``."""
    found = []
    for path in _python_files():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            skip = {
                id(inner)
                for branch in ast.walk(func)
                if isinstance(branch, ast.If) and _is_type_checking(branch)
                for inner in ast.walk(branch)
            }
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                    if _internal(node):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(found))


def long_functions() -> list[str]:
    found = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LIMIT:
                    found.append(f"{path.relative_to(ROOT)}:{node.name} {length}")
    return found


def long_modules() -> list[str]:
    found = []
    for path in _python_files():
        lines = len(path.read_text().splitlines())
        if lines > MODULE_LIMIT:
            found.append(f"{path.relative_to(ROOT)} {lines}")
    return found


def main() -> int:
    verbose = "-v" in sys.argv
    counts = {
        "import cycles": import_cycles(),
        "internal function-level imports (outside TYPE_CHECKING)": function_level_imports(),
        f"functions over {FUNCTION_LIMIT} lines": long_functions(),
        f"modules over {MODULE_LIMIT} lines": long_modules(),
    }
    for name, items in counts.items():
        print(f"{name}: {len(items)}")
        if verbose:
            for item in items:
                print(f"    {item}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

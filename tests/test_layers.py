"""The module graph has no import cycle (grimp's graph, imports under TYPE_CHECKING and inside
functions included). The layers themselves are import-linter's contracts in pyproject.toml,
checked by `lint-imports` in ./scripts/test.sh."""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from structure_counts import strongly_connected  # noqa: E402

PACKAGES = ("mlflow_scaling", "lightning_callbacks")


def _graph():
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)


def test_no_import_cycle_among_the_package_modules():
    graph = _graph()
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    cycles = strongly_connected(modules, edges)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_names_a_cycle_it_is_shown():
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []}
    assert strongly_connected(list("abcde"), edges) == [["a", "b", "c"]]

"""No import cycle in ``musicgen_app/ml``: the graph of every import between its modules (at the
top of a module or inside a function; type-checking-only imports left out) has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ML = Path(__file__).resolve().parents[2] / "musicgen_app" / "ml"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ML.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class _Imports(ast.NodeVisitor):
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(a.name for a in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                self.found.add(sub if sub in self.known else node.module)


def import_graph() -> dict[str, set[str]]:
    """``module -> the ml modules it imports``."""
    files = {_module_name(p): p for p in ML.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        v = _Imports(set(files))
        v.visit(ast.parse(path.read_text()))
        graph[name] = {m for m in v.found if m in files and m != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle met by a depth-first walk (empty when the graph is acyclic)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def walk(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                out.append([*stack[stack.index(v) :], v])
            elif v not in state:
                walk(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            walk(u)
    return out


def test_the_checker_sees_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_ml() -> None:
    graph = import_graph()
    assert "musicgen_app.ml.training" in graph["musicgen_app.ml.families.builtin"]  # function-level seen
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in ml/: " + "; ".join(" -> ".join(c) for c in cycles)

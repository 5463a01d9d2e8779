"""The API layer's modules depend on each other one way only (no import cycles)."""

import ast
from pathlib import Path

import conversations.interactions as package

PACKAGE = Path(package.__file__).parent


def local_imports(path: Path) -> set[str]:
    """The sibling modules `path` imports, including imports made only for type checking."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.update([node.module.split(".")[0]] if node.module else
                       (alias.name for alias in node.names))
    return out


def test_its_modules_import_each_other_without_cycles():
    graph = {p.stem: local_imports(p) for p in PACKAGE.glob("*.py")}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join([*path, module])}"
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])

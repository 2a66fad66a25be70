"""The package's layering, checked on its import graph (docs/architecture.md).

Every import counts, deferred ones inside functions included (they still tie the modules
together); only `if TYPE_CHECKING:` imports are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = next(p.parent for p in (ROOT / "src").glob("*/_template.py"))
PACKAGE = PACKAGE_DIR.name
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"

# Layer -> the layers it may import. Bottom: no heavy dependency and no import from above.
BOTTOM = {"_template", "errors", "lifecycle", "slo", "artifact", "data", "ops", "config", "model"}
ALLOWED: dict[str, set[str]] = {
    "bottom": {"bottom"},
    "registry": {"bottom"},
    "training": {"bottom", "registry", "training"},
    "serving": {"bottom", "registry", "serving"},
    # Batch scoring reuses the serving guardrails; the CLI hands it the drift report (tools/).
    "batch": {"bottom", "registry", "serving", "batch"},
    "tools": {"bottom", "registry", "training", "serving", "tools"},
    "cli": {"bottom", "registry", "training", "serving", "tools", "batch"},
}


def layer(module: str) -> str:
    top = module.split(".")[1] if "." in module else "bottom"
    if top in BOTTOM:
        return "bottom"
    return {"registry": "registry", "cli": "cli"}.get(top, top)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from .ops import metrics` imports the submodule when there is one.
            names = [
                f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n == PACKAGE or n.startswith(f"{PACKAGE}."))
    found.discard(module)
    return {n for n in found if n in MODULES}


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    a, b = f"{PACKAGE}.artifact.folder", f"{PACKAGE}.serving.app"
    GRAPH[a].add(b)
    try:
        assert find_cycle() is not None
    finally:
        GRAPH[a].discard(b)


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{module} ({layer(module)}) imports {target} ({layer(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if layer(target) not in ALLOWED[layer(module)]
    ]
    assert wrong == []


def test_the_model_artifact_depends_on_nothing_else_in_the_package() -> None:
    artifact = f"{PACKAGE}.artifact"
    outside = {
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if m.startswith(artifact)
        for t in targets
        if not t.startswith(artifact)
    }
    assert outside == set()


def test_the_architecture_doc_names_every_module_and_folder() -> None:
    """docs/architecture.md names each module as `<pkg>/path.py` and each subpackage as
    `<pkg>/path/`: the layout and the doc must match both ways."""
    text = ARCHITECTURE_DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`<pkg>/((?:[a-z_]+/)*(?:[a-z_]+\.py)?)`", text))
    named.discard("")
    actual = {
        p.relative_to(PACKAGE_DIR).as_posix()
        for p in MODULES.values()
        if p.name not in {"__init__.py", "__main__.py"}
    }
    actual |= {
        p.relative_to(PACKAGE_DIR).as_posix() + "/"
        for p in PACKAGE_DIR.rglob("*")
        if (p / "__init__.py").is_file()
    }
    assert sorted(actual - named) == [], "not described in docs/architecture.md"
    assert sorted(named - actual) == [], "named in docs/architecture.md but not in the package"

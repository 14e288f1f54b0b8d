"""The packages' import graph, read from the source: no import runs in a circle, and no module
imports one of a layer above its own (the library's layers below, the app above them all)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vqviz", "vqviz_app")

#: The library's layers, lowest first: a module may import its own layer and those below it. A name
#: is a module or a package (all its modules); the longest matching name decides. ``vqviz`` itself
#: (its ``__init__``, which holds the version) is the one name that is never a prefix.
LAYERS = (
    ("vqviz", "vqviz.errors", "vqviz.settings", "vqviz.flags", "vqviz.utils"),
    ("vqviz.imageio", "vqviz.images", "vqviz.data", "vqviz.web"),
    ("vqviz.nets", "vqviz.cluster", "vqviz.metrics", "vqviz.distributed"),
    ("vqviz.models", "vqviz.train"),
    ("vqviz.schema", "vqviz.checkpoints", "vqviz.health", "vqviz.projection", "vqviz.archive", "vqviz.map_store",
     "vqviz.export"),
    ("vqviz.analysis", "vqviz.workflow", "vqviz.explorer"),
    ("vqviz.cli", "vqviz.bench", "vqviz.__main__"),
    ("vqviz_app",),
    ("vqviz_app.pages", "vqviz_app.main"),  # the pages and the entry script: no module of the app imports them
)

#: What the root package's PEP 562 ``__getattr__`` loads when a public name is first asked for
#: (``vqviz.wrap``): a re-export of the library's face, which no module of the library uses, so the
#: layers do not count it. Only inside a function: at the top, the circle test would see it.
LAZY_EXPORTS = {"vqviz": {"vqviz.models", "vqviz.explorer"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> set[str]:
    """The project modules an import statement names (``from . import x`` names module ``x`` if it is one)."""
    if isinstance(node, ast.Import):
        bases = [a.name for a in node.names]
        return {b for b in bases if b in known}
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    found = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
    return found | ({base} if base in known and len(found) < len(node.names) else set())


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, path: Path, known: set[str], top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()

    def visit(nodes, top: bool) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and (top or not top_level_only):
                out.update(_resolve(module, path.name == "__init__.py", node, known))
            elif isinstance(node, ast.If) and _is_type_checking(node):
                continue  # annotations only: nothing runs
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not top_level_only:  # the imports a function makes when it runs
                    for inner in ast.walk(node):
                        if isinstance(inner, (ast.Import, ast.ImportFrom)):
                            out.update(_resolve(module, path.name == "__init__.py", inner, known))
            elif isinstance(node, ast.ClassDef):
                visit(node.body, top)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                visit([n for f in ("body", "orelse", "finalbody", "handlers") for n in getattr(node, f, [])], top)
            elif isinstance(node, ast.ExceptHandler):
                visit(node.body, top)

    visit(tree.body, True)
    out.discard(module)
    return out


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {m: _imports(m, p, known, top_level_only) for m, p in sources.items()}


def _layer(module: str) -> int:
    best, layer = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or (name != "vqviz" and module.startswith(name + "."))) and len(name) > best:
                best, layer = len(name), i
    assert layer is not None, f"{module} is in no layer of LAYERS: add it"
    return layer


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _no_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without the edges from a package's ``__init__`` to its own modules, which only
    re-export them (importing ``vqviz.models.base`` runs ``vqviz/models/__init__`` first anyway)."""
    return {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}


def test_no_imports_run_in_a_circle():
    assert _cycles(_no_packages(_graph(top_level_only=True))) == []


def test_no_module_imports_one_of_a_higher_layer():
    graph = _graph(top_level_only=False)
    up = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps - LAZY_EXPORTS.get(m, set())
                if _layer(d) > _layer(m))
    assert up == []


def test_the_check_sees_a_circle_and_an_import_upwards():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = _graph(top_level_only=False)
    assert "vqviz.models.base" in graph and "vqviz_app.main" in graph
    assert _layer("vqviz.models.base") < _layer("vqviz.analysis.points") < _layer("vqviz_app.cache")
    assert "vqviz.models" in graph["vqviz.analysis.points"]  # the graph is read, not empty

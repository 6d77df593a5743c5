"""The package's own import graph: no import cycles, and no import that runs back up the layers.

Layers (docs/architecture.md): ``units <- sim <- envs <- rl <- research <- report <- cli``; ``bo``
(the optimizer) and ``donkey`` (the real simulator's protocol and transport) stand alone: ``bo``
imports nothing of the project but ``units``, ``donkey`` only ``sim`` and ``units``; ``envs`` may
use ``donkey``. The graph is read from the source with ``ast`` (every import, also inside
functions: a lazy import is still a dependency; ``if TYPE_CHECKING:`` blocks are not imports).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "donkeyrl"

#: Package -> the project packages its modules may import (besides its own modules).
MAY_IMPORT: dict[str, set[str]] = {
    "units": set(),
    "sim": {"units"},
    "bo": {"units"},
    "donkey": {"sim", "units"},
    "envs": {"donkey", "sim", "units"},
    "rl": {"envs", "sim", "units"},
    "research": {"rl", "envs", "sim", "bo", "units"},
    "report": {"research", "rl", "envs", "sim", "bo", "units"},
    "cli": {"report", "research", "rl", "envs", "donkey", "sim", "bo", "units"},
    "__main__": {"cli"},
    "": set(),  # donkeyrl/__init__.py
}
#: (importing module, imported module) edges allowed against the layers, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module under src/donkeyrl."""
    out = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules imported by module ``name``, by the name the import statement resolves to.

    A submodule's parent packages are imported too, but not as a dependency of the importer: a
    package ``__init__`` re-exporting its submodules is no loop, so those implicit edges are left out.
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".")
                if not is_package:
                    base_parts = base_parts[:-1]
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(ROOT + ".") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer(module: str) -> str:
    """The top-level package of a module: ``donkeyrl.rl.train`` -> ``rl``; the root -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_the_source():
    edges = graph()
    assert "donkeyrl.envs.common" in edges and "donkeyrl.sim.simulator" in edges["donkeyrl.envs.embedded"]
    assert "donkeyrl.units" in edges["donkeyrl.envs.common"]
    assert edges["donkeyrl.units"] == set()


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_runs_back_up_the_layers():
    bad = []
    for module, targets in graph().items():
        own = layer(module)
        assert own in MAY_IMPORT, f"{module}: package {own!r} has no place in the layers; add it"
        for target in sorted(targets):
            other = layer(target)
            if other != own and other not in MAY_IMPORT[own] and (module, target) not in EXCEPTIONS:
                bad.append(f"{module} imports {target} ({own or ROOT} may import: "
                           f"{', '.join(sorted(MAY_IMPORT[own])) or 'nothing'})")
    assert not bad, "\n".join(bad)


def test_every_exception_is_still_needed():
    edges = graph()
    stale = [f"{a} -> {b}" for a, b in EXCEPTIONS if b not in edges.get(a, set())]
    assert not stale, f"remove these exceptions, the imports are gone: {stale}"


@pytest.mark.parametrize("source, expected", [
    ("import donkeyrl.sim.track\n", {"donkeyrl.sim.track"}),
    ("from donkeyrl.sim import track\n", {"donkeyrl.sim.track"}),
    ("from donkeyrl.envs import make_env\n", {"donkeyrl.envs"}),
    ("from . import common\n", {"donkeyrl.envs.common"}),
    ("from ..sim.track import Track\n", {"donkeyrl.sim.track"}),
    ("import numpy as np\nfrom donkeyrl.sim.track import Track, Projection\n", {"donkeyrl.sim.track"}),
    ("def f():\n    from donkeyrl.rl import train\n", {"donkeyrl.rl.train"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import donkeyrl.rl.train\n", set()),
])
def test_imports_are_resolved_like_python_does(tmp_path, source, expected):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert imports_of("donkeyrl.envs.probe", path, modules()) == expected


def test_a_cycle_and_an_upward_import_are_caught():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("donkeyrl.sim.track") == "sim" and "envs" not in MAY_IMPORT["sim"]

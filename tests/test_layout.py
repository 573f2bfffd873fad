"""The package layout: imports point one way, no package reaches into another's private
names, and ``atomlens.find`` loads neither the trainer nor the simulator.

The import graph is built with :mod:`ast` from ``src/atomlens`` (imports inside functions
count too), so a cycle held apart by an import inside a function is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "atomlens"

#: Where an import inside a function is the rule, not the exception: the command line
#: (heavy imports only after parsing, so ``atomlens --help`` is instant) and the lazy
#: package roots (``import atomlens`` stays light).
LAZY_BY_DESIGN = ("atomlens.cli",)


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(SRC).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(name: str, path: Path, modules: set[str]):
    """(imported module, imported name, line, inside a function) of ``name``'s imports of
    atomlens modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    in_function = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in modules else base
                yield target, alias.name, node.lineno, id(node) in in_function
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno, id(node) in in_function


def _top(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_no_import_cycles_and_no_private_names_across_packages():
    mods = _modules()
    graph = nx.DiGraph()
    private = []
    for name, path in mods.items():
        for target, imported, line, _ in _imports(name, path, set(mods)):
            if target not in mods or target == name or target == "atomlens":
                continue  # the root (version, lazy API) is not a layer
            graph.add_edge(name, target)
            if imported.startswith("_") and not imported.startswith("__"):
                if _top(target) != _top(name):
                    private.append(f"{path.relative_to(SRC)}:{line} imports {target}.{imported}")
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"
    assert not private, "private names imported across packages:\n" + "\n".join(private)


def test_imports_inside_functions_say_why():
    """Outside the CLI and the lazy package roots, an atomlens import inside a function
    must defer something heavy and say so in a comment just above it."""
    mods = _modules()
    unexplained = []
    for name, path in mods.items():
        if name.startswith(LAZY_BY_DESIGN) or path.name == "__init__.py":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for target, _, line, inside in _imports(name, path, set(mods)):
            if not inside or not target.startswith("atomlens"):
                continue
            above = lines[max(0, line - 4) : line - 1]
            if not any(s.strip().startswith("#") for s in above):
                unexplained.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert not unexplained, "imports inside functions without a reason:\n" + "\n".join(unexplained)


def test_find_loads_neither_the_trainer_nor_the_simulator():
    code = (
        "import sys, atomlens; atomlens.find; atomlens.pipeline.find_files; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('atomlens'))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(run.stdout.split())
    assert "atomlens.pipeline.finder" in loaded
    heavy = sorted(
        m for m in loaded if m.startswith(("atomlens.train", "atomlens.simulate", "atomlens.elit"))
    )
    assert not heavy, f"atomlens.find loads {heavy}"

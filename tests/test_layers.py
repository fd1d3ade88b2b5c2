"""The package layering (docs/DESIGN.md, "Layers"): a module imports only from its own layer or below, and the
packages' import graph has no cycles. Imports inside functions count: a lazy import is still a dependency.

Layers, lowest first::

    errors, utils < data, tokenizer < model < runs < tasks, chat < infer, export < tools, safety < eval < train
    < serve, reason, scaling, inside < speedrun, cli

Every module named ``cli.py`` or ``*_cli.py`` is command-line wiring and sits at the top, wherever it lives.
``standalone/`` (the numpy-only "second file") imports nothing from llmlab.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "llmlab"

LAYERS = [
    {"errors", "utils", "standalone"},
    {"data", "corpora", "tokenizer"},
    {"model"},
    {"runs"},
    {"tasks", "chat"},
    {"infer", "export"},
    {"tools", "safety"},
    {"eval"},
    {"train"},
    {"serve", "reason", "scaling", "inside"},
    {"speedrun", "cli", "__main__", "__init__"},  # the package root: __version__ and llmlab.load()
]
TOP = len(LAYERS) - 1


def _modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(("llmlab",) + parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _package(module: str) -> str:
    """``llmlab.train.loop`` -> ``train``; ``llmlab`` (the package's own __init__) -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    leaf = module.split(".")[-1]
    if leaf == "cli" or leaf.endswith("_cli"):
        return TOP
    pkg = _package(module)
    for i, names in enumerate(LAYERS):
        if pkg in names:
            return i
    raise AssertionError(f"{module}: package {pkg!r} has no layer; add it to LAYERS here and in docs/DESIGN.md")


def _imports(path: Path) -> set[str]:
    """Every llmlab module this file imports (``from llmlab.x import y`` counts y too when it is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("llmlab"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("llmlab"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _edges(src: Path = SRC) -> list[tuple[str, str]]:
    mods = _modules(src)
    edges = []
    for name, path in mods.items():
        for target in _imports(path):
            if target in mods:
                edges.append((name, target))
    return edges


def violations(src: Path = SRC) -> list[str]:
    bad = []
    for a, b in _edges(src):
        if b == "llmlab":
            continue  # `from llmlab import __version__`: the package root holds only the version and load()
        if _layer(b) > _layer(a):
            bad.append(f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})")
    return sorted(bad)


def test_every_module_imports_only_its_layer_or_below():
    bad = violations()
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_standalone_imports_nothing_from_llmlab():
    for path in (SRC / "standalone").rglob("*.py"):
        assert not _imports(path), f"{path} must stay numpy-only"


def test_packages_have_no_import_cycles():
    """Packages of one layer may use each other, but never both ways round (cli modules left out: they are
    wiring, not library)."""
    graph: dict[str, set[str]] = {}
    for src, dst in _edges():
        if _layer(src) == TOP or _layer(dst) == TOP:
            continue
        a, b = _package(src), _package(dst)
        if a != b and "__init__" not in (a, b):
            graph.setdefault(a, set()).add(b)
    # Depth-first search for a back edge.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            raise AssertionError("package import cycle: " + " -> ".join(cycle))


def test_the_layer_table_knows_every_package():
    for name in _modules():
        _layer(name)


def test_a_violation_is_caught(tmp_path):
    """The check itself can fail: a model module importing the training loop inside a function is reported."""
    fake = tmp_path / "llmlab"
    (fake / "model").mkdir(parents=True)
    (fake / "train").mkdir()
    (fake / "model" / "bad.py").write_text("def f():\n    from llmlab.train.loop import train\n")
    (fake / "train" / "loop.py").write_text("x = 1\n")
    assert violations(fake) == ["llmlab.model.bad (layer 2) imports llmlab.train.loop (layer 8)"]

"""The one-way flow of ../shared/DESIGN.md, checked on every import in the tree (top-level and inside
functions): workers and store import only themselves, predictors only store, pipeline wires them all,
and the CLI calls the pipeline. Every stage may import the foundation (zcpipe.errors, .registry,
.settings, .version), which imports nothing of zcpipe but itself. Inside a stage, no module imports
one that imports it back, however far round (a registry lists its entries from a module they do not
import)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

FOUNDATION = {"errors", "registry", "settings", "version"}
STAGES = {"workers", "store", "predictors", "pipeline", "cli"}
ALLOWED = {
    "workers": {"workers"},
    "store": {"store"},
    "predictors": {"predictors", "store"},
    "pipeline": {"pipeline", "workers", "store", "predictors"},
    "cli": {"cli", "pipeline"},
    "foundation": set(),
}


def _stage_of_file(path: Path, root: Path) -> str | None:
    top = path.relative_to(root).parts[0]
    if top in STAGES - {"cli"}:
        return top
    if top == "zcpipe":
        rest = path.relative_to(root / "zcpipe").parts
        return "cli" if rest[0] == "cli" else "foundation"
    return None


def _targets(node: ast.AST) -> list[str]:
    """The zcpipe modules an import statement names (as dotted names below `zcpipe`)."""
    if isinstance(node, ast.Import):  # a bare `import zcpipe` reaches the package root: the CLI's home
        return [a.name.removeprefix("zcpipe.") if a.name != "zcpipe" else "cli" for a in node.names
                if a.name == "zcpipe" or a.name.startswith("zcpipe.")]  # fmt: skip
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "zcpipe":  # from zcpipe import settings, pipeline, ...
            return [a.name for a in node.names]
        if node.module.startswith("zcpipe."):
            return [node.module.removeprefix("zcpipe.")]
    return []


def _stage_of_module(dotted: str) -> str:
    head = dotted.split(".")[0]
    if head in FOUNDATION or head in ("__version__", "ENGINE_VERSION"):
        return "foundation"
    return head


def violations(root: Path) -> list[str]:
    """`file:line: stage imports zcpipe.X` for every import against the flow."""
    out = []
    for path in sorted(root.rglob("*.py")):
        if any(part in (".venv", "tests", "bench", "build") for part in path.relative_to(root).parts):
            continue
        stage = _stage_of_file(path, root)
        if stage is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _targets(node):
                to = _stage_of_module(target)
                if to == stage or to == "foundation" or to in ALLOWED[stage]:
                    continue
                out.append(f"{path.relative_to(root)}:{node.lineno}: {stage} imports zcpipe.{target}")
    return out


def _module_name(path: Path, root: Path) -> str:
    """The dotted name a file imports as (the stage folders are subpackages of `zcpipe`)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "zcpipe" else ["zcpipe", *parts])


def _edges(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the tree it imports (a `from package import module` names the module)."""
    skip = (".venv", "tests", "bench", "build")
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))
             if not any(part in skip for part in p.relative_to(root).parts)}  # fmt: skip
    edges: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("zcpipe"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges[name].add(sub if sub in files else node.module)
            elif isinstance(node, ast.Import):
                edges[name] |= {a.name for a in node.names if a.name in files}
    return {name: {t for t in targets if t in files and t != name} for name, targets in edges.items()}


def cycles(root: Path) -> list[list[str]]:
    """Every import cycle of the tree's modules (each as its strongly connected component, sorted)."""
    edges, index, low, stack, on, out = _edges(root), {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_tree_follows_the_one_way_flow():
    assert violations(ROOT) == []


def test_a_planted_violation_is_caught(tmp_path):
    for folder, text in {
        "workers": "from zcpipe.store import Catalog\n",  # workers know nothing of storage
        "store": "def f():\n    import zcpipe.workers.spaces\n",  # not even inside a function
        "predictors": "from zcpipe.pipeline import train\n",  # runs back up
        "zcpipe/cli": "from zcpipe.store import Catalog\n",  # the CLI calls the pipeline only
        "zcpipe": "from zcpipe import pipeline\n",  # the foundation imports no stage
        "pipeline/sub": "import zcpipe\n",  # the package root, for its version: use zcpipe.version
    }.items():
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "planted.py").write_text(text)
    (tmp_path / "pipeline" / "fine.py").write_text("from zcpipe.workers import x\nfrom zcpipe import settings\n")
    found = violations(tmp_path)
    assert len(found) == 6, found
    assert "workers/planted.py:1: workers imports zcpipe.store" in found
    assert "store/planted.py:2: store imports zcpipe.workers.spaces" in found


def test_no_module_imports_itself_back():
    assert cycles(ROOT) == []


def test_a_planted_cycle_is_caught(tmp_path):
    (tmp_path / "predictors").mkdir()
    (tmp_path / "predictors" / "__init__.py").write_text("")
    (tmp_path / "predictors" / "registry.py").write_text("def load():\n    from zcpipe.predictors import gbdt\n")
    (tmp_path / "predictors" / "gbdt.py").write_text("from zcpipe.predictors.registry import load\n")
    (tmp_path / "predictors" / "mlp.py").write_text("from zcpipe.predictors import gbdt\n")
    assert cycles(tmp_path) == [["zcpipe.predictors.gbdt", "zcpipe.predictors.registry"]]

"""The one-way flow of ../shared/DESIGN.md, checked on every import in the tree (top-level and inside
functions): workers and store import only themselves, predictors only store, pipeline wires them all,
and the CLI calls the pipeline. Every stage may import the foundation (zcpipe.errors, .settings,
.version), which imports nothing of zcpipe but itself."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

FOUNDATION = {"errors", "settings", "version"}
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

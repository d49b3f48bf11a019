"""Every function and class of the stage interfaces has a docstring: what a stage exports (`__all__`
of its packages) and what any other stage or the CLI imports from it."""

from __future__ import annotations

import ast
import importlib
import inspect

from tests.conftest import ROOT

STAGES = {"workers", "store", "predictors", "pipeline"}
PACKAGES = [
    "zcpipe.workers.spaces",
    "zcpipe.workers.proxies",
    "zcpipe.store",
    "zcpipe.store.catalog",
    "zcpipe.predictors",
    "zcpipe.pipeline",
    "zcpipe.pipeline.ingest",
    "zcpipe.pipeline.labels",
]


def _stage(parts: tuple[str, ...]) -> str | None:
    if parts[0] in STAGES:
        return parts[0]
    return "cli" if parts[:2] == ("zcpipe", "cli") else None


def interface() -> set[tuple[str, str]]:
    """(module, name) pairs that make up the stage interfaces."""
    names = {(pkg, n) for pkg in PACKAGES for n in getattr(importlib.import_module(pkg), "__all__", [])}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        stage = _stage(parts) if parts[0] not in (".venv", "tests", "bench", "build") else None
        if stage is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zcpipe."):
                if node.module.split(".")[1] in STAGES - {stage}:
                    names |= {(node.module, a.name) for a in node.names}
    return names


def test_every_interface_function_and_class_says_what_it_does():
    undocumented = []
    for module, name in sorted(interface()):
        obj = getattr(importlib.import_module(module), name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        if not (own or "").strip():
            undocumented.append(f"{module}.{name}")
    assert undocumented == []

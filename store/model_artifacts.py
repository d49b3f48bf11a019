"""Trained-model artifacts: `<store>/models/<name>/`, written in a staging folder, renamed into place
(uploaded, on object storage), then recorded in `models` in one transaction. The store keeps the
folder; what goes in it (a state dict saved with torch.save, a JSON config) is the training stage's
business."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

from zcpipe.errors import InputError, StoreError
from zcpipe.store import remote
from zcpipe.store.catalog import Catalog

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=-]*$")


class ModelError(StoreError, InputError, ValueError):
    """No such model, a name taken, or an unusable name; says what to do."""


# What `--model` may say instead of a name: the store's newest model.
LATEST = "latest"


def check_name(name: str) -> str:
    """`name` if it is a usable model name; ModelError otherwise."""
    if name == LATEST:
        raise ModelError(f"model name {name!r} stands for the store's newest model; choose another name")
    if not _NAME.match(name) or len(name) > 200:
        raise ModelError(f"model name {name!r}: use letters, digits and . _ - : = (at most 200 characters)")
    return name


def stage_model(store: str | Path) -> Path:
    """An empty folder to write a model's files into before `commit_model`."""
    layout = Catalog(store).layout
    staged = layout.models / f".staging-{uuid.uuid4().hex[:12]}"
    staged.mkdir(parents=True)
    return staged


def commit_model(store: str | Path, staged: Path, row: dict) -> Path | str:
    """Move a staged model folder to models/<name> and register `row` (the `models` columns)."""
    catalog = Catalog(store)
    name = check_name(row["name"])
    final = catalog.layout.model(name)
    with catalog.writer() as w:
        if name in w.model_names():
            shutil.rmtree(staged, ignore_errors=True)
            raise ModelError(f"a model named {name!r} exists in {store}; choose another `name`", options=["name"])
        rel = f"models/{name}"
        if catalog.layout.remote:
            remote.remove_prefix(catalog.layout, rel)  # uploaded by a run that died before its catalog row
            remote.upload_folder(catalog.layout, staged, rel, last="config.json")
            shutil.rmtree(staged)
            w.register_model({**row, "artifact": rel})
            return catalog.layout.uri(rel)
        if final.exists():  # renamed by a run that died before its catalog row: never registered, so not a model
            shutil.rmtree(final)
        staged.rename(final)
        w.register_model({**row, "artifact": rel})
    return final


def unused_name(store: str | Path, base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... : the first name no registered model has."""
    taken = set(model_names(store))
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    return name


def model_names(store: str | Path) -> list[str]:
    """Names of the models registered in the store."""
    catalog = Catalog(store)
    if not catalog.exists():
        return []
    with catalog.reader() as con:
        return [r[0] for r in con.execute("SELECT name FROM models_t ORDER BY name").fetchall()]


def resolve_model(store: str | Path, name: str) -> str:
    """`name`, or for LATEST the name of the store's newest model (ModelError when it has none)."""
    if name != LATEST:
        return name
    catalog = Catalog(store)
    rows = []
    if catalog.exists():
        with catalog.reader() as con:
            rows = con.execute("SELECT name FROM models_t ORDER BY created_at DESC, name LIMIT 1").fetchall()
    if not rows:
        raise ModelError(f"no model in {store} yet; train one first")
    return rows[0][0]


def model_dir(store: str | Path, name: str) -> tuple[Path, dict]:
    """The model's folder and its JSON config; ModelError names the models there are."""
    catalog = Catalog(store)
    with catalog.reader() as con:
        row = con.execute("SELECT artifact FROM models_t WHERE name = ?", [name]).fetchone()
    if row is None:
        have = model_names(store)
        hint = f"models there: {', '.join(have[:10])}" if have else "train one first"
        raise ModelError(f"no model {name!r} in {store}; {hint}")
    folder = catalog.layout.root / row[0]
    if catalog.layout.remote and not folder.exists():  # artifacts are immutable: fetched once per cache
        try:
            remote.download_folder(catalog.layout, row[0], folder)
        except FileNotFoundError as e:
            raise ModelError(f"model {name!r}: its artifact is missing ({e}); train it again") from None
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"model {name!r}: its artifact {folder} is unreadable ({e}); train it again") from None
    return folder, config

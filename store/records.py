"""The store's own copy of everything the catalog records besides shards, so the catalog is an index only.

A label import, the graphs it brings, a model's registration, a model's predictions and each ingest run
are written here as files (Parquet for tables, JSON for one row) before the catalog transaction that
records them. `store reconcile` reads them back into a catalog that lacks them, so a deleted or damaged
`catalog.duckdb` is rebuilt from the store alone (store/catalog/restore.py).

    labels/<space>/<id>.parquet          one label import (id: of the space and the source file)
    graphs/<space>/<id>.parquet          operator graphs an import or an ingest added
    runs/<run_id>.json                   one ingest run, rewritten when it finishes
    models/<name>/record.json            the model's `models` row (inside its artifact folder)
    predictions/<model>/<space>.parquet  a model's latest scores of a space
    nas/<run_id>/run.json                one NAS loop run; seed-<s>.parquet: each seed's query history

Writes are atomic (a temporary file renamed into place; one PUT on object storage), so a reader sees a
whole record or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from zcpipe.store.layout import StoreLayout


def label_record(space: str, source: str) -> str:
    """Where the store keeps the label rows one source file gave for a space."""
    return f"labels/{space}/{record_id(space, source)}.parquet"


def record_id(*parts: str) -> str:
    """A file name for a record keyed by `parts` (the same parts, the same file: a re-import replaces it)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def put(layout: StoreLayout, rel: str, data: bytes) -> None:
    """Write `data` at `rel` (relative to the store), whole or not at all."""
    if layout.remote:
        layout.fs.pipe_file(layout.key(rel), data)
        return
    path = layout.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def put_json(layout: StoreLayout, rel: str, row: dict) -> None:
    put(layout, rel, json.dumps(row, sort_keys=True, default=str).encode())


def put_table(layout: StoreLayout, rel: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    put(layout, rel, sink.getvalue().to_pybytes())


def listing(layout: StoreLayout, prefix: str, suffix: str) -> list[str]:
    """Paths (relative to the store) of the records under `prefix` whose names end in `suffix`."""
    if layout.remote:
        layout.fs.invalidate_cache()
        base = layout.key("").rstrip("/") + "/"
        try:
            keys = layout.fs.find(layout.key(prefix))
        except FileNotFoundError:
            return []
        return sorted(k[len(base) :] for k in keys if k.endswith(suffix))
    root = layout.root / prefix
    if not root.is_dir():
        return []
    return sorted(p.relative_to(layout.root).as_posix() for p in root.rglob(f"*{suffix}") if not p.name.startswith("."))


def get(layout: StoreLayout, rel: str) -> bytes:
    if layout.remote:
        return layout.fs.cat_file(layout.key(rel))
    return (layout.root / rel).read_bytes()


def get_table(layout: StoreLayout, rel: str) -> pa.Table:
    return pq.read_table(pa.BufferReader(get(layout, rel)))


def get_json(layout: StoreLayout, rel: str) -> dict:
    data = json.loads(get(layout, rel))
    if not isinstance(data, dict):
        raise ValueError(f"{rel} holds no JSON object")
    return data

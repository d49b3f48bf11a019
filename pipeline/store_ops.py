"""What the command line asks of a store, as the pipeline's functions: the CLI calls the pipeline only."""

from __future__ import annotations

import pyarrow as pa

from zcpipe.errors import NotFoundError, PipelineError
from zcpipe.store import Catalog
from zcpipe.store.catalog.confined import DEFAULT_TIMEOUT_S as SQL_TIMEOUT_S
from zcpipe.store.compact import CompactionSummary, compact


class NotAStoreError(PipelineError, NotFoundError):
    """The folder or URL holds neither shards nor a catalog."""


def sql(store: str, query: str, timeout_s: float = SQL_TIMEOUT_S) -> pa.Table:
    """A user's SQL over the store's views, confined to reading the store and bounded in time and memory
    (store.Catalog.query_confined)."""
    return Catalog(store).query_confined(query, timeout_s=timeout_s)


def info(store: str) -> dict:
    """Spaces, configurations, row counts, labels, models and size of a store."""
    return Catalog(store).info()


def reconcile(store: str, rebuild: bool = False) -> tuple[dict[str, int], int]:
    """Register committed shards the catalog lacks (verifying every shard) and restore what the store's records
    hold and the catalog lacks; with `rebuild`, first set a (damaged) catalog aside and build a new one from
    the store alone. Returns (what it did, rows in archs)."""
    catalog = Catalog(store)
    if not catalog.has_shards() and not catalog.exists():
        raise NotAStoreError(f"{store} holds no shards/ folder and no catalog: is it a zcpipe store?")
    with catalog.ingest_lock():
        aside = catalog.set_aside() if rebuild else None
        with catalog.writer() as w:
            did = w.reconcile(verify_all=True)
    if aside:
        did["set_aside"] = aside
    n = catalog.query("SELECT count(*) AS n FROM archs").column("n")[0].as_py()
    return did, n


def compact_store(store: str, max_archs: int, small: int) -> CompactionSummary:
    """Rewrite many small shards of each configuration as a few large ones (store.compact)."""
    return compact(store, max_archs=max_archs, small=small)

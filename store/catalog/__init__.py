"""The DuckDB catalog: which shards are committed, the runs, labels, graphs, models and predictions,
and the SQL views over them.

One writer (the ingest driver, a label import, a fit) holds the file only for the length of a change,
so readers (`zcpipe sql`, training) can open it read-only while an ingest runs; both sides retry briefly
when the other holds the lock. On object storage a writer holds a lease, works on a local copy and
publishes it (store/remote.py).

    Catalog(store).writer()   -> CatalogWriter (schema migrated; changes in transactions)
    Catalog(store).reader()   -> a read-only connection with the views installed
    Catalog(store).query(sql) -> pyarrow.Table; `query_confined` for SQL from users
    store.catalog.readers     -> what other stages read (labels, runs, configs, models, predictions, graphs)

The parts: schema.py (tables, migration), views.py, locks.py (file lock, ingest lock, leases),
writer.py (every change, one transaction helper), reconcile.py (one algorithm, local or remote shards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from zcpipe.errors import NotFoundError, StoreError
from zcpipe.store import remote, shard_cache
from zcpipe.store.catalog import confined
from zcpipe.store.catalog.confined import QueryError, QueryTimeoutError
from zcpipe.store.catalog.locks import (
    CatalogBusyError,
    CatalogDamagedError,
    catalog_lease,
    connect,
    damaged,
    ingest_lock,
    is_damage,
)
from zcpipe.store.catalog.schema import add_missing_tables, migrate
from zcpipe.store.catalog.views import install_views
from zcpipe.store.catalog.writer import CatalogWriter
from zcpipe.store.layout import StoreLayout, is_read_only_error, read_only
from zcpipe.store.shards import CorruptShardError


class StoreNotFoundError(StoreError, NotFoundError, FileNotFoundError):
    """The store has no catalog; `has_shards` says whether a reconcile could build one."""

    def __init__(self, message: str, *, store: str, has_shards: bool):
        super().__init__(message)
        self.store, self.has_shards = store, has_shards


class Catalog:
    """The catalog of one store (a folder or an fsspec URL)."""

    def __init__(self, root: str | Path):
        self.layout = StoreLayout(root)

    # ------------------------------------------------------------------ writing

    @contextmanager
    def writer(self) -> Iterator[CatalogWriter]:
        """The store's one writer, for the length of the `with` block (published at its end if remote)."""
        if not self.layout.remote:
            with self._writer() as w:
                yield w
            return
        with catalog_lease(self.layout) as lease:
            self.layout.root.mkdir(parents=True, exist_ok=True)
            remote.sync_working_copy(self.layout)
            try:
                with self._writer() as w:
                    yield w
                lease.ensure_held()
                remote.publish(self.layout)
            except BaseException:  # the next writer starts again from the published catalog
                (self.layout.root / "catalog.etag").unlink(missing_ok=True)
                raise

    @contextmanager
    def _writer(self) -> Iterator[CatalogWriter]:
        try:
            self.layout.root.mkdir(parents=True, exist_ok=True)
            con = connect(self.layout.catalog, read_only=False)
        except (duckdb.IOException, OSError) as e:
            if is_read_only_error(e):  # a read-only mount is no lock: say what it is
                raise read_only(self.layout, e) from None
            if isinstance(e, OSError):
                raise
            raise CatalogBusyError(f"catalog {self.layout.catalog} is locked by another process: {e}") from None
        try:
            # The writer's connection needs no views (readers build their own), so a damaged shard
            # cannot stop the reconcile that would quarantine it.
            migrate(con)
            yield CatalogWriter(con, self.layout)
        finally:
            con.close()

    def set_aside(self) -> str | None:
        """Move the catalog out of the way (kept, renamed `catalog.damaged-<time>.duckdb`) so the next writer
        starts a new one, which reconcile fills from the store's shards and records. Returns where it went."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        aside = f"catalog.damaged-{stamp}.duckdb"
        if self.layout.remote:
            with catalog_lease(self.layout):
                key = self.layout.key(remote.CATALOG_KEY)
                if not self.layout.fs.exists(key):
                    return None
                self.layout.fs.copy(key, self.layout.key(aside))
                self.layout.fs.rm(key)
                self.layout.catalog.unlink(missing_ok=True)
                (self.layout.root / "catalog.etag").unlink(missing_ok=True)
            return self.layout.uri(aside)
        if not self.layout.catalog.exists():
            return None
        for suffix in (".wal",):
            wal = self.layout.catalog.with_name(self.layout.catalog.name + suffix)
            if wal.exists():
                wal.rename(self.layout.root / (aside + suffix))
        self.layout.catalog.rename(self.layout.root / aside)
        return str(self.layout.root / aside)

    def ingest_lock(self):
        """One ingest per store at a time (store/catalog/locks.py)."""
        return ingest_lock(self.layout)

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        """Whether the store has a catalog (published, for a remote store)."""
        if self.layout.remote:
            return remote.published_snapshot(self.layout) is not None
        return self.layout.catalog.exists()

    def has_shards(self) -> bool:
        """Whether the store holds committed shards (with or without a catalog)."""
        return bool(remote.shard_prefixes(self.layout)) if self.layout.remote else self.layout.shards.is_dir()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection with the views installed, closed at the end of the block."""
        with self._reader() as (con, _):
            yield con

    @contextmanager
    def _reader(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[str]]]:
        path = remote.published_snapshot(self.layout) if self.layout.remote else self.layout.catalog
        if path is None or not path.exists():
            raise StoreNotFoundError(
                f"no catalog in {self.layout}", store=str(self.layout), has_shards=self.has_shards()
            )
        con = connect(path, read_only=True)
        try:
            add_missing_tables(con)
            try:
                files = install_views(con, self.layout)
            except duckdb.Error as e:
                if is_damage(e):
                    raise
                raise CorruptShardError(f"a shard of {self.layout} is unreadable ({str(e).splitlines()[0]})") from None
            yield con, files
        except duckdb.Error as e:  # a bad block of the catalog shows only when a query reaches it
            if is_damage(e):
                raise damaged(path, e) from None
            raise
        finally:
            con.close()

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        """The result of `sql` over the views, as an Arrow table (for the stages' own SQL)."""
        with self.reader() as con:
            rel = con.sql(sql, params=params)
            return pa.table({}) if rel is None else rel.to_arrow_table()

    def query_confined(self, sql: str, timeout_s: float = confined.DEFAULT_TIMEOUT_S) -> pa.Table:
        """A user's SQL, confined to reading the store's views and shard files, bounded in time and memory
        (store/catalog/confined.py), so a catalog can be offered to others through it."""
        with self._reader() as (con, files):
            readable = files
            if self.layout.remote and not shard_cache.enabled():  # read through fsspec, by URL
                readable = [self.layout.url.rstrip("/") + "/shards/"]
            return confined.run_confined(con, sql, readable, timeout_s=timeout_s)

    def info(self) -> dict:
        """What the store holds: per space and config, statistics rows by status; labels; models; bytes on disk."""
        from zcpipe.store.catalog import readers

        out = {
            "root": str(self.layout),
            "configs": readers.configs(self),
            "labels": readers.label_counts(self),
            "models": len(readers.models(self)),
        }
        if self.layout.remote:
            out["bytes"] = self.layout.fs.du(self.layout.base)
            local = self.layout.root  # this node's copies: the catalog, shard files, downloaded models
            out["local_cache"] = str(local)
            out["local_cache_bytes"] = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
        else:
            out["bytes"] = sum(p.stat().st_size for p in self.layout.root.rglob("*") if p.is_file())
        return out

    def failed_archs(self, space: str, config_hash: str) -> set[str]:
        """Arch keys whose current row of this configuration says `failed`."""
        table = self.query(
            "SELECT arch FROM archs WHERE space = ? AND config_hash = ? AND status = 'failed'", [space, config_hash]
        )
        return set(table.column("arch").to_pylist()) if table.num_rows else set()

    def committed_shard_dirs(self, space: str | None = None) -> list[Path] | list[str]:
        """Committed shards: local folders, or URLs on a remote store."""
        with self.reader() as con:
            q = "SELECT path FROM shards_t" + (" WHERE space = ?" if space else "") + " ORDER BY committed_at"
            rows = con.execute(q, [space] if space else []).fetchall()
        if self.layout.remote:
            return [self.layout.uri(r[0]) for r in rows]
        return [self.layout.root / r[0] for r in rows]


__all__ = [
    "Catalog",
    "CatalogBusyError",
    "CatalogDamagedError",
    "CatalogWriter",
    "QueryError",
    "QueryTimeoutError",
    "StoreNotFoundError",
]

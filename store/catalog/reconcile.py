"""Bringing files and catalog into agreement after a crash, or after shards were copied in.

One algorithm over two backends (a local folder, an object store), which differ only in how shards
are listed, verified, moved aside and removed:

- a shard in progress (local staging/, or a remote prefix without its manifest) is removed;
- a complete shard without a catalog row (renamed into shards/ or uploaded whole, but the driver died
  before the catalog transaction) is registered if it verifies, quarantined if not;
- a row whose shard is gone is dropped; with `verify_all`, every registered shard is re-checked.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import AbstractContextManager
from typing import Protocol

import duckdb

from zcpipe.store import remote
from zcpipe.store.catalog.restore import backfill, restore
from zcpipe.store.layout import StoreLayout
from zcpipe.store.shards import CorruptShardError, ShardManifest, verify, verify_remote


class CatalogWriter(Protocol):
    """What reconciling uses of `writer.CatalogWriter` (which calls `reconcile` with itself; named here so
    neither module imports the other)."""

    con: duckdb.DuckDBPyConnection
    layout: StoreLayout

    def purge_retired(self) -> int: ...

    def register(self, manifest: ShardManifest, rel: str, replace: bool = False) -> None: ...

    def unregister(self, shard_id: str) -> None: ...

    def transaction(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


log = logging.getLogger(__name__)


class ShardBackend(Protocol):
    def clear_in_progress(self) -> int:
        """Remove shards still being written; how many."""

    def complete_shards(self) -> list[str]:
        """Store-relative paths of every shard written whole."""

    def verify(self, rel: str) -> ShardManifest: ...

    def exists(self, rel: str) -> bool: ...

    def quarantine(self, rel: str) -> None: ...


class LocalShards:
    """Shards in a folder: staging/ holds those in progress, shards/<space>/<run>/<shard> the rest."""

    def __init__(self, layout: StoreLayout):
        self.layout = layout

    def clear_in_progress(self) -> int:
        n = 0
        if self.layout.staging.exists():
            for d in self.layout.staging.iterdir():
                shutil.rmtree(d) if d.is_dir() else d.unlink()
                n += 1
        return n

    def complete_shards(self) -> list[str]:
        if not self.layout.shards.exists():
            return []
        return [d.relative_to(self.layout.root).as_posix() for d in sorted(self.layout.shards.glob("*/*/*"))]

    def verify(self, rel: str) -> ShardManifest:
        return verify(self.layout.root / rel)

    def exists(self, rel: str) -> bool:
        return (self.layout.root / rel).exists()

    def quarantine(self, rel: str) -> None:
        self.layout.quarantine.mkdir(parents=True, exist_ok=True)
        src = self.layout.root / rel
        src.rename(self.layout.quarantine / src.name)


class RemoteShards:
    """Shards on object storage (reconciled under the ingest lease, so no upload is in flight): a prefix
    without a manifest is an interrupted upload."""

    def __init__(self, layout: StoreLayout):
        self.layout = layout
        self._prefixes = remote.shard_prefixes(layout)

    def clear_in_progress(self) -> int:
        unfinished = [rel for rel, has_manifest in self._prefixes.items() if not has_manifest]
        for rel in unfinished:
            remote.remove_prefix(self.layout, rel)
        return len(unfinished)

    def complete_shards(self) -> list[str]:
        return sorted(rel for rel, has_manifest in self._prefixes.items() if has_manifest)

    def verify(self, rel: str) -> ShardManifest:
        return verify_remote(self.layout, rel)

    def exists(self, rel: str) -> bool:
        return rel in self._prefixes

    def quarantine(self, rel: str) -> None:
        fs, src = self.layout.fs, self.layout.key(rel)
        fs.copy(src, self.layout.key(f"quarantine/{rel.rsplit('/', 1)[-1]}"), recursive=True)
        remote.remove_prefix(self.layout, rel)


def backend_for(layout: StoreLayout) -> ShardBackend:
    return RemoteShards(layout) if layout.remote else LocalShards(layout)


def reconcile(writer: CatalogWriter, verify_all: bool = False) -> dict[str, int]:
    """Run the reconciliation on `writer`'s catalog; returns what it did."""
    did = {"staging_removed": 0, "orphans_registered": 0, "quarantined": 0, "missing_dropped": 0}
    writer.purge_retired()
    shards = backend_for(writer.layout)
    did["staging_removed"] = shards.clear_in_progress()
    con = writer.con
    known = {r[1]: r[0] for r in con.execute("SELECT shard_id, path FROM shards_t").fetchall()}
    known_ids = set(known.values())
    retired = {r[0] for r in con.execute("SELECT path FROM retired_t").fetchall()}  # still in their grace period
    for rel in shards.complete_shards():
        if rel in known or rel in retired or rel.rsplit("/", 1)[-1] in known_ids:
            continue
        try:
            writer.register(shards.verify(rel), rel)
            did["orphans_registered"] += 1
        except (CorruptShardError, duckdb.ConstraintException) as e:
            log.warning("quarantining shard %s: %s", rel, e)
            shards.quarantine(rel)
            did["quarantined"] += 1
    for rel, shard_id in known.items():
        if not shards.exists(rel):
            writer.unregister(shard_id)
            did["missing_dropped"] += 1
        elif verify_all:
            try:
                shards.verify(rel)
            except CorruptShardError as e:
                log.warning("quarantining shard %s: %s", rel, e)
                writer.unregister(shard_id)
                shards.quarantine(rel)
                did["quarantined"] += 1
    with writer.transaction():
        # labels, graphs, models, predictions, runs: from the store's own records; and the other way, the
        # records an older store lacks, from the catalog
        did.update(restore(con, writer.layout))
        did["records_written"] = backfill(con, writer.layout)
        # A run that died counts what it committed (its shards are the truth; its record may predate them).
        con.execute(
            "UPDATE runs_t SET state = 'interrupted', done = greatest(done, (SELECT coalesce(sum(n_archs), 0) "
            "FROM shards_t s WHERE s.run_id = runs_t.run_id)) WHERE state = 'running'"
        )
    return did

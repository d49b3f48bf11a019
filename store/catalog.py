"""The DuckDB catalog: which shards are committed, the runs, labels, models, and SQL views over them.

One writer (the ingest driver) holds the file only for the length of a commit, so
readers (`zcpipe sql`, training) can open it read-only while an ingest runs; both
sides retry briefly when the other holds the lock.

The file holds shard paths relative to the store root and no views. Every connection
builds its views as TEMP views from where the store is now, so a copied or moved store
(a backup, a share mounted elsewhere) answers queries, and a read-only one does too.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from zcpipe.store import remote, shard_cache
from zcpipe.store.layout import StoreLayout
from zcpipe.store.schema import ARCH_COLUMNS, LAYER_COLUMNS
from zcpipe.store.shards import CorruptShardError, ShardManifest, verify, verify_remote

log = logging.getLogger(__name__)

_DDL = """
CREATE TABLE IF NOT EXISTS shards_t (
    shard_id VARCHAR PRIMARY KEY, space VARCHAR, run_id VARCHAR, config_hash VARCHAR,
    path VARCHAR, n_archs INTEGER, committed_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS arch_index (
    space VARCHAR, arch VARCHAR, config_hash VARCHAR, shard_id VARCHAR,
    PRIMARY KEY (space, arch, config_hash));
CREATE TABLE IF NOT EXISTS labels_t (
    space VARCHAR, arch VARCHAR, label VARCHAR, dataset VARCHAR, split VARCHAR, metric VARCHAR,
    epochs INTEGER, seed_agg VARCHAR, detail VARCHAR, value DOUBLE, source VARCHAR, source_row INTEGER,
    imported_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS runs_t (
    run_id VARCHAR PRIMARY KEY, space VARCHAR, config_hash VARCHAR, config JSON,
    started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, state VARCHAR,
    planned INTEGER, done INTEGER, skipped INTEGER, failed INTEGER);
CREATE TABLE IF NOT EXISTS models_t (
    name VARCHAR PRIMARY KEY, predictor VARCHAR, space VARCHAR, config_hash VARCHAR, target VARCHAR,
    train_size INTEGER, seed INTEGER, n_test INTEGER, kendall DOUBLE, spearman DOUBLE, pearson DOUBLE,
    hparams JSON, metrics JSON, artifact VARCHAR, zcpipe_version VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS graphs_t (
    space VARCHAR, arch VARCHAR, ops VARCHAR[], src SMALLINT[], dst SMALLINT[],
    PRIMARY KEY (space, arch));
CREATE TABLE IF NOT EXISTS retired_t (
    shard_id VARCHAR PRIMARY KEY, path VARCHAR, retired_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS predictions_t (
    space VARCHAR, arch VARCHAR, model VARCHAR, score DOUBLE, score_std DOUBLE, created_at TIMESTAMPTZ,
    PRIMARY KEY (model, space, arch));
"""
# Views that catalogs written before relocatable stores kept in the file, with absolute paths.
_LEGACY_VIEWS = ("archs_labeled", "archs", "layers", "runs", "labels", "shards")
_DUCK_TYPES = {
    "string": "VARCHAR",
    "double": "DOUBLE",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "list<item: int32>": "INTEGER[]",
    "map<string, string>": "MAP(VARCHAR, VARCHAR)",
}


class CatalogBusyError(RuntimeError):
    pass


def _is_lock_error(e: BaseException) -> bool:
    return isinstance(e, duckdb.IOException) and "lock" in str(e).lower()


_retry_lock = retry(
    retry=retry_if_exception(_is_lock_error),
    stop=stop_after_delay(60),
    wait=wait_exponential(multiplier=0.05, max=1.0),
    reraise=True,
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Catalog:
    def __init__(self, root: str | Path):
        self.layout = StoreLayout(root)

    # ------------------------------------------------------------------ connections

    @_retry_lock
    def _connect(self, read_only: bool, path: Path | None = None) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(path or self.layout.catalog), read_only=read_only)

    @contextmanager
    def writer(self) -> Iterator[CatalogWriter]:
        if not self.layout.remote:
            with self._writer() as w:
                yield w
            return
        # Object storage: lease, sync the local copy down, write, publish (store/remote.py).
        what = f"the catalog of {self.layout}"
        with remote.Lease(self.layout, "catalog.lock", ttl=60, wait=120, what=what) as lease:
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
        self.layout.root.mkdir(parents=True, exist_ok=True)
        try:
            con = self._connect(read_only=False)
        except duckdb.IOException as e:
            raise CatalogBusyError(f"catalog {self.layout.catalog} is locked by another process: {e}") from None
        try:
            con.execute(_DDL)
            for view in _LEGACY_VIEWS:
                con.execute(f"DROP VIEW IF EXISTS main.{view}")
            # The writer's connection needs no views (readers build their own), so a damaged shard
            # cannot stop the reconcile that would quarantine it.
            yield CatalogWriter(con, self.layout)
        finally:
            con.close()

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """Held by an ingest for its whole run: start-up reconciliation clears staging/, which must never
        happen under another running ingest. The OS drops the lock if the process dies; on object
        storage the lock is a lease that expires when its holder stops renewing it."""
        if self.layout.remote:
            with remote.Lease(self.layout, "ingest.lock", ttl=300, wait=0, what=f"an ingest on {self.layout}"):
                yield
            return
        self.layout.root.mkdir(parents=True, exist_ok=True)
        path = self.layout.root / "ingest.lock"
        with path.open("a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise CatalogBusyError(
                    f"another ingest ({holder}) is running on {self.layout.root}; wait for it or use another --store"
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}")
            f.flush()
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def exists(self) -> bool:
        if self.layout.remote:
            return remote.published_snapshot(self.layout) is not None
        return self.layout.catalog.exists()

    def has_shards(self) -> bool:
        return bool(remote.shard_prefixes(self.layout)) if self.layout.remote else self.layout.shards.is_dir()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        path = remote.published_snapshot(self.layout) if self.layout.remote else self.layout.catalog
        if path is None or not path.exists():
            hint = (
                f"`zcpipe store reconcile --store {self.layout}` registers the shards it holds"
                if self.has_shards()
                else f"run `zcpipe ingest --store {self.layout} ...` first"
            )
            raise FileNotFoundError(f"no catalog in {self.layout}: {hint}")
        con = self._connect(read_only=True, path=path)
        try:
            _add_missing_tables(con)
            try:
                install_views(con, self.layout)
            except duckdb.Error as e:
                raise CorruptShardError(
                    f"a shard of {self.layout} is unreadable ({str(e).splitlines()[0]}); "
                    f"`zcpipe store reconcile --store {self.layout} --verify` verifies and quarantines it"
                ) from None
            yield con
        finally:
            con.close()

    def query(self, sql: str) -> pa.Table:
        with self.reader() as con:
            rel = con.sql(sql)
            return pa.table({}) if rel is None else rel.to_arrow_table()

    def info(self) -> dict:
        """What the store holds: per space and config, statistics rows by status; labels; models; bytes on disk."""
        with self.reader() as con:
            configs = (
                con.sql(
                    "SELECT a.space, a.config_hash, count(*) AS archs, count(*) FILTER (status = 'ok') AS ok, "
                    "count(*) FILTER (status = 'partial') AS partial, count(*) FILTER (status = 'failed') AS failed, "
                    "count(DISTINCT a.shard_id) AS shards FROM archs a GROUP BY ALL ORDER BY ALL"
                )
                .to_arrow_table()
                .to_pylist()
            )
            labels = (
                con.sql("SELECT space, label, count(DISTINCT arch) AS archs FROM labels GROUP BY ALL ORDER BY ALL")
                .to_arrow_table()
                .to_pylist()
            )
            models = con.execute("SELECT count(*) FROM models_t").fetchone()[0]
        if self.layout.remote:
            size = self.layout.fs.du(self.layout.base)
        else:
            size = sum(p.stat().st_size for p in self.layout.root.rglob("*") if p.is_file())
        out = {"root": str(self.layout), "configs": configs, "labels": labels, "models": models, "bytes": size}
        if self.layout.remote:  # this node's copies: the catalog, shard files, downloaded models
            local = self.layout.root
            out["local_cache"] = str(local)
            out["local_cache_bytes"] = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
        return out

    def failed_archs(self, space: str, config_hash: str) -> set[str]:
        with self.reader() as con:
            rows = con.execute(
                "SELECT arch FROM archs WHERE space = ? AND config_hash = ? AND status = 'failed'", [space, config_hash]
            ).fetchall()
        return {r[0] for r in rows}

    def committed_shard_dirs(self, space: str | None = None) -> list[Path] | list[str]:
        """Committed shards: local folders, or URLs on a remote store."""
        with self.reader() as con:
            q = "SELECT path FROM shards_t" + (" WHERE space = ?" if space else "") + " ORDER BY committed_at"
            rows = con.execute(q, [space] if space else []).fetchall()
        if self.layout.remote:
            return [self.layout.uri(r[0]) for r in rows]
        return [self.layout.root / r[0] for r in rows]


class CatalogWriter:
    def __init__(self, con: duckdb.DuckDBPyConnection, layout: StoreLayout):
        self.con = con
        self.layout = layout

    # ------------------------------------------------------------------ start-up

    def reconcile(self, verify_all: bool = False) -> dict[str, int]:
        """Bring files and catalog into agreement after a crash, or after shards were copied in; returns
        what it did. `verify_all` also re-checks the checksums of every registered shard."""
        did = {"staging_removed": 0, "orphans_registered": 0, "quarantined": 0, "missing_dropped": 0}
        if self.layout.remote:
            self._reconcile_remote(did, verify_all)
            self.con.execute("UPDATE runs_t SET state = 'interrupted' WHERE state = 'running'")
            return did
        if self.layout.staging.exists():
            for d in self.layout.staging.iterdir():
                shutil.rmtree(d) if d.is_dir() else d.unlink()
                did["staging_removed"] += 1
        self.purge_retired()
        known = {r[0]: r[1] for r in self.con.execute("SELECT shard_id, path FROM shards_t").fetchall()}
        for shard_dir in sorted(self.layout.shards.glob("*/*/*")) if self.layout.shards.exists() else []:
            if shard_dir.name in known:
                continue
            # Renamed into shards/ but the driver died before the catalog transaction: finish it.
            try:
                self._register(verify(shard_dir), shard_dir.relative_to(self.layout.root).as_posix())
                did["orphans_registered"] += 1
            except (CorruptShardError, duckdb.ConstraintException) as e:
                log.warning("quarantining shard %s: %s", shard_dir, e)
                self.layout.quarantine.mkdir(parents=True, exist_ok=True)
                shard_dir.rename(self.layout.quarantine / shard_dir.name)
                did["quarantined"] += 1
        for shard_id, rel in known.items():
            shard_dir = self.layout.root / rel
            if not shard_dir.exists():
                self._unregister(shard_id)
                did["missing_dropped"] += 1
            elif verify_all:
                try:
                    verify(shard_dir)
                except CorruptShardError as e:
                    log.warning("quarantining shard %s: %s", shard_dir, e)
                    self._unregister(shard_id)
                    self.layout.quarantine.mkdir(parents=True, exist_ok=True)
                    shard_dir.rename(self.layout.quarantine / shard_dir.name)
                    did["quarantined"] += 1
        self.con.execute("UPDATE runs_t SET state = 'interrupted' WHERE state = 'running'")
        return did

    def _reconcile_remote(self, did: dict[str, int], verify_all: bool) -> None:
        """Reconcile on object storage (run under the ingest lease, so no upload is in flight): a prefix
        without a manifest is an interrupted upload; one with a manifest but no catalog row was uploaded
        whole but never committed, and is registered if it verifies."""
        self.purge_retired()
        known = {r[1]: r[0] for r in self.con.execute("SELECT shard_id, path FROM shards_t").fetchall()}
        retired = {r[0] for r in self.con.execute("SELECT path FROM retired_t").fetchall()}  # still in grace
        prefixes = remote.shard_prefixes(self.layout)
        for rel, has_manifest in sorted(prefixes.items()):
            if rel in known or rel in retired:
                continue
            if not has_manifest:
                remote.remove_prefix(self.layout, rel)
                did["staging_removed"] += 1
                continue
            try:
                self._register(verify_remote(self.layout, rel), rel)
                did["orphans_registered"] += 1
            except (CorruptShardError, duckdb.ConstraintException) as e:
                log.warning("quarantining shard %s: %s", rel, e)
                self._quarantine_remote(rel)
                did["quarantined"] += 1
        for rel, shard_id in known.items():
            if rel not in prefixes:
                self._unregister(shard_id)
                did["missing_dropped"] += 1
            elif verify_all:
                try:
                    verify_remote(self.layout, rel)
                except CorruptShardError as e:
                    log.warning("quarantining shard %s: %s", rel, e)
                    self._unregister(shard_id)
                    self._quarantine_remote(rel)
                    did["quarantined"] += 1

    def _quarantine_remote(self, rel: str) -> None:
        fs, src = self.layout.fs, self.layout.key(rel)
        fs.copy(src, self.layout.key(f"quarantine/{rel.rsplit('/', 1)[-1]}"), recursive=True)
        remote.remove_prefix(self.layout, rel)

    # ------------------------------------------------------------------ compaction

    def replace_shards(self, manifests: list[ShardManifest], old: list[str]) -> None:
        """Swap the shards `old` for `manifests` (staged, holding the same rows) in one transaction: readers
        see the old set or the new one. The old shards' files are deleted after the commit; a crash before
        that leaves them in `retired_t`, and the next reconcile deletes them instead of registering them."""
        rels = []
        for m in manifests:
            if self.layout.remote:
                rel = self.layout.shard_rel(m.space, m.run_id, m.shard_id)
                if verify_remote(self.layout, rel) != m:
                    raise CorruptShardError(f"compacted shard {self.layout.uri(rel)} does not match its manifest")
            else:
                staged = self.layout.staged(m.shard_id)
                if verify(staged) != m:
                    raise CorruptShardError(f"compacted shard {staged} does not match its manifest")
                final = self.layout.committed(m.space, m.run_id, m.shard_id)
                final.parent.mkdir(parents=True, exist_ok=True)
                staged.rename(final)
                rel = final.relative_to(self.layout.root).as_posix()
            rels.append(rel)
        self.con.execute("BEGIN")
        try:
            self.con.executemany(
                "INSERT INTO retired_t SELECT shard_id, path, now() FROM shards_t WHERE shard_id = ?",
                [[o] for o in old],
            )
            self.con.executemany("DELETE FROM arch_index WHERE shard_id = ?", [[o] for o in old])
            self.con.executemany("DELETE FROM shards_t WHERE shard_id = ?", [[o] for o in old])
            for m, rel in zip(manifests, rels, strict=True):
                self._insert_shard(m, rel)
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise

    def purge_retired(self) -> int:
        """Delete the files of shards that compaction replaced; returns how many. On object storage only
        those retired `remote.SNAPSHOT_GRACE_S` ago or more: a reader on another node may still hold a
        catalog snapshot from before the swap, and reads the old shards until its next snapshot."""
        grace = remote.SNAPSHOT_GRACE_S if self.layout.remote else 0
        rows = self.con.execute(
            "SELECT shard_id, path FROM retired_t WHERE retired_at <= now() - to_seconds(?)", [float(grace)]
        ).fetchall()
        for shard_id, rel in rows:
            if self.layout.remote:
                remote.remove_prefix(self.layout, rel)
            else:
                shutil.rmtree(self.layout.root / rel, ignore_errors=True)
            self.con.execute("DELETE FROM retired_t WHERE shard_id = ?", [shard_id])
        return len(rows)

    def _unregister(self, shard_id: str) -> None:
        self.con.execute("BEGIN")
        self.con.execute("DELETE FROM arch_index WHERE shard_id = ?", [shard_id])
        self.con.execute("DELETE FROM shards_t WHERE shard_id = ?", [shard_id])
        self.con.execute("COMMIT")

    # ------------------------------------------------------------------ runs

    def committed_archs(self, space: str, config_hash: str) -> set[str]:
        rows = self.con.execute(
            "SELECT arch FROM arch_index WHERE space = ? AND config_hash = ?", [space, config_hash]
        ).fetchall()
        return {r[0] for r in rows}

    def start_run(self, run_id: str, space: str, config_hash: str, config: dict, planned: int) -> None:
        self.con.execute(
            "INSERT INTO runs_t VALUES (?, ?, ?, ?, ?, NULL, 'running', ?, 0, 0, 0)",
            [run_id, space, config_hash, json.dumps(config, sort_keys=True), _now(), planned],
        )

    def finish_run(self, run_id: str, state: str, done: int, skipped: int, failed: int) -> None:
        self.con.execute(
            "UPDATE runs_t SET finished_at = ?, state = ?, done = ?, skipped = ?, failed = ? WHERE run_id = ?",
            [_now(), state, done, skipped, failed, run_id],
        )

    # ------------------------------------------------------------------ commit

    def commit(self, manifest: ShardManifest, replace: bool = False) -> Path | str:
        """Verify a staged shard, move it into shards/ and record it, all or nothing. On object storage the
        shard is already at its final prefix: verified and recorded, it becomes visible when the catalog
        is published (the end of this writer's `with` block)."""
        if self.layout.remote:
            rel = self.layout.shard_rel(manifest.space, manifest.run_id, manifest.shard_id)
            if verify_remote(self.layout, rel) != manifest:
                raise CorruptShardError(f"shard {self.layout.uri(rel)} does not match the manifest its worker returned")
            self._register(manifest, rel, replace)
            return self.layout.uri(rel)
        staged = self.layout.staged(manifest.shard_id)
        on_disk = verify(staged)
        if on_disk != manifest:
            raise CorruptShardError(f"staged shard {staged} does not match the manifest its worker returned")
        final = self.layout.committed(manifest.space, manifest.run_id, manifest.shard_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(final)  # atomic on one filesystem; a crash after it is finished by reconcile()
        self._register(manifest, final.relative_to(self.layout.root).as_posix(), replace)
        return final

    def _register(self, manifest: ShardManifest, rel: str, replace: bool = False) -> None:
        """Record a shard and point its archs at it. `replace` lets it supersede earlier rows of the same
        archs (a --retry-failed recomputation): views show only the rows arch_index points at."""
        self.con.execute("BEGIN")
        try:
            if replace:
                self.con.executemany(
                    "DELETE FROM arch_index WHERE space = ? AND arch = ? AND config_hash = ?",
                    [[manifest.space, a, manifest.config_hash] for a in manifest.archs],
                )
            self._insert_shard(manifest, rel)
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise

    def _insert_shard(self, m: ShardManifest, rel: str) -> None:
        """Record shard `m` at `rel` and point its archs at it (inside the caller's transaction)."""
        self.con.execute(
            "INSERT INTO shards_t VALUES (?, ?, ?, ?, ?, ?, ?)",
            [m.shard_id, m.space, m.run_id, m.config_hash, rel, len(m.archs), _now()],
        )
        self.con.executemany(
            "INSERT INTO arch_index VALUES (?, ?, ?, ?)", [[m.space, a, m.config_hash, m.shard_id] for a in m.archs]
        )

    # ------------------------------------------------------------------ labels

    def import_labels(self, rows: list[dict]) -> int:
        """Replace what each source file gave before with `rows`, in one transaction (all or none land)."""
        cols = [
            "space",
            "arch",
            "label",
            "dataset",
            "split",
            "metric",
            "epochs",
            "seed_agg",
            "detail",
            "value",
            "source",
            "source_row",
        ]
        self._replace_with(
            pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows]),
            ("DELETE FROM labels_t WHERE (space, source) IN (SELECT DISTINCT space, source FROM incoming)", []),
            f"INSERT INTO labels_t SELECT {', '.join(cols)}, now() FROM incoming",
        )
        return len(rows)

    def _replace_with(self, incoming: pa.Table, delete: tuple[str, list], insert: str) -> None:
        """Register `incoming` as view `incoming`, then run `delete` and `insert` in one transaction."""
        self.con.register("incoming", incoming)
        try:
            self.con.execute("BEGIN")
            self.con.execute(*delete)
            self.con.execute(insert)
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("incoming")

    # ------------------------------------------------------------------ graphs

    def add_graphs(self, table: pa.Table) -> int:
        """Operator graphs (space, arch, ops, src, dst): what TG-NAS reads instead of statistics. A graph is a
        function of its arch key, so rows already present are kept."""
        self.con.register("incoming_graphs", table)
        try:
            before = self.con.execute("SELECT count(*) FROM graphs_t").fetchall()[0][0]
            self.con.execute(
                "INSERT INTO graphs_t SELECT DISTINCT ON (space, arch) space, arch, ops, src, dst FROM incoming_graphs "
                "ANTI JOIN graphs_t USING (space, arch)"
            )
            return self.con.execute("SELECT count(*) FROM graphs_t").fetchall()[0][0] - before
        finally:
            self.con.unregister("incoming_graphs")

    # ------------------------------------------------------------------ models

    def register_model(self, row: dict) -> None:
        """One row of `models`; the artifact folder it names must already be complete."""
        cols = [
            "name", "predictor", "space", "config_hash", "target", "train_size", "seed", "n_test",
            "kendall", "spearman", "pearson", "hparams", "metrics", "artifact", "zcpipe_version",
        ]  # fmt: skip
        values = [json.dumps(row[c], sort_keys=True) if c in ("hparams", "metrics") else row[c] for c in cols]
        self.con.execute(
            f"INSERT INTO models_t ({', '.join(cols)}, created_at) VALUES ({', '.join('?' * len(cols))}, ?)",
            [*values, _now()],
        )

    def model_names(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT name FROM models_t").fetchall()}

    def replace_predictions(self, model: str, space: str, archs: list[str], score, score_std) -> int:
        """Replace a model's scores for a space in one transaction: readers see the old set or the new."""
        table = pa.table(
            {
                "space": pa.array([space] * len(archs), pa.string()),
                "arch": pa.array(archs, pa.string()),
                "model": pa.array([model] * len(archs), pa.string()),
                "score": pa.array(score, pa.float64(), from_pandas=True),  # NaN -> NULL
                "score_std": pa.array(score_std, pa.float64(), from_pandas=True),
            }
        )
        self._replace_with(
            table,
            ("DELETE FROM predictions_t WHERE model = ? AND space = ?", [model, space]),
            "INSERT INTO predictions_t SELECT *, now() FROM incoming",
        )
        return len(archs)


def _add_missing_tables(con: duckdb.DuckDBPyConnection) -> None:
    """A catalog from an older zcpipe, opened read-only, lacks newer tables: stand in empty TEMP ones."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    for statement in filter(str.strip, _DDL.split(";")):
        name = statement.split("EXISTS", 1)[1].split("(", 1)[0].strip()
        if name not in have:
            con.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))


def install_views(con: duckdb.DuckDBPyConnection, layout: StoreLayout) -> None:
    """This connection's views over the store as it lies now (TEMP: nothing is written to the file)."""
    rels = [r[0] for r in con.execute("SELECT path FROM shards_t ORDER BY committed_at, shard_id").fetchall()]
    # A remote store's Parquet files are read from local copies (store/shard_cache.py), fetched once.
    where = shard_cache.shard_dirs(layout, rels, ("archs.parquet", "layers.parquet"))
    shard_cache.prune(layout, rels)
    if layout.remote and rels and not shard_cache.enabled():
        # DuckDB reads the shards through the store's fsspec filesystem (its httpfs extension cannot be
        # downloaded here, and fsspec takes every protocol and the AWS_* settings the same way).
        # Connections to one catalog file in one process share a database instance, and its registry.
        if not any(con.filesystem_is_registered(p) for p in _protocols(layout.fs)):
            con.register_filesystem(layout.fs)
    _parquet_view(con, "archs", [f"{d}/archs.parquet" for d in where], ARCH_COLUMNS)
    _parquet_view(con, "layers", [f"{d}/layers.parquet" for d in where], LAYER_COLUMNS)
    con.execute("CREATE OR REPLACE TEMP VIEW runs AS SELECT * FROM runs_t")
    con.execute("CREATE OR REPLACE TEMP VIEW labels AS SELECT * EXCLUDE (imported_at) FROM labels_t")
    # One row per (architecture statistics, label); filter on `label`, e.g. 'cifar10_valid'.
    con.execute(
        "CREATE OR REPLACE TEMP VIEW archs_labeled AS SELECT a.*, l.label, l.dataset, l.split, l.metric, l.epochs, "
        "l.seed_agg, l.detail, l.value, l.source, l.source_row FROM archs a JOIN labels l USING (space, arch)"
    )
    con.execute("CREATE OR REPLACE TEMP VIEW shards AS SELECT * FROM shards_t")
    con.execute("CREATE OR REPLACE TEMP VIEW models AS SELECT * FROM models_t")
    con.execute("CREATE OR REPLACE TEMP VIEW predictions AS SELECT * FROM predictions_t")
    con.execute("CREATE OR REPLACE TEMP VIEW graphs AS SELECT * FROM graphs_t")


def _protocols(fs) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _parquet_view(con: duckdb.DuckDBPyConnection, name: str, files: list[str], columns: list) -> None:
    if files:
        listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        # Only rows arch_index points at: a row recomputed by --retry-failed supersedes the failed one.
        body = (
            f"SELECT * FROM read_parquet([{listing}], union_by_name = true) "
            "SEMI JOIN arch_index USING (space, arch, config_hash, shard_id)"
        )
    else:
        cols = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[str(t)]}) AS {n}" for n, t in columns)
        body = f"SELECT {cols} WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {body}")

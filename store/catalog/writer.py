"""The catalog's one writer: commits shards, records runs, labels, graphs, models and predictions.

Every change of more than one statement goes through `transaction()`, which commits on success and
rolls back on any error, so a reader sees all of a change or none of it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from zcpipe import settings
from zcpipe.store import records, remote
from zcpipe.store.catalog import reconcile as reconciliation
from zcpipe.store.layout import StoreLayout
from zcpipe.store.shards import CorruptShardError, ShardManifest, verify, verify_remote
from zcpipe.store.sql_text import ident

LABEL_COLUMNS = (
    "space", "arch", "label", "dataset", "split", "metric", "epochs", "seed_agg", "detail", "value", "source",
    "source_row",
)  # fmt: skip
MODEL_COLUMNS = (
    "name", "predictor", "space", "config_hash", "target", "train_size", "seed", "n_test",
    "kendall", "spearman", "pearson", "hparams", "metrics", "artifact", "zcpipe_version",
)  # fmt: skip


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CatalogWriter:
    """Writes to one open catalog connection; get one from `Catalog.writer()`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, layout: StoreLayout):
        self.con = con
        self.layout = layout

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN, the caller's statements, COMMIT; ROLLBACK (and re-raise) on any error."""
        self.con.execute("BEGIN")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # ------------------------------------------------------------------ start-up

    def reconcile(self, verify_all: bool = False) -> dict[str, int]:
        """Bring files and catalog into agreement (store/catalog/reconcile.py); returns what it did.
        `verify_all` also re-checks the checksums of every registered shard."""
        return reconciliation.reconcile(self, verify_all)

    # ------------------------------------------------------------------ shards

    def commit(self, manifest: ShardManifest, replace: bool = False) -> Path | str:
        """Verify a staged shard, move it into shards/ and record it, all or nothing. On object storage the
        shard is already at its final prefix: verified and recorded, it becomes visible when the catalog
        is published (the end of this writer's `with` block)."""
        rel = self._place(manifest, "staged shard")
        self.register(manifest, rel, replace)
        return self.layout.uri(rel) if self.layout.remote else self.layout.root / rel

    def _place(self, m: ShardManifest, what: str) -> str:
        """Verify a written shard against the manifest its writer returned and, on a local store, move it
        from staging into shards/ (atomic on one filesystem; a crash after it is finished by reconcile()).
        Returns its store-relative path; nothing is recorded yet."""
        if self.layout.remote:  # already at its final prefix
            rel = self.layout.shard_rel(m.space, m.run_id, m.shard_id)
            if verify_remote(self.layout, rel) != m:
                raise CorruptShardError(f"{what} {self.layout.uri(rel)} does not match its manifest")
            return rel
        staged = self.layout.staged(m.shard_id)
        if verify(staged) != m:
            raise CorruptShardError(f"{what} {staged} does not match its manifest")
        final = self.layout.committed(m.space, m.run_id, m.shard_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(final)
        return final.relative_to(self.layout.root).as_posix()

    def register(self, manifest: ShardManifest, rel: str, replace: bool = False) -> None:
        """Record a shard and point its archs at it. `replace` lets it supersede earlier rows of the same
        archs (a --retry-failed recomputation): views show only the rows arch_index points at. The run that
        wrote it counts it as done in the same transaction, so a run killed later still says what it committed."""
        with self.transaction() as con:
            if replace:
                con.executemany(
                    "DELETE FROM arch_index WHERE space = ? AND arch = ? AND config_hash = ?",
                    [[manifest.space, a, manifest.config_hash] for a in manifest.archs],
                )
            self._insert_shard(manifest, rel)
            con.execute(
                "UPDATE runs_t SET done = done + ? WHERE run_id = ? AND state = 'running'",
                [len(manifest.archs), manifest.run_id],
            )

    def unregister(self, shard_id: str) -> None:
        """Forget a shard (its files are gone or quarantined)."""
        with self.transaction() as con:
            con.execute("DELETE FROM arch_index WHERE shard_id = ?", [shard_id])
            con.execute("DELETE FROM shards_t WHERE shard_id = ?", [shard_id])

    def _insert_shard(self, m: ShardManifest, rel: str) -> None:
        """Record shard `m` at `rel` and point its archs at it (inside the caller's transaction)."""
        self.con.execute(
            "INSERT INTO shards_t VALUES (?, ?, ?, ?, ?, ?, ?)",
            [m.shard_id, m.space, m.run_id, m.config_hash, rel, len(m.archs), _now()],
        )
        self.con.executemany(
            "INSERT INTO arch_index VALUES (?, ?, ?, ?)", [[m.space, a, m.config_hash, m.shard_id] for a in m.archs]
        )

    def committed_archs(self, space: str, config_hash: str) -> set[str]:
        """Arch keys of `space` with a committed row of this configuration."""
        rows = self.con.execute(
            "SELECT arch FROM arch_index WHERE space = ? AND config_hash = ?", [space, config_hash]
        ).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ compaction

    def replace_shards(self, manifests: list[ShardManifest], old: list[str]) -> None:
        """Swap the shards `old` for `manifests` (staged, holding the same rows) in one transaction: readers
        see the old set or the new one. The old shards' files are deleted after the commit; a crash before
        that leaves them in `retired_t`, and the next reconcile deletes them instead of registering them."""
        rels = [self._place(m, "compacted shard") for m in manifests]
        with self.transaction():
            self._retire_rows(old)
            for m, rel in zip(manifests, rels, strict=True):
                self._insert_shard(m, rel)

    def retire(self, shard_ids: list[str]) -> None:
        """Mark shards replaced, in one transaction: the next purge or reconcile deletes their files."""
        with self.transaction():
            self._retire_rows(shard_ids)

    def _retire_rows(self, shard_ids: list[str]) -> None:
        ids = [[s] for s in shard_ids]
        self.con.executemany("INSERT INTO retired_t SELECT shard_id, path, now() FROM shards_t WHERE shard_id = ?", ids)
        self.con.executemany("DELETE FROM arch_index WHERE shard_id = ?", ids)
        self.con.executemany("DELETE FROM shards_t WHERE shard_id = ?", ids)

    def purge_retired(self) -> int:
        """Delete the files of shards that compaction replaced; returns how many. On object storage only
        those retired `settings.SNAPSHOT_GRACE_S` ago or more: a reader on another node may still hold a
        catalog snapshot from before the swap, and reads the old shards until its next snapshot."""
        grace = settings.SNAPSHOT_GRACE_S if self.layout.remote else 0
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

    # ------------------------------------------------------------------ runs

    def start_run(
        self, run_id: str, space: str, config_hash: str, config: dict, planned: int, dataset: str | None = None
    ) -> None:
        """Record a run as `running`; `finish_run` closes it (reconcile marks it `interrupted` if it died)."""
        row = {
            "run_id": run_id, "space": space, "config_hash": config_hash, "config": json.dumps(config, sort_keys=True),
            "started_at": _now(), "finished_at": None, "state": "running", "planned": planned, "done": 0,
            "skipped": 0, "failed": 0, "dataset": dataset,
        }  # fmt: skip
        records.put_json(self.layout, f"runs/{run_id}.json", row)  # the store's own copy (store/records.py)
        self.con.execute(
            f"INSERT INTO runs_t ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )

    def finish_run(self, run_id: str, state: str, done: int, skipped: int, failed: int) -> None:
        """Close a run with its final counts."""
        self.con.execute(
            "UPDATE runs_t SET finished_at = ?, state = ?, done = ?, skipped = ?, failed = ? WHERE run_id = ?",
            [_now(), state, done, skipped, failed, run_id],
        )
        self._rewrite_record("runs_t", run_id, f"runs/{run_id}.json")

    # ------------------------------------------------------------------ labels, graphs

    def import_labels(self, rows: list[dict]) -> int:
        """Replace what each source file gave before with `rows`, in one transaction (all or none land). The
        rows of each (space, source) are first kept as a file in the store (store/records.py)."""
        now = _now()
        table = pa.Table.from_pylist([{**{c: r.get(c) for c in LABEL_COLUMNS}, "imported_at": now} for r in rows])
        for space, source in sorted({(r["space"], r["source"]) for r in rows}):
            mine = pc.and_(pc.equal(table.column("space"), space), pc.equal(table.column("source"), source))
            records.put_table(self.layout, records.label_record(space, source), table.filter(mine))
        self._replace_with(
            table,
            ("DELETE FROM labels_t WHERE (space, source) IN (SELECT DISTINCT space, source FROM incoming)", []),
            f"INSERT INTO labels_t SELECT {', '.join(LABEL_COLUMNS)}, imported_at FROM incoming",
        )
        return len(rows)

    def add_graphs(self, table: pa.Table) -> int:
        """Operator graphs (space, arch, ops, src, dst): what TG-NAS reads instead of statistics. A graph is a
        function of its arch key, so rows already present are kept; returns how many were new."""
        self.con.register("incoming_graphs", table)
        try:
            new = self.con.sql(
                "SELECT DISTINCT ON (space, arch) space, arch, ops, src, dst FROM incoming_graphs "
                "ANTI JOIN graphs_t USING (space, arch) ORDER BY space, arch"
            ).to_arrow_table()
        finally:
            self.con.unregister("incoming_graphs")
        if not new.num_rows:
            return 0
        for space in sorted(set(new.column("space").to_pylist())):  # the store's own copy first
            part = new.filter(pc.equal(new.column("space"), space))
            records.put_table(self.layout, f"graphs/{space}/{records.record_id(*part.column('arch').to_pylist())}"
                              ".parquet", part)  # fmt: skip
        self.con.register("new_graphs", new)
        try:
            self.con.execute("INSERT INTO graphs_t SELECT * FROM new_graphs")
        finally:
            self.con.unregister("new_graphs")
        return new.num_rows

    # ------------------------------------------------------------------ NAS loops

    def start_nas_run(self, row: dict) -> None:
        """Record a NAS run (`nas_runs` columns) as `running`, unless it is recorded already (a resumed run)."""
        row = {**row, "started_at": _now(), "finished_at": None, "state": "running"}
        if self.con.execute("SELECT 1 FROM nas_runs_t WHERE run_id = ?", [row["run_id"]]).fetchall():
            self.con.execute("UPDATE nas_runs_t SET state = 'running' WHERE run_id = ?", [row["run_id"]])
            return
        records.put_json(self.layout, f"nas/{row['run_id']}/run.json", row)
        self.con.execute(
            f"INSERT INTO nas_runs_t ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )

    def finish_nas_run(self, run_id: str, state: str) -> None:
        self.con.execute("UPDATE nas_runs_t SET state = ?, finished_at = ? WHERE run_id = ?", [state, _now(), run_id])
        self._rewrite_record("nas_runs_t", run_id, f"nas/{run_id}/run.json")

    def _rewrite_record(self, table: str, run_id: str, rel: str) -> None:
        """Write a run's catalog row again as its record file (store/records.py), as it stands now."""
        row = self.con.execute(f"SELECT * FROM {ident(table)} WHERE run_id = ?", [run_id])
        names = [d[0] for d in row.description]
        for values in row.fetchall():
            records.put_json(self.layout, rel, dict(zip(names, values, strict=True)))

    def record_nas_queries(self, run_id: str, seed: int, rows: pa.Table) -> None:
        """Replace one seed's query history with `rows` (its whole history so far), file first."""
        records.put_table(self.layout, f"nas/{run_id}/seed-{seed:04d}.parquet", rows)
        self._replace_with(
            rows,
            ("DELETE FROM nas_queries_t WHERE run_id = ? AND seed = ?", [run_id, seed]),
            "INSERT INTO nas_queries_t BY NAME SELECT * FROM incoming",
        )

    # ------------------------------------------------------------------ models, predictions

    def register_model(self, row: dict) -> None:
        """One row of `models`; the artifact folder it names must already be complete."""
        values = [json.dumps(row[c], sort_keys=True) if c in ("hparams", "metrics") else row[c] for c in MODEL_COLUMNS]
        created = _now()
        # The store's own copy, in the model's folder: a rebuilt catalog finds the model there.
        records.put_json(self.layout, f"models/{row['name']}/record.json",
                         {**dict(zip(MODEL_COLUMNS, values, strict=True)), "created_at": created})  # fmt: skip
        self.con.execute(
            f"INSERT INTO models_t ({', '.join(MODEL_COLUMNS)}, created_at) "
            f"VALUES ({', '.join('?' * len(MODEL_COLUMNS))}, ?)",
            [*values, created],
        )

    def model_names(self) -> set[str]:
        """Names of the registered models."""
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
        records.put_table(self.layout, f"predictions/{model}/{space}.parquet", table)  # the store's own copy
        self._replace_with(
            table,
            ("DELETE FROM predictions_t WHERE model = ? AND space = ?", [model, space]),
            "INSERT INTO predictions_t SELECT *, now() FROM incoming",
        )
        return len(archs)

    def _replace_with(self, incoming: pa.Table, delete: tuple[str, list], insert: str) -> None:
        """Register `incoming` as view `incoming`, then run `delete` and `insert` in one transaction."""
        self.con.register("incoming", incoming)
        try:
            with self.transaction() as con:
                con.execute(*delete)
                con.execute(insert)
        finally:
            self.con.unregister("incoming")

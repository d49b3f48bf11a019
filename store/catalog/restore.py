"""Reading the store's own records (store/records.py) back into a catalog that lacks them.

Part of every reconcile, so a catalog that was deleted, or moved aside by `store reconcile --rebuild`
because it was damaged, comes back whole: shards (reconcile.py registers them), label imports, the graphs
they brought, models, their predictions and the runs. Each kind is restored only where the catalog has
none of it (a label source, a model, a run, a model's scores of a space), so running it on a healthy
catalog changes nothing and costs a listing. A record that does not read is skipped, counted and
logged: one damaged file costs that record, not the rebuild.
"""

from __future__ import annotations

import json
import logging

import duckdb
import pyarrow as pa

from zcpipe.store import records
from zcpipe.store.layout import StoreLayout

log = logging.getLogger(__name__)
_UNREADABLE = (OSError, ValueError, KeyError, pa.ArrowException, duckdb.Error)


def restore(con: duckdb.DuckDBPyConnection, layout: StoreLayout) -> dict[str, int]:
    """Insert what the store's records hold and the catalog (`con`, writable) lacks; counts by kind."""
    did = {"labels_restored": 0, "graphs_restored": 0, "models_restored": 0, "predictions_restored": 0,
           "runs_restored": 0, "nas_runs_restored": 0, "records_unreadable": 0}  # fmt: skip
    sources = con.execute("SELECT DISTINCT space, source FROM labels_t").fetchall()
    have = {records.label_record(space, source) for space, source in sources}
    for rel in records.listing(layout, "labels", ".parquet"):
        if rel not in have:
            did["labels_restored"] += _insert_table(con, layout, rel, "labels_t", did)
    before = con.execute("SELECT count(*) FROM graphs_t").fetchall()[0][0]
    for rel in records.listing(layout, "graphs", ".parquet"):
        _insert_table(con, layout, rel, "graphs_t", did, anti=("space", "arch"))
    did["graphs_restored"] = con.execute("SELECT count(*) FROM graphs_t").fetchall()[0][0] - before
    models = {r[0] for r in con.execute("SELECT name FROM models_t").fetchall()}
    for rel in records.listing(layout, "models", "/record.json"):
        if rel.split("/")[1] not in models:
            did["models_restored"] += _insert_row(con, layout, rel, "models_t", did)
    scored = {f"predictions/{m}/{s}.parquet" for m, s in con.execute("SELECT DISTINCT model, space FROM predictions_t")
              .fetchall()}  # fmt: skip
    for rel in records.listing(layout, "predictions", ".parquet"):
        if rel not in scored:
            did["predictions_restored"] += bool(_insert_table(con, layout, rel, "predictions_t", did))
    nas = {r[0] for r in con.execute("SELECT run_id FROM nas_runs_t").fetchall()}
    for rel in records.listing(layout, "nas", "/run.json"):
        run_id = rel.split("/")[1]
        if run_id not in nas:
            did["nas_runs_restored"] += _insert_row(con, layout, rel, "nas_runs_t", did)
            for part in records.listing(layout, f"nas/{run_id}", ".parquet"):
                _insert_table(con, layout, part, "nas_queries_t", did)
    runs = {r[0] for r in con.execute("SELECT run_id FROM runs_t").fetchall()}
    for rel in records.listing(layout, "runs", ".json"):
        if rel.removeprefix("runs/").removesuffix(".json") not in runs:
            did["runs_restored"] += _insert_row(con, layout, rel, "runs_t", did)
    return did


def _insert_table(con, layout, rel: str, table: str, did: dict, anti: tuple[str, ...] = ()) -> int:
    try:
        rows = records.get_table(layout, rel)
        con.register("restored", rows)
        try:
            skip = f" ANTI JOIN {table} USING ({', '.join(anti)})" if anti else ""
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM restored{skip}")
        finally:
            con.unregister("restored")
        return rows.num_rows
    except _UNREADABLE as e:
        _unreadable(rel, e, did)
        return 0


def _insert_row(con, layout, rel: str, table: str, did: dict) -> int:
    try:
        row = records.get_json(layout, rel)
        names = list(row)
        columns = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?",
                                             [table]).fetchall()}  # fmt: skip
        if not names or set(names) - columns:  # a forged key would otherwise become SQL
            raise ValueError(f"fields {sorted(set(names) - columns)[:3]} are no columns of {table}")
        con.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()],
        )
        return 1
    except _UNREADABLE as e:
        _unreadable(rel, e, did)
        return 0


def _unreadable(rel: str, e: BaseException, did: dict) -> None:
    log.warning("skipped the store record %s, which does not read (%s)", rel, str(e).splitlines()[0] if str(e) else e)
    did["records_unreadable"] += 1


def backfill(con: duckdb.DuckDBPyConnection, layout: StoreLayout) -> int:
    """The other way round, for stores written before the records existed: write the record of whatever the
    catalog holds and the store has no file for (label imports, models, predictions, runs; the graphs when no
    graph file exists at all). Returns how many records it wrote."""
    wrote = 0
    have = set(records.listing(layout, "labels", ".parquet"))
    for space, source in con.execute("SELECT DISTINCT space, source FROM labels_t").fetchall():
        if records.label_record(space, source) not in have:
            rows = con.sql("SELECT * FROM labels_t WHERE space = ? AND source = ?", params=[space, source])
            records.put_table(layout, records.label_record(space, source), rows.to_arrow_table())
            wrote += 1
    if not records.listing(layout, "graphs", ".parquet"):
        for (space,) in con.execute("SELECT DISTINCT space FROM graphs_t").fetchall():
            rows = con.sql("SELECT * FROM graphs_t WHERE space = ? ORDER BY arch", params=[space]).to_arrow_table()
            records.put_table(layout, f"graphs/{space}/{records.record_id(*rows.column('arch').to_pylist())}.parquet",
                              rows)  # fmt: skip
            wrote += 1
    for kind, table, key, rel in (("models", "models_t", "name", "models/{}/record.json"),
                                  ("runs", "runs_t", "run_id", "runs/{}.json")):  # fmt: skip
        have = set(records.listing(layout, kind, ".json"))
        rel_of = rel.format
        rel_rows = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in rel_rows.description]
        for values in rel_rows.fetchall():
            row = dict(zip(names, values, strict=True))
            if rel_of(row[key]) not in have:
                records.put_json(layout, rel_of(row[key]), row)
                wrote += 1
    have = set(records.listing(layout, "predictions", ".parquet"))
    for model, space in con.execute("SELECT DISTINCT model, space FROM predictions_t").fetchall():
        if f"predictions/{model}/{space}.parquet" not in have:
            rows = con.sql("SELECT space, arch, model, score, score_std FROM predictions_t WHERE model = ? AND "
                           "space = ?", params=[model, space]).to_arrow_table()  # fmt: skip
            records.put_table(layout, f"predictions/{model}/{space}.parquet", rows)
            wrote += 1
    return wrote

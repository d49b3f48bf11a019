"""What other stages read from the catalog, so that none of them writes SQL against its tables.

Each function takes a `Catalog` and answers one question; rows come back as dicts or Arrow tables.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from zcpipe.store.sql_text import ident


class Catalog(Protocol):
    """What these readers use of `zcpipe.store.catalog.Catalog` (named here so this module need not
    import the package that imports it)."""

    def query(self, sql: str, params: list | None = None) -> pa.Table: ...

    def reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


def configs(catalog: Catalog) -> list[dict[str, Any]]:
    """Per (space, config_hash): its dataset, archs, ok, partial, failed, shards; the largest first in a space."""
    return catalog.query(
        "SELECT space, config_hash, max(dataset) AS dataset, count(*) AS archs, count(*) FILTER (status = 'ok') AS ok, "
        "count(*) FILTER (status = 'partial') AS partial, count(*) FILTER (status = 'failed') AS failed, "
        "count(DISTINCT shard_id) AS shards FROM archs GROUP BY ALL ORDER BY space, archs DESC, config_hash"
    ).to_pylist()


def label_counts(catalog: Catalog) -> list[dict[str, Any]]:
    """Per (space, label): how many architectures have it."""
    return catalog.query(
        "SELECT space, label, count(DISTINCT arch) AS archs FROM labels GROUP BY ALL ORDER BY ALL"
    ).to_pylist()


def label_datasets(catalog: Catalog) -> list[dict[str, Any]]:
    """(space, label, dataset) of every label in the store."""
    return catalog.query("SELECT DISTINCT space, label, dataset FROM labels ORDER BY ALL").to_pylist()


def labels(catalog: Catalog, space: str, archs: list[str] | None = None) -> pa.Table:
    """(arch, label, value) of `space`, repeated measurements averaged; only `archs` where given."""
    if archs is None:
        return catalog.query(
            "SELECT arch, label, avg(value) AS value FROM labels WHERE space = ? GROUP BY ALL", [space]
        )
    wanted = pa.table({"arch": pa.array(archs, pa.string())})
    with catalog.reader() as con:
        con.register("wanted_archs", wanted)
        return con.sql(
            "SELECT arch, label, avg(value) AS value FROM labels SEMI JOIN wanted_archs USING (arch) "
            "WHERE space = ? GROUP BY ALL",
            params=[space],
        ).to_arrow_table()


def labels_of(catalog: Catalog, space: str, arch: str) -> dict[str, float]:
    """Every label of one architecture, averaged over repeated measurements."""
    return {r["label"]: r["value"] for r in labels(catalog, space, [arch]).to_pylist()}


def runs(catalog: Catalog, space: str, config_hash: str | None = None) -> list[dict[str, Any]]:
    """The ingest runs of a space (of one configuration, where given), oldest first."""
    where, params = "space = ?", [space]
    if config_hash is not None:
        where, params = where + " AND config_hash = ?", [*params, config_hash]
    return catalog.query(
        "SELECT run_id, state, planned, done, skipped, failed, started_at::VARCHAR AS started_at, "
        f"finished_at::VARCHAR AS finished_at, config, config_hash, dataset FROM runs WHERE {where} "
        "ORDER BY started_at",
        params,
    ).to_pylist()


def models(catalog: Catalog, space: str | None = None, config_hash: str | None = None) -> list[dict[str, Any]]:
    """Registered models; of `space`, and of statistics `config_hash` or none (graph-only models)."""
    where, params = [], []
    if space is not None:
        where.append("space = ?")
        params.append(space)
    if config_hash is not None:
        where.append("(config_hash = ? OR config_hash IS NULL)")
        params.append(config_hash)
    sql = "SELECT * FROM models" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY name"
    return catalog.query(sql, params).to_pylist()


def predictions(catalog: Catalog, space: str, model: str | None = None) -> pa.Table:
    """(model, arch, score, score_std) of `space`, of one model where given."""
    if model is None:
        return catalog.query("SELECT model, arch, score, score_std FROM predictions WHERE space = ?", [space])
    return catalog.query(
        "SELECT model, arch, score, score_std FROM predictions WHERE space = ? AND model = ?", [space, model]
    )


def layer_means(catalog: Catalog, space: str, config_hash: str, proxy: str) -> list[dict[str, Any]]:
    """Per (slot, op): the mean of a layer proxy across architectures, and how many layers."""
    return catalog.query(
        f"SELECT slot, op, avg({ident(proxy)}) AS mean, count(*) AS n FROM layers "
        "WHERE space = ? AND config_hash = ? GROUP BY ALL",
        [space, config_hash],
    ).to_pylist()


def columns(catalog: Catalog, view: str) -> list[str]:
    """The columns of one view."""
    with catalog.reader() as con:
        return list(con.sql(f"SELECT * FROM {ident(view)} LIMIT 0").columns)


def nas_run(catalog: Catalog, run_id: str) -> dict[str, Any] | None:
    """One NAS run's row of `nas_runs`, or None."""
    rows = catalog.query("SELECT * FROM nas_runs WHERE run_id = ?", [run_id]).to_pylist()
    return rows[0] if rows else None


def nas_runs(catalog: Catalog, space: str | None = None) -> list[dict[str, Any]]:
    """The NAS runs (of `space`, where given), oldest first."""
    where, params = ("WHERE space = ?", [space]) if space else ("", [])
    return catalog.query(f"SELECT * FROM nas_runs {where} ORDER BY started_at, run_id", params).to_pylist()


def nas_queries(catalog: Catalog, run_id: str) -> pa.Table:
    """A NAS run's queries: seed, query (0-based), arch, valid, test, best_valid, proxy_seconds; in order."""
    return catalog.query("SELECT * FROM nas_queries WHERE run_id = ? ORDER BY seed, query", [run_id])

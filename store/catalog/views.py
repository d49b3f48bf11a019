"""The SQL views every reader's connection builds over the store as it lies now.

They are TEMP views: nothing is written to the catalog file, so a copied or moved store (a backup, a
share mounted elsewhere) answers queries, and a read-only one does too.
"""

from __future__ import annotations

import duckdb

from zcpipe.store import shard_cache
from zcpipe.store.layout import StoreLayout
from zcpipe.store.shard_schema import ARCH_COLUMNS, LAYER_COLUMNS
from zcpipe.store.sql_text import ident, literal

# The public views, what `zcpipe sql` is documented to answer over.
VIEWS = ("archs", "layers", "runs", "labels", "archs_labeled", "archs_labeled_any", "shards", "models",
         "predictions", "graphs", "nas_runs", "nas_queries")  # fmt: skip
# Datasets that are no benchmark's task: their statistics pair with every label.
TASK_FREE = ("synthetic", "npz")
_DUCK_TYPES = {
    "string": "VARCHAR",
    "double": "DOUBLE",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "list<item: int32>": "INTEGER[]",
    "map<string, string>": "MAP(VARCHAR, VARCHAR)",
}


def shard_files(con: duckdb.DuckDBPyConnection, layout: StoreLayout) -> list[str]:
    """Local folders holding the committed shards' Parquet files (fetched copies on a remote store)."""
    rels = [r[0] for r in con.execute("SELECT path FROM shards_t ORDER BY committed_at, shard_id").fetchall()]
    where = shard_cache.shard_dirs(layout, rels, ("archs.parquet", "layers.parquet"))
    shard_cache.prune(layout, rels)
    if layout.remote and rels and not shard_cache.enabled():
        # DuckDB reads the shards through the store's fsspec filesystem (its httpfs extension cannot be
        # downloaded here, and fsspec takes every protocol and the AWS_* settings the same way).
        # Connections to one catalog file in one process share a database instance, and its registry.
        if not any(con.filesystem_is_registered(p) for p in _protocols(layout.fs)):
            con.register_filesystem(layout.fs)
    return where


def install_views(con: duckdb.DuckDBPyConnection, layout: StoreLayout) -> list[str]:
    """This connection's views over the store (TEMP: nothing is written to the file); returns the Parquet
    files they read."""
    where = shard_files(con, layout)
    _parquet_view(con, "archs", [f"{d}/archs.parquet" for d in where], ARCH_COLUMNS)
    _parquet_view(con, "layers", [f"{d}/layers.parquet" for d in where], LAYER_COLUMNS)
    con.execute("CREATE OR REPLACE TEMP VIEW runs AS SELECT * FROM runs_t")
    con.execute("CREATE OR REPLACE TEMP VIEW labels AS SELECT * EXCLUDE (imported_at) FROM labels_t")
    # One row per (architecture statistics, label of the same task); filter on `label`, e.g. 'cifar10_valid'.
    # Statistics of a task-free batch (synthetic, a user's npz) or from shards that predate the dataset
    # column pair with every label; `archs_labeled_any` pairs every row with every label.
    pairs = (
        "SELECT a.*, l.label, l.dataset AS label_dataset, l.split, l.metric, l.epochs, l.seed_agg, l.detail, "
        "l.value, l.source, l.source_row FROM archs a JOIN labels l USING (space, arch)"
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW archs_labeled_any AS {pairs}")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW archs_labeled AS {pairs} "
        f"WHERE a.dataset IS NULL OR a.dataset IN ({', '.join(repr(d) for d in TASK_FREE)}) OR a.dataset = l.dataset"
    )
    con.execute("CREATE OR REPLACE TEMP VIEW shards AS SELECT * FROM shards_t")
    con.execute("CREATE OR REPLACE TEMP VIEW models AS SELECT * FROM models_t")
    con.execute("CREATE OR REPLACE TEMP VIEW predictions AS SELECT * FROM predictions_t")
    con.execute("CREATE OR REPLACE TEMP VIEW graphs AS SELECT * FROM graphs_t")
    con.execute("CREATE OR REPLACE TEMP VIEW nas_runs AS SELECT * FROM nas_runs_t")
    con.execute("CREATE OR REPLACE TEMP VIEW nas_queries AS SELECT * FROM nas_queries_t")
    return [f"{d}/{part}" for d in where for part in ("archs.parquet", "layers.parquet")]


def _protocols(fs) -> tuple[str, ...]:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _parquet_view(con: duckdb.DuckDBPyConnection, name: str, files: list[str], columns: list) -> None:
    if files:
        listing = ", ".join(literal(f) for f in files)
        # Only rows arch_index points at: a row recomputed by --retry-failed supersedes the failed one.
        body = (
            f"SELECT * FROM read_parquet([{listing}], union_by_name = true) "
            "SEMI JOIN arch_index USING (space, arch, config_hash, shard_id)"
        )
        # Columns added since older shards were written (e.g. `dataset`) read as NULL there; where no
        # shard has them yet, they are added here so that every view has every column.
        have = {d[0] for d in con.execute(f"SELECT * FROM ({body}) LIMIT 0").description}
        missing = [f"CAST(NULL AS {_DUCK_TYPES[str(t)]}) AS {ident(n)}" for n, t in columns if n not in have]
        if missing:
            body = f"SELECT *, {', '.join(missing)} FROM ({body})"
    else:
        cols = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[str(t)]}) AS {ident(n)}" for n, t in columns)
        body = f"SELECT {cols} WHERE false"
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {body}")

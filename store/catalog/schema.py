"""The catalog's tables, and how a catalog written by an older zcpipe is brought up to them.

Private to the store: other stages read through `store.catalog.readers` and the SQL views.
"""

from __future__ import annotations

import duckdb

from zcpipe.store.sql_text import ident

DDL = """
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
    planned INTEGER, done INTEGER, skipped INTEGER, failed INTEGER, dataset VARCHAR);
CREATE TABLE IF NOT EXISTS models_t (
    name VARCHAR PRIMARY KEY, predictor VARCHAR, space VARCHAR, config_hash VARCHAR, target VARCHAR,
    train_size INTEGER, seed INTEGER, n_test INTEGER, kendall DOUBLE, spearman DOUBLE, pearson DOUBLE,
    hparams JSON, metrics JSON, artifact VARCHAR, zcpipe_version VARCHAR, created_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS graphs_t (
    space VARCHAR, arch VARCHAR, ops VARCHAR[], src SMALLINT[], dst SMALLINT[],
    PRIMARY KEY (space, arch));
CREATE TABLE IF NOT EXISTS retired_t (
    shard_id VARCHAR PRIMARY KEY, path VARCHAR, retired_at TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS nas_runs_t (
    run_id VARCHAR PRIMARY KEY, space VARCHAR, target VARCHAR, algo VARCHAR, features VARCHAR,
    warm_start VARCHAR, guided BOOLEAN, budget INTEGER, seeds INTEGER, pool INTEGER, space_size INTEGER,
    config JSON, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, state VARCHAR);
CREATE TABLE IF NOT EXISTS nas_queries_t (
    run_id VARCHAR, seed INTEGER, query INTEGER, arch VARCHAR, valid DOUBLE, test DOUBLE, best_valid DOUBLE,
    proxy_seconds DOUBLE, PRIMARY KEY (run_id, seed, query));
CREATE TABLE IF NOT EXISTS predictions_t (
    space VARCHAR, arch VARCHAR, model VARCHAR, score DOUBLE, score_std DOUBLE, created_at TIMESTAMPTZ,
    PRIMARY KEY (model, space, arch));
"""
# Views that catalogs written before relocatable stores kept in the file, with absolute paths.
LEGACY_VIEWS = ("archs_labeled", "archs", "layers", "runs", "labels", "shards")


# Columns added to existing tables since their first release: (table, column, type).
ADDED_COLUMNS = (("runs_t", "dataset", "VARCHAR"),)


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """On a writer's connection: create missing tables and columns, drop the views older catalogs stored."""
    con.execute(DDL)
    for table, column, kind in ADDED_COLUMNS:
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
    for view in LEGACY_VIEWS:
        con.execute(f"DROP VIEW IF EXISTS main.{ident(view)}")


def add_missing_tables(con: duckdb.DuckDBPyConnection) -> None:
    """On a read-only connection to an older catalog: stand in empty TEMP tables for newer ones."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    for statement in filter(str.strip, DDL.split(";")):
        name = statement.split("EXISTS", 1)[1].split("(", 1)[0].strip()
        if name not in have:
            con.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))

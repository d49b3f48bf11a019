"""A user's SQL over the store's views: reads only, confined to the store's shard files, bounded in time
and memory.

Three independent walls, so that one gap does not open the store:

1. Statements. Only SELECT runs, and EXPLAIN [ANALYZE] of a SELECT. DuckDB tells a statement's type only
   at its top level, and EXPLAIN ANALYZE *executes* what it wraps, so an EXPLAIN is unwrapped and its
   inner statement checked the same way (recursively). PREPARE, EXECUTE, COPY, ATTACH, SET, PRAGMA,
   CALL and the rest are refused.
2. Files. The connection is read-only, `enable_external_access` is off, and the only files it may open
   are the committed shards' Parquet files, named one by one (`allowed_paths`), then the configuration
   is locked. Even a statement that slipped past (1) could write no file in the store: not a new one,
   not `catalog.duckdb`, `ingest.lock`, a manifest or a model's config.
3. Bounds. A time limit interrupts the query; a memory limit below the machine's makes DuckDB spill to
   a temporary folder outside the store, then fail, instead of taking the machine down.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading

import duckdb
import pyarrow as pa

from zcpipe.errors import InputError, StoreError
from zcpipe.store.catalog.locks import is_damage

# Statements that run as they are; EXPLAIN runs if what it wraps would.
_READ = "SELECT"
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALYZE\s+|ANALYSE\s+|\([^)]*\)\s*)?(?P<inner>.*)$", re.I | re.S)
DEFAULT_TIMEOUT_S = 300.0
# Of the machine's memory; DuckDB's own default is 80 %.
MEMORY_FRACTION = 0.5


class QueryError(StoreError, InputError):
    """A user's SQL failed or was refused (DuckDB's message, first line)."""


class QueryTimeoutError(QueryError):
    """A user's SQL ran past its time limit and was interrupted."""


def first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _candidates(e: BaseException) -> str:
    """DuckDB's own suggestion for a misspelled name ("Candidate bindings: ..." on a later line), if any."""
    for line in str(e).splitlines()[1:]:
        if line.startswith(("Candidate bindings:", "Did you mean")):
            return f" ({line.strip()})"
    return ""


def statement_kinds(con: duckdb.DuckDBPyConnection, sql: str, depth: int = 0) -> list[str]:
    """The kind of every statement in `sql`, an EXPLAIN named with what it wraps (`EXPLAIN COPY`)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(first_line(e)) from None
    kinds = []
    for s in statements:
        kind = s.type.name
        if kind == "EXPLAIN" and depth < 4:
            m = _EXPLAIN.match(s.query)
            inner = statement_kinds(con, m["inner"], depth + 1) if m and m["inner"].strip() else ["?"]
            kind = "EXPLAIN " + " ".join(inner)
        kinds.append(kind)
    return kinds


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse `sql` unless every statement is a SELECT or an EXPLAIN of one."""
    kinds = statement_kinds(con, sql)
    allowed = {_READ, f"EXPLAIN {_READ}"}
    if not kinds or any(k not in allowed for k in kinds):
        raise QueryError(f"only SELECT (and EXPLAIN) statements run here, not {', '.join(kinds) or 'nothing'}")


def memory_limit_bytes() -> int:
    """A memory limit below the machine's: MEMORY_FRACTION of its physical memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(total * MEMORY_FRACTION)


def lock_down(con: duckdb.DuckDBPyConnection, readable: list[str], spill: str, memory_limit: int | None = None) -> None:
    """Walls 2 and 3 on `con`: open only `readable` (files, or folders ending in '/'), spill to `spill`, stay
    under `memory_limit` bytes; then lock the configuration so the query cannot undo any of it."""
    con.execute(f"SET memory_limit = '{int(memory_limit or memory_limit_bytes())}B'")
    con.execute("SET temp_directory = ?", [spill])
    con.execute("SET allowed_paths = ?", [[p for p in readable if not p.endswith("/")]])
    con.execute("SET allowed_directories = ?", [[p for p in readable if p.endswith("/")]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_confined(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    readable: list[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_limit: int | None = None,
) -> pa.Table:
    """Run a user's `sql` on `con` (read-only, views installed) after locking it down to `readable`;
    interrupted after `timeout_s` seconds."""
    check_read_only(con, sql)
    if timeout_s <= 0:
        raise QueryError(f"`timeout` must be positive seconds, not {timeout_s}", options=["timeout"])
    spill = tempfile.mkdtemp(prefix="zcpipe-sql-spill-")
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, interrupt)
    timer.daemon = True
    try:
        lock_down(con, readable, spill, memory_limit)
        timer.start()
        rel = con.sql(sql)
        return pa.table({}) if rel is None else rel.to_arrow_table()
    except (duckdb.Error, RuntimeError) as e:
        if timed_out.is_set():
            raise QueryTimeoutError(
                f"the query ran past its time limit of {timeout_s:g} s and was stopped; narrow it, or raise `timeout`",
                options=["timeout"],
            ) from None
        if isinstance(e, duckdb.Error) and is_damage(e):
            raise  # the catalog's reader names the file and what to do
        raise QueryError(first_line(e) + _candidates(e)) from None
    finally:
        timer.cancel()
        shutil.rmtree(spill, ignore_errors=True)

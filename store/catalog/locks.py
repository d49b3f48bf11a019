"""Who may write: DuckDB's file lock (retried briefly), the one-ingest-per-store lock, and on object
storage the leases that stand in for both."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from zcpipe import settings
from zcpipe.errors import BusyError, CorruptError, StoreError
from zcpipe.store import remote
from zcpipe.store.layout import StoreLayout, is_read_only_error, read_only


class CatalogBusyError(StoreError, BusyError, RuntimeError):
    """Another process holds the catalog or runs an ingest on the store."""


class CatalogDamagedError(StoreError, CorruptError, RuntimeError):
    """The catalog file does not read as a DuckDB database (garbage, cut short, a bad block)."""


# What DuckDB says of a file that is not a database, or of a block that fails its checksum.
_DAMAGE = ("not a valid duckdb database", "corrupt database", "checksum", "serialization error")


def is_damage(e: BaseException) -> bool:
    """Whether a DuckDB error means the catalog file itself is damaged (not a lock, not a bad query)."""
    return isinstance(e, duckdb.Error) and any(m in str(e).lower() for m in _DAMAGE)


def damaged(path: Path | str, e: BaseException) -> CatalogDamagedError:
    return CatalogDamagedError(
        f"the catalog {path} is damaged ({str(e).splitlines()[0]}); rebuilding the catalog from the store "
        "restores it (shards, labels, models and runs are kept as files in the store)"
    )


def _is_lock_error(e: BaseException) -> bool:
    return isinstance(e, duckdb.IOException) and "lock" in str(e).lower() and not is_damage(e)


@retry(
    retry=retry_if_exception(_is_lock_error),
    stop=stop_after_delay(settings.CATALOG_LOCK_RETRY_S),
    wait=wait_exponential(multiplier=0.05, max=1.0),
    reraise=True,
)
def connect(path: Path, read_only: bool, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog file, retried while another process holds its lock; CatalogDamagedError
    when the file is no database."""
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.Error as e:
        if is_damage(e):
            raise damaged(path, e) from None
        raise


def catalog_lease(layout: StoreLayout) -> remote.Lease:
    """The lease a writer of a remote catalog holds while it syncs, writes and publishes."""
    return remote.Lease(
        layout,
        "catalog.lock",
        ttl=settings.CATALOG_LEASE_TTL_S,
        wait=settings.CATALOG_LEASE_WAIT_S,
        what=f"the catalog of {layout}",
    )


@contextmanager
def ingest_lock(layout: StoreLayout) -> Iterator[None]:
    """Held by an ingest for its whole run: start-up reconciliation clears staging/, which must never
    happen under another running ingest. The OS drops the lock if the process dies; on object storage
    the lock is a lease that expires when its holder stops renewing it."""
    if layout.remote:
        with remote.Lease(
            layout, "ingest.lock", ttl=settings.INGEST_LEASE_TTL_S, wait=0, what=f"an ingest on {layout}"
        ):
            yield
        return
    path = layout.root / "ingest.lock"
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        f = path.open("a+")
    except OSError as e:
        if is_read_only_error(e):
            raise read_only(layout, e) from None
        raise
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise CatalogBusyError(f"another ingest ({holder}) is running on {layout.root}") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

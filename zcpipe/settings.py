"""Every environment variable zcpipe reads, and the lifetimes, grace periods and paths it works with.

One place, so that a default is changed once and a deployment knows what it can set. Stages import
these constants; none of them reads the environment itself.
"""

from __future__ import annotations

import os
from pathlib import Path

# ---------------------------------------------------------------- environment variables

# Local cache root: remote stores' working copies and shard copies, op-sentence embeddings.
CACHE_DIR_ENV = "ZCPIPE_CACHE_DIR"
# "0" reads a remote store's Parquet through fsspec instead of verified local copies.
SHARD_CACHE_ENV = "ZCPIPE_SHARD_CACHE"
# Test failpoints: "name=marker-file,..." (workers/failpoints.py).
FAILPOINTS_ENV = "ZCPIPE_FAILPOINTS"


def cache_dir() -> Path:
    """$ZCPIPE_CACHE_DIR, else $XDG_CACHE_HOME/zcpipe, else ~/.cache/zcpipe."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "zcpipe"


def shard_cache_enabled() -> bool:
    return os.environ.get(SHARD_CACHE_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


# ---------------------------------------------------------------- leases and grace periods (object storage)

CATALOG_LEASE_TTL_S = 60  # a catalog writer renews its lease within this
CATALOG_LEASE_WAIT_S = 120  # how long a writer waits for another's catalog lease
INGEST_LEASE_TTL_S = 300  # one ingest per store; a dead one's lease expires after this
# Compaction's replaced shards (and old catalog snapshots) stay this long for readers still on them.
SNAPSHOT_GRACE_S = 600

# ---------------------------------------------------------------- local locks

CATALOG_LOCK_RETRY_S = 60  # a reader or writer retries a DuckDB file lock this long

# ---------------------------------------------------------------- ingest

START_TIMEOUT_S = 600.0  # for the actors to start
STALL_TIMEOUT_S = 3600.0  # for the next chunk to finish
AUTO_COMPACT_SHARDS = 64  # an ingest that leaves this many small shards merges them

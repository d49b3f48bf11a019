"""Store stage: immutable Parquet/Zarr shards plus the DuckDB catalog that indexes them.

Knows nothing of torch models: it takes rows (dicts) and dense float64 blocks.
"""

from zcpipe.store.catalog import Catalog, CatalogBusyError
from zcpipe.store.shards import (
    CorruptShardError,
    ShardManifest,
    TensorBlock,
    read_tensors,
    write_staged_shard,
)

__all__ = [
    "Catalog",
    "CatalogBusyError",
    "CorruptShardError",
    "ShardManifest",
    "TensorBlock",
    "read_tensors",
    "write_staged_shard",
]

"""Store stage: immutable Parquet/Zarr shards plus the DuckDB catalog that indexes them.

Takes rows (dicts) and dense float64 blocks, knows nothing of torch models, and imports no other stage.
Its public face:

- shards: `write_staged_shard`, `read_tensors`, `TensorBlock`, `ShardManifest` (store/shards.py);
- the catalog: `Catalog` (writer, reader, SQL), `readers` (what other stages read instead of SQL on
  the catalog's tables) (store/catalog/);
- readers for training: `tensor_reader` (statistics as dense arrays), `graph_reader` (operator graphs),
  `model_artifacts` (a trained model's folder);
- `compact` (many small shards into a few), `layout` (where things live, local or remote).
"""

from zcpipe.store.catalog import Catalog, CatalogBusyError, QueryError, StoreNotFoundError, readers
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
    "QueryError",
    "ShardManifest",
    "StoreNotFoundError",
    "TensorBlock",
    "read_tensors",
    "readers",
    "write_staged_shard",
]

"""Arrow schemas of the shard tables. Proxy columns are float64 and named by the caller."""

from __future__ import annotations

import pyarrow as pa

ARCH_COLUMNS = [
    ("space", pa.string()),
    ("arch", pa.string()),
    ("arch_spec", pa.string()),  # what builds it, where the key alone does not (NB101's hash)
    ("config_hash", pa.string()),
    ("dataset", pa.string()),  # the task the statistics were computed on (NULL in shards written before)
    ("run_id", pa.string()),
    ("shard_id", pa.string()),
    ("status", pa.string()),  # ok | partial (some proxy NULL) | failed
    ("reason", pa.string()),
    ("null_reasons", pa.map_(pa.string(), pa.string())),
    ("params", pa.float64()),
    ("flops", pa.float64()),
]
ARCH_TAIL = [
    ("proxy_seconds", pa.map_(pa.string(), pa.float64())),
    ("seconds", pa.float64()),
    ("micro_batches", pa.int32()),
    ("device", pa.string()),
    ("node_ip", pa.string()),  # the Ray node that computed the row
    ("node_id", pa.string()),
    ("zcpipe_version", pa.string()),
    ("torch_version", pa.string()),
]
LAYER_COLUMNS = [
    ("space", pa.string()),
    ("arch", pa.string()),
    ("config_hash", pa.string()),
    ("shard_id", pa.string()),
    ("slot", pa.string()),
    ("layer_index", pa.int32()),
    ("op_type", pa.string()),
    ("op", pa.string()),
    ("shape", pa.list_(pa.int32())),
    ("numel", pa.int64()),
    ("params", pa.int64()),
    ("flops", pa.int64()),
]


def _proxy_fields(names: list[str], taken: set[str]) -> list[pa.Field]:
    return [pa.field(n, pa.float64()) for n in names if n not in taken]


def arch_schema(proxy_names: list[str]) -> pa.Schema:
    base = [pa.field(n, t) for n, t in ARCH_COLUMNS]
    tail = [pa.field(n, t) for n, t in ARCH_TAIL]
    return pa.schema(base + _proxy_fields(proxy_names, {f.name for f in base + tail}) + tail)


def layer_schema(proxy_names: list[str]) -> pa.Schema:
    base = [pa.field(n, t) for n, t in LAYER_COLUMNS]
    return pa.schema(base + _proxy_fields(proxy_names, {f.name for f in base}))

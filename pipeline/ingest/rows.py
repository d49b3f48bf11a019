"""Turns the workers' records into the store's rows and dense tensor block."""

from __future__ import annotations

import numpy as np
import torch

from zcpipe.store import TensorBlock
from zcpipe.version import __version__
from zcpipe.workers.proxies import all_proxies
from zcpipe.workers.worker import ArchRecord

# Each weight layer's own counts (`LayerStat` fields, from the count pass), stored as tensors beside the
# layer proxies' values.
LAYER_COUNTS = ("params", "flops")


def layer_proxy_names(proxies: tuple[str, ...]) -> list[str]:
    reg = all_proxies()
    return [p for p in proxies if reg[p].scope == "layer"]


def to_shard(
    records: list[ArchRecord],
    *,
    space: str,
    config_hash: str,
    run_id: str,
    shard_id: str,
    proxies: tuple[str, ...],
    dataset: str | None = None,
    slots: list[str],
    node: tuple[str, str] = (None, None),
) -> tuple[list[dict], list[dict], TensorBlock]:
    layer_proxies = layer_proxy_names(proxies)
    tensor_proxies = [*layer_proxies, *LAYER_COUNTS]
    slot_index = {s: i for i, s in enumerate(slots)}
    values = np.full((len(records), len(tensor_proxies), len(slots)), np.nan)
    mask = np.zeros((len(records), len(slots)), dtype=bool)
    arch_rows, layer_rows = [], []
    for a, rec in enumerate(records):
        st = rec.stats
        row = {
            "space": space,
            "arch": rec.arch,
            "arch_spec": rec.spec,
            "config_hash": config_hash,
            "dataset": dataset,
            "run_id": run_id,
            "shard_id": shard_id,
            "status": rec.status,
            "reason": rec.reason,
            "null_reasons": dict(st.reasons) if st else {},
            "proxy_seconds": dict(st.seconds) if st else {},
            "seconds": rec.seconds,
            "micro_batches": st.micro_batches if st else None,
            "device": rec.device,
            "node_ip": node[0],
            "node_id": node[1],
            "zcpipe_version": __version__,
            "torch_version": torch.__version__,
        }
        for p in proxies:
            row[p] = st.values.get(p) if st else None
        arch_rows.append(row)
        if st is None:
            continue
        for i, layer in enumerate(st.layers):
            layer_rows.append(
                {
                    "space": space,
                    "arch": rec.arch,
                    "config_hash": config_hash,
                    "shard_id": shard_id,
                    "slot": layer.slot,
                    "layer_index": i,
                    "op_type": layer.op_type,
                    "op": layer.op,
                    "shape": layer.shape,
                    "numel": layer.numel,
                    "params": layer.params,
                    "flops": layer.flops,
                    **{p: layer.values.get(p) for p in layer_proxies},
                }
            )
            s = slot_index[layer.slot]
            mask[a, s] = True
            for k, p in enumerate(layer_proxies):
                v = layer.values.get(p)
                values[a, k, s] = np.nan if v is None else v
            for k, name in enumerate(LAYER_COUNTS, start=len(layer_proxies)):
                v = getattr(layer, name)
                values[a, k, s] = np.nan if v is None else v
    block = TensorBlock(archs=[r.arch for r in records], proxies=tensor_proxies, slots=slots, values=values, mask=mask)
    return arch_rows, layer_rows, block

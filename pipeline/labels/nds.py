"""NDS's per-space JSON files (Radosavovic et al.): genotype, width/depth and per-epoch error curves."""

from __future__ import annotations

import json
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.rows import label_row, read_json, source_of
from zcpipe.workers.spaces import SearchSpace


def read_nds_json(space: SearchSpace, path: Path, **_) -> list[dict]:
    """An NDS per-space file: a JSON list of models, each with net.genotype, width/depth and per-epoch
    top-1 *error* curves; stored as accuracy = 100 − error at the last epoch."""
    models = read_json(path)
    source = source_of(path)
    rows = []
    for n, m in enumerate(models):
        try:
            net = m["net"]
            key = space.parse(json.dumps(net["genotype"]))
            curve = m["test_ep_top1"]
        except (KeyError, TypeError) as e:
            raise LabelFormatError(f"{path} model {n} lacks {e} (expected net.genotype and test_ep_top1)") from None
        detail = f"width={net.get('width')},depth={net.get('depth')}"
        rows.append(
            label_row(
                space.name,
                key,
                "cifar10",
                "test",
                100.0 - float(curve[-1]),
                source,
                epochs=len(curve),
                seed_agg="single run",
                detail=detail,
                row=n,
            )
        )
    return rows

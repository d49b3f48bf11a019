"""NDS's per-space JSON files (Radosavovic et al.): genotype, width/depth and per-epoch error curves."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from zcpipe.pipeline.errors import LabelFormatError
from zcpipe.pipeline.labels.formats import LABEL_FORMATS
from zcpipe.pipeline.labels.rows import label_row, read_json, source_of
from zcpipe.workers.spaces import SearchSpace

log = logging.getLogger(__name__)


@LABEL_FORMATS.register("nds-json", pattern="*.json")
def read_nds_json(space: SearchSpace, path: Path, **_) -> list[dict]:
    """An NDS per-space file: a JSON list of models, each with net.genotype, width/depth and per-epoch
    top-1 *error* curves; stored as accuracy = 100 − error at the last epoch."""
    models = read_json(path)
    source = source_of(path)
    rows = []
    sizes: Counter = Counter()
    for n, m in enumerate(models):
        try:
            net = m["net"]
            key = space.parse(json.dumps(net["genotype"]))
            curve = m["test_ep_top1"]
        except (KeyError, TypeError) as e:
            raise LabelFormatError(f"{path} model {n} lacks {e} (expected net.genotype and test_ep_top1)") from None
        detail = f"width={net.get('width')},depth={net.get('depth')}"
        sizes[(net.get("width"), net.get("depth"))] += 1
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
    _say_what_the_networks_were(path, sizes)
    return rows


def _say_what_the_networks_were(path: Path, sizes: Counter) -> None:
    """NDS trained each sample at its own width and depth (kept in each label's `detail`); an ingest builds
    one width and depth for all its architectures, so statistics match these labels only per group."""
    known = {k: v for k, v in sizes.items() if k != (None, None)}
    if not known:
        return
    groups = ", ".join(f"width={w} depth={d} ({n})" for (w, d), n in sorted(known.items(), key=lambda kv: -kv[1]))
    log.warning(
        "%s: NDS trained these networks at %d width/depth pairs (%s); zcpipe builds one width and depth per "
        "ingest, so ingest each group with its own space options, or the statistics describe other networks "
        "than the labelled ones", path, len(known), groups[:300],
    )  # fmt: skip

"""NAS-Bench-Suite-Zero's `zc_<space>.json`: validation accuracies beside its proxy values."""

from __future__ import annotations

from pathlib import Path

from zcpipe.pipeline.labels.formats import LABEL_FORMATS
from zcpipe.pipeline.labels.rows import label_row, read_json, source_of
from zcpipe.workers.spaces import SearchSpace


@LABEL_FORMATS.register("zc-json", pattern="zc_*.json")
def read_zc_json(space: SearchSpace, path: Path, **_) -> list[dict]:
    """NAS-Bench-Suite-Zero `zc_<space>.json`: {dataset: {arch: {"val_accuracy": ..., proxy: {...}}}}."""
    data = read_json(path)
    source = source_of(path)
    rows = []
    for dataset, archs in data.items():
        for arch_text, rec in archs.items():
            if "val_accuracy" in rec:
                rows.append(
                    label_row(
                        space.name,
                        space.parse(arch_text),
                        dataset,
                        "valid",
                        rec["val_accuracy"],
                        source,
                        seed_agg="NAS-Bench-Suite-Zero",
                    )
                )
    return rows

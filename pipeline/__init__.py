"""Pipeline stage: the only stage that wires the others (workers, store, predictors) together.

    ingest/     plans a run, drives Ray actors that run the workers, commits their shards
    labels/     reads benchmark files (one module per format) into label rows and graphs
    training/   fits, evaluates, predicts, the top-k, sweeps and searches on Ray Tune, the pruning search
    reports/    the numbers of a report and its HTML page
    store_ops   what the CLI asks of a store (SQL, info, reconcile, compaction)
    catalogue   the registered spaces, proxies and predictors

`zcpipe.pipeline.ingest.ingest` runs an ingest (the subpackage holds the name `ingest`). The names below
are the rest of its public face; each is imported on first use, so `import zcpipe.pipeline`
stays cheap (no torch or Ray until a stage is used).
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ConfigError": "zcpipe.pipeline.errors",
    "IngestConfig": "zcpipe.pipeline.ingest.config",
    "IngestSummary": "zcpipe.pipeline.ingest.driver",
    "import_labels": "zcpipe.pipeline.labels.importer",
    "TrainConfig": "zcpipe.pipeline.training.config",
    "parse_hparams": "zcpipe.pipeline.training.config",
    "parse_pairs": "zcpipe.pipeline.options",
    "train": "zcpipe.pipeline.training.fit",
    "evaluate": "zcpipe.pipeline.training.evaluate",
    "predict": "zcpipe.pipeline.training.evaluate",
    "top_k": "zcpipe.pipeline.training.topk",
    "prune_search": "zcpipe.pipeline.training.prune",
    "SweepConfig": "zcpipe.pipeline.training.sweeps",
    "run_sweep": "zcpipe.pipeline.training.sweeps",
    "run_hpo": "zcpipe.pipeline.training.sweeps",
    "build_report": "zcpipe.pipeline.reports.numbers",
    "write_report": "zcpipe.pipeline.reports.page",
    "store_ops": "zcpipe.pipeline",
    "catalogue": "zcpipe.pipeline",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'zcpipe.pipeline' has no attribute {name!r}")
    if _PUBLIC[name] == __name__:  # a submodule
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)

"""Ingest: takes an `IngestConfig`, gives committed shards of node-wise statistics and an `IngestSummary`.

    config.py    the validated configuration and its value hash
    plan.py      which architectures a run covers
    runtime.py   starting or joining Ray; sizing actors and checking the cluster can place them
    actors.py    the Ray actor around a workers.ProxyWorker, staging one shard per chunk
    rows.py      worker records into shard rows and tensor blocks
    driver.py    plan, skip what is committed, fan chunks out, commit, bound every wait

The driver's names are imported on first use, so reading the configuration (the CLI does, to build its
options) imports neither torch nor Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.ingest.config import IngestConfig

__all__ = ["ConfigError", "IngestConfig", "IngestSummary", "ingest"]


def __getattr__(name: str) -> Any:
    if name in ("IngestSummary", "ingest"):
        return getattr(importlib.import_module("zcpipe.pipeline.ingest.driver"), name)
    raise AttributeError(f"module 'zcpipe.pipeline.ingest' has no attribute {name!r}")

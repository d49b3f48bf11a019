"""Ingest: takes an `IngestConfig`, gives committed shards of node-wise statistics and an `IngestSummary`.

    config.py    the validated configuration and its value hash
    plan.py      which architectures a run covers
    runtime.py   starting or joining Ray; sizing actors and checking the cluster can place them
    actors.py    the Ray actor around a workers.ProxyWorker, staging one shard per chunk
    rows.py      worker records into shard rows and tensor blocks
    driver.py    plan, skip what is committed, fan chunks out, commit, bound every wait
"""

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.ingest.config import IngestConfig
from zcpipe.pipeline.ingest.driver import IngestSummary, ingest

__all__ = ["ConfigError", "IngestConfig", "IngestSummary", "ingest"]

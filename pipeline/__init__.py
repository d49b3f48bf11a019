"""Pipeline stage: plans runs, drives Ray actors, commits shards. The only stage that wires the others."""

from zcpipe.pipeline.config import ConfigError, IngestConfig
from zcpipe.pipeline.ingest import IngestSummary, ingest

__all__ = ["ConfigError", "IngestConfig", "IngestSummary", "ingest"]

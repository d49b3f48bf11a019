"""The pipeline stage's errors (zcpipe.errors has the family they belong to)."""

from __future__ import annotations

from zcpipe.errors import InputError, NotFoundError, PipelineError


class ConfigError(PipelineError, InputError, ValueError):
    """An option of an ingest, a fit or a sweep is invalid; `options` names the fields."""


class ClusterTooSmallError(PipelineError, InputError, ValueError):
    """The Ray cluster cannot place every planned actor; waiting would wait forever."""


class IngestStalledError(PipelineError, RuntimeError):
    """No chunk finished (or no actor started) within the configured bound."""


class ChunkLostError(PipelineError, RuntimeError):
    """A chunk's actor died more often than the driver retries it."""


class LabelFormatError(PipelineError, InputError, ValueError):
    """A label file does not read as the format it was taken for."""


class LabelFileNotFoundError(PipelineError, NotFoundError, FileNotFoundError):
    """The label file to import does not exist."""


class ReportError(PipelineError, InputError, ValueError):
    """The store lacks what a report needs (statistics of the space, the asked-for label)."""

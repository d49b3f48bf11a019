"""One error family. Every error zcpipe raises on purpose is a `ZcpipeError`: one subclass per stage
and one per kind, so the CLI can turn any of them into one line with the fix, and let anything else
(a bug) keep its traceback.

Messages say what is wrong in the library's words. A setting is named by its config field in
backticks (`` `batch_size` ``) and listed in `options`; the CLI renders it as its flag (`--batch-size`).
"""

from __future__ import annotations

from collections.abc import Sequence


class ZcpipeError(Exception):
    """Base of every deliberate zcpipe error; `options` are the config fields the message names."""

    def __init__(self, message: str = "", *, options: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.options = tuple(options)


# ---------------------------------------------------------------- kinds: how the CLI answers


class InputError(ZcpipeError):
    """The input is invalid: an option, an architecture, a file's format."""


class NotFoundError(ZcpipeError):
    """Something named does not exist: a store, a model, a dataset, a file."""


class BusyError(ZcpipeError):
    """Another process holds what this one needs (a lock or a lease); waiting or retrying helps."""


class CorruptError(ZcpipeError):
    """Data on disk fails its checks."""


# ---------------------------------------------------------------- stages: where it was raised


class WorkersError(ZcpipeError):
    """Raised by zcpipe.workers (spaces, proxies, data)."""


class StoreError(ZcpipeError):
    """Raised by zcpipe.store (shards, catalog, remote stores)."""


class PredictorError(ZcpipeError):
    """Raised by zcpipe.predictors."""


class PipelineError(ZcpipeError):
    """Raised by zcpipe.pipeline (ingest, labels, training, reports)."""

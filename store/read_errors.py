"""The error the store's readers raise when they cannot give what was asked; its own module so both
readers (statistics and graphs) import it without importing each other."""

from __future__ import annotations

from zcpipe.errors import InputError, StoreError


class TrainingDataError(StoreError, InputError, ValueError):
    """The store cannot give what was asked (no statistics, no such label or config); says what to do."""

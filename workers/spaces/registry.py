"""The search-space registry: `@SPACES.register(name)` on a factory whose keyword arguments are the
space's options (`zcpipe spaces` lists them)."""

from __future__ import annotations

from collections.abc import Callable

from zcpipe.errors import InputError, WorkersError
from zcpipe.registry import Registry
from zcpipe.workers.spaces.base import SearchSpace


class UnknownSpaceError(WorkersError, InputError, ValueError):
    """No space is registered under that name; the message names the choices."""


SPACES: Registry[Callable[..., SearchSpace]] = Registry("space", error=UnknownSpaceError, option="space")

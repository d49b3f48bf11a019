"""Search-space registry: spaces are registered by explicit name and built on demand."""

from __future__ import annotations

from collections.abc import Callable

from zcpipe.workers.spaces.base import (
    ArchError,
    ArchGraph,
    BuildOptions,
    SearchSpace,
    connects,
    tag,
    unique_indices,
    weight_layers,
)
from zcpipe.workers.spaces.registry import SPACES, UnknownSpaceError


def _load_builtin() -> None:
    # Imported on the first look-up, not at package import, so `import zcpipe.workers.spaces` stays cheap.
    from zcpipe.workers.spaces import nb101, nb201, nds  # noqa: F401


SPACES.set_loader(_load_builtin)


def available_spaces() -> list[str]:
    """Names of the registered search spaces."""
    return SPACES.names()


def space_factory(name: str) -> Callable[..., SearchSpace]:
    """The builder registered as `name` (its keyword arguments are the space's options)."""
    return SPACES.get(name)


def get_space(name: str, **params: object) -> SearchSpace:
    """The space registered as `name`, built with its parameters; UnknownSpaceError names the choices."""
    return SPACES.get(name)(**params)


__all__ = [
    "SPACES",
    "ArchError",
    "ArchGraph",
    "BuildOptions",
    "SearchSpace",
    "UnknownSpaceError",
    "available_spaces",
    "connects",
    "get_space",
    "space_factory",
    "tag",
    "unique_indices",
    "weight_layers",
]

"""Search-space registry: spaces are registered by explicit name and built on demand."""

from __future__ import annotations

from collections.abc import Callable

from zcpipe.errors import InputError, WorkersError
from zcpipe.workers.spaces.base import (
    ArchError,
    ArchGraph,
    BuildOptions,
    SearchSpace,
    connects,
    tag,
    weight_layers,
)

_FACTORIES: dict[str, Callable[..., SearchSpace]] = {}


def register_space(name: str) -> Callable[[Callable[..., SearchSpace]], Callable[..., SearchSpace]]:
    """Decorator registering a space factory under `name`."""
    def deco(factory: Callable[..., SearchSpace]) -> Callable[..., SearchSpace]:
        if name in _FACTORIES:
            raise ValueError(f"space {name!r} registered twice")
        _FACTORIES[name] = factory
        return factory

    return deco


class UnknownSpaceError(WorkersError, InputError, ValueError):
    """No space is registered under that name; the message names the choices."""


def _load_builtin() -> None:
    # Imported here, not at package import, so `import zcpipe.workers.spaces` stays cheap.
    from zcpipe.workers.spaces import nb101, nb201, nds  # noqa: F401


def available_spaces() -> list[str]:
    """Names of the registered search spaces."""
    _load_builtin()
    return sorted(_FACTORIES)


def space_factory(name: str) -> Callable[..., SearchSpace]:
    """The builder registered as `name` (its keyword arguments are the space's options)."""
    _load_builtin()
    if name not in _FACTORIES:
        raise UnknownSpaceError(f"unknown space {name!r}; choose one of: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name]


def get_space(name: str, **params: object) -> SearchSpace:
    """The space registered as `name`, built with its parameters; UnknownSpaceError names the choices."""
    _load_builtin()
    if name not in _FACTORIES:
        raise UnknownSpaceError(f"unknown space {name!r}; choose one of: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name](**params)


__all__ = [
    "ArchError",
    "ArchGraph",
    "BuildOptions",
    "SearchSpace",
    "UnknownSpaceError",
    "available_spaces",
    "connects",
    "get_space",
    "register_space",
    "space_factory",
    "tag",
    "weight_layers",
]

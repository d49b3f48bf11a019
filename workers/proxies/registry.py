"""Proxy registry: each measure module registers one `Proxy` subclass under its name."""

from __future__ import annotations

from collections.abc import Callable

from zcpipe.workers.proxies.base import Need, PassName, Proxy, Scope

_REGISTRY: dict[str, Proxy] = {}


def register_proxy(
    name: str, *, scope: Scope, pass_name: PassName, needs: tuple[Need, ...] = (), version: str = "1"
) -> Callable[[type[Proxy]], type[Proxy]]:
    """Class decorator declaring a proxy's execution policy (cf. zero-cost-nas's `@measure`)."""

    def deco(cls: type[Proxy]) -> type[Proxy]:
        if name in _REGISTRY:
            raise ValueError(f"proxy {name!r} registered twice")
        inst = cls()
        inst.name, inst.scope, inst.pass_name, inst.needs, inst.version = (
            name,
            scope,
            pass_name,
            needs,
            version,
        )
        _REGISTRY[name] = inst
        return cls

    return deco


def registry() -> dict[str, Proxy]:
    return _REGISTRY

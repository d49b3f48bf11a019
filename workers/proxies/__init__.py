"""Zero-cost proxies, one module per measure, looked up by name."""

from __future__ import annotations

from zcpipe.workers.proxies.base import Batch, LayerScores, Proxy, ProxyContext, ProxyUndefined
from zcpipe.workers.proxies.registry import PROXIES, UnknownProxyError
from zcpipe.workers.proxy_sets import DEFAULT_PROXIES, ZC_NAS_PROXIES


def _load_builtin() -> None:
    from zcpipe.workers.proxies import (  # noqa: F401
        az_nas,
        counts,
        epe_nas,
        fisher,
        grad_norm,
        grasp,
        jacov,
        l2_norm,
        meco,
        nwot,
        plain,
        snip,
        swap,
        synflow,
        zen,
        zico,
    )


PROXIES.set_loader(_load_builtin)


def all_proxies() -> dict[str, Proxy]:
    """Every registered proxy by name (the built-in measures loaded on first use)."""
    return {name: cls() for name, cls in PROXIES.entries()}


def get_proxies(names: list[str] | tuple[str, ...]) -> list[Proxy]:
    """The proxies named, in order; UnknownProxyError names the choices."""
    return [PROXIES.get(n)() for n in names]


__all__ = [
    "DEFAULT_PROXIES",
    "PROXIES",
    "ZC_NAS_PROXIES",
    "Batch",
    "LayerScores",
    "Proxy",
    "ProxyContext",
    "ProxyUndefined",
    "UnknownProxyError",
    "all_proxies",
    "get_proxies",
]

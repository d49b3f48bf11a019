"""Zero-cost proxies, one module per measure, looked up by name."""

from __future__ import annotations

from zcpipe.errors import InputError, WorkersError
from zcpipe.workers.proxies.base import Batch, LayerScores, Proxy, ProxyContext, ProxyUndefined
from zcpipe.workers.proxies.registry import registry
from zcpipe.workers.proxy_sets import DEFAULT_PROXIES, ZC_NAS_PROXIES


def _load_builtin() -> None:
    from zcpipe.workers.proxies import (  # noqa: F401
        counts,
        epe_nas,
        fisher,
        grad_norm,
        grasp,
        jacov,
        l2_norm,
        nwot,
        plain,
        snip,
        synflow,
        zen,
    )


class UnknownProxyError(WorkersError, InputError, ValueError):
    """No proxy is registered under that name; the message names the choices."""


def all_proxies() -> dict[str, Proxy]:
    """Every registered proxy by name (the built-in measures loaded on first use)."""
    _load_builtin()
    return dict(registry())


def get_proxies(names: list[str] | tuple[str, ...]) -> list[Proxy]:
    """The proxies named, in order; UnknownProxyError names the choices."""
    reg = all_proxies()
    unknown = [n for n in names if n not in reg]
    if unknown:
        raise UnknownProxyError(f"unknown proxy {', '.join(unknown)}; choose from: {', '.join(sorted(reg))}")
    return [reg[n] for n in names]


__all__ = [
    "DEFAULT_PROXIES",
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

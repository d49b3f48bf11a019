"""The registered spaces, proxies and predictors, for `zcpipe spaces|proxies|predictors`."""

from __future__ import annotations


def spaces() -> list[str]:
    """Names of the registered search spaces."""
    from zcpipe.workers.spaces import available_spaces

    return available_spaces()


def proxies() -> list[tuple[str, str, str]]:
    """(name, scope, pass) of every registered proxy, by name."""
    from zcpipe.workers.proxies import all_proxies

    return [(name, p.scope, p.pass_name) for name, p in sorted(all_proxies().items())]


def predictors() -> list[tuple[str, str, dict]]:
    """(name as typed, summary, options and defaults) of every registered predictor."""
    from zcpipe.predictors import available_predictors

    out = []
    for info in available_predictors():
        name = "proxy:<name>" if info.name == "proxy" else info.name
        out.append((name, info.summary, {} if info.name == "proxy" else dict(info.cls.defaults or {})))
    return out

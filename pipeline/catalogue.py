"""The registered spaces, proxies and predictors, for `zcpipe spaces|proxies|predictors`."""

from __future__ import annotations


def spaces() -> list[tuple[str, dict]]:
    """(name, options and their defaults) of every registered search space."""
    import inspect

    from zcpipe.workers.spaces import available_spaces, space_factory

    out = []
    for name in available_spaces():
        params = inspect.signature(space_factory(name)).parameters.values()
        out.append((name, {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}))
    return out


def datasets() -> list[tuple[str, int, tuple[int, int, int], bool]]:
    """(name, classes, input shape, needs files) of every registered dataset (0s: the pack says)."""
    from zcpipe.workers.datasets import available_datasets, get_dataset

    return [(d.name, d.num_classes, d.input_shape, d.needs_root) for d in map(get_dataset, available_datasets())]


def proxies() -> list[tuple[str, str, str]]:
    """(name, scope, pass) of every registered proxy, by name."""
    from zcpipe.workers.proxies import all_proxies

    return [(name, p.scope, p.pass_name) for name, p in sorted(all_proxies().items())]


def predictors() -> list[tuple[str, str, dict]]:
    """(name as typed, summary, options and defaults) of every registered predictor."""
    from zcpipe.predictors import available_predictors

    out = []
    for cls in available_predictors():
        name = "proxy:<name>" if cls.name == "proxy" else cls.name
        out.append((name, cls.summary, {} if cls.name == "proxy" else dict(cls.defaults or {})))
    return out

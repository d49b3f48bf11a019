"""Datasets for the minibatch data-dependent proxies read, registered by name like spaces and proxies.

Each module declares one dataset: its class count, input shape, the benchmark's own normalisation and
readers of the files people have on disk (or, for generated ones, the generator). `get_dataset(name)`
gives it; `Dataset.batch(root, n, seed)` a seeded, normalised minibatch. A missing or malformed file is
a `DatasetError` that says how to get it, never a fallback.

    cifar10            CIFAR-10: official cifar-10-batches-py/ or an .npz pack
    cifar100           CIFAR-100 (fine labels): official cifar-100-python/ or an .npz pack
    imagenet16-120     NAS-Bench-201's downsampled ImageNet (16x16), its 120 classes
    synthetic          a Gaussian batch with random labels: the data-free control
    synthetic-cifar10  Dey et al. 2021's Synthetic CIFAR-10: Gaussian images labelled by 10 random networks
    npz                any .npz pack of images (N×H×W×C) and integer labels: a user's own task
"""

from __future__ import annotations

from zcpipe.workers.datasets.base import Dataset, DatasetError, register_dataset, registry

_BUILTIN = ("cifar10", "cifar100", "imagenet16", "synthetic", "synthetic_cifar10", "npz")


def _load_builtin() -> None:
    import importlib

    for module in _BUILTIN:
        importlib.import_module(f"zcpipe.workers.datasets.{module}")


def available_datasets() -> list[str]:
    """Names of the registered datasets."""
    _load_builtin()
    return sorted(registry())


def get_dataset(name: str) -> Dataset:
    """The dataset registered as `name`; DatasetError names the choices."""
    _load_builtin()
    if name not in registry():
        raise DatasetError(
            f"`data` {name!r} is not supported; choose one of: {', '.join(sorted(registry()))}", options=["data"]
        )
    return registry()[name]


__all__ = ["Dataset", "DatasetError", "available_datasets", "get_dataset", "register_dataset"]

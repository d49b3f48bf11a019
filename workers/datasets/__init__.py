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

from zcpipe.workers.datasets.base import DATASETS, Dataset, DatasetError


def _load_builtin() -> None:
    from zcpipe.workers.datasets import cifar10, cifar100, imagenet16, npz, synthetic, synthetic_cifar10  # noqa: F401


DATASETS.set_loader(_load_builtin)


def available_datasets() -> list[str]:
    """Names of the registered datasets."""
    return DATASETS.names()


def get_dataset(name: str) -> Dataset:
    """The dataset registered as `name`; DatasetError names the choices."""
    return DATASETS.get(name)()


__all__ = ["DATASETS", "Dataset", "DatasetError", "available_datasets", "get_dataset"]

"""The minibatch data-dependent proxies read, from a registered dataset (workers/datasets/).

`load_batch(DataSpec(name, root, batch_size, seed))` gives the normalised images, labels and class count;
`batch_sha256` the content hash that enters the configuration hash; `to_batch` the engine's `Batch`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from zcpipe.workers.datasets import DatasetError, available_datasets, get_dataset
from zcpipe.workers.proxies.base import Batch


@dataclass(frozen=True)
class DataSpec:
    """Which minibatch: the dataset's name and root, the batch size, and the seed of the draw. Checked
    here, where it is built (the ingest builds it from its configuration: `IngestConfig.data_spec`)."""

    name: str
    root: str | None
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        get_dataset(self.name)  # DatasetError names the choices
        if self.batch_size < 1:
            raise DatasetError(f"`batch_size` must be positive, got {self.batch_size}", options=["batch_size"])


def load_batch(spec: DataSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """(images float32 N×C×H×W normalised, labels int64, num_classes) for `spec`, on the CPU."""
    return get_dataset(spec.name).batch(spec.root, spec.batch_size, spec.seed)


def batch_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """The content hash of a batch (images and labels), as the configuration hash records it."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def to_batch(images: np.ndarray, labels: np.ndarray, num_classes: int, device: str | torch.device) -> Batch:
    """The engine's `Batch` on `device`."""
    return Batch(
        images=torch.from_numpy(images).to(device),
        labels=torch.from_numpy(labels).to(device),
        num_classes=num_classes,
        sha256=batch_sha256(images, labels),
    )


DATASETS = tuple(available_datasets())

__all__ = ["DATASETS", "DataSpec", "DatasetError", "batch_sha256", "load_batch", "to_batch"]

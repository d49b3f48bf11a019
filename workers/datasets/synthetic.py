"""A Gaussian batch with uniformly random labels: the data-free control (no file needed)."""

from __future__ import annotations

import numpy as np

from zcpipe.workers.datasets.base import DATASETS, Dataset


@DATASETS.register("synthetic", num_classes=10, input_shape=(3, 32, 32), needs_root=False)
class Gaussian(Dataset):
    def batch(self, root: str | None, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
        rng = np.random.default_rng(seed)
        images = rng.standard_normal((n, *self.input_shape), dtype=np.float32)
        labels = rng.integers(0, self.num_classes, n).astype(np.int64)
        return images, labels, self.num_classes

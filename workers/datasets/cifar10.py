"""CIFAR-10 (Krizhevsky 2009): the official python batches or an .npz pack; NAS-Bench-201's normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zcpipe.workers.datasets.base import DATASETS, Dataset, DatasetError
from zcpipe.workers.datasets.files import pack_or_none, read_pickled_images

GET = (
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it there, "
    "or pass an .npz pack with uint8 `images` (N×32×32×3) and `labels`"
)
WHAT = "an official CIFAR-10 python batch"


# mean [125.3, 123.0, 113.9] / 255 and std [63.0, 62.1, 66.7] / 255, as NAS-Bench-201 trains.
@DATASETS.register(
    "cifar10", num_classes=10, input_shape=(3, 32, 32),
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), how_to_get=GET,
)  # fmt: skip
class Cifar10(Dataset):
    def read(self, root: str) -> tuple[np.ndarray, np.ndarray]:
        path = Path(root).expanduser()
        if (pack := pack_or_none(path, GET, (32, 32, 3), 10)) is not None:
            return pack
        folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        if not all(f.is_file() for f in files):
            raise DatasetError(f"CIFAR-10 not found at {path}: expected cifar-10-batches-py/data_batch_1..5; {GET}")
        parts = [read_pickled_images(f, WHAT, GET, "labels", 32) for f in files]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

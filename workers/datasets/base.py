"""What a dataset declares, and the seeded, normalised draw every image dataset shares."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zcpipe.errors import InputError, WorkersError
from zcpipe.registry import Registry


class DatasetError(WorkersError, InputError, ValueError):
    """The dataset is missing or malformed; the message says how to fix it."""


class Dataset:
    """One task's data, declared where its class is registered (`DATASETS.register`): `num_classes`,
    `input_shape` (C, H, W), the benchmark's per-channel `mean` and `std` (of pixels in [0, 1]),
    `needs_root`, `how_to_get`; and how to get images: `read(root)` gives every image of the files at
    `root` as uint8 N×H×W×C with int64 labels. Generated datasets override `batch` instead."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    needs_root: bool
    how_to_get: str

    def read(self, root: str) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def batch(self, root: str | None, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
        """`n` images drawn with `seed` (in file order), normalised, as float32 N×C×H×W; labels; class count."""
        if self.needs_root and not root:
            raise DatasetError(
                f"`data` {self.name} needs `data_root`: {self.how_to_get}", options=["data", "data_root"]
            )
        images, labels = self.read(root)
        if len(images) < n:
            raise DatasetError(
                f"{root} holds {len(images)} images, fewer than `batch_size` {n}", options=["batch_size"]
            )
        pick = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
        return normalise(images[pick], self.mean, self.std), labels[pick].astype(np.int64), self.num_classes


def normalise(images: np.ndarray, mean, std) -> np.ndarray:
    """uint8 N×H×W×C to float32 N×C×H×W, standardised per channel."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


Reader = Callable[[str], tuple[np.ndarray, np.ndarray]]


DATASETS: Registry[type[Dataset]] = Registry(
    "dataset",
    error=DatasetError,
    attrs={"num_classes": 0, "input_shape": (0, 0, 0), "mean": (), "std": (), "needs_root": True, "how_to_get": ""},
    option="data",
)

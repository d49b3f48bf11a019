"""Any task of one's own, as an .npz pack: `images` N×H×W×C (uint8 pixels, or floats used as they are)
and integer `labels`. The class count is the pack's `num_classes` where it states one, else the largest
label plus one; the per-channel normalisation the pack's `mean` and `std` (of pixels in [0, 1]) where
given, else computed from its images. Single-channel 2-D signals work as well as photographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zcpipe.workers.datasets.base import DATASETS, Dataset, DatasetError
from zcpipe.workers.datasets.files import read_pack

GET = "pass an .npz pack with `images` (N×H×W×C) and integer `labels` (optionally `num_classes`, `mean`, `std`)"


# Class count and input shape are the pack's own; these are placeholders the batch overrides.
@DATASETS.register("npz", num_classes=0, input_shape=(0, 0, 0), how_to_get=GET)
class Pack(Dataset):
    def batch(self, root: str | None, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
        if not root:
            raise DatasetError(f"`data` npz needs `data_root`: {GET}", options=["data", "data_root"])
        pack = read_pack(Path(root).expanduser(), GET)
        images, labels = pack["images"], pack["labels"].astype(np.int64)
        classes = int(pack["num_classes"]) if "num_classes" in pack else int(labels.max()) + 1
        if labels.max() >= classes:
            raise DatasetError(f"{root}: a label is {labels.max()}, beyond `num_classes` {classes}")
        if len(images) < n:
            raise DatasetError(
                f"{root} holds {len(images)} images, fewer than `batch_size` {n}", options=["batch_size"]
            )
        x = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
        mean = pack["mean"] if "mean" in pack else x.mean(axis=(0, 1, 2))
        std = pack["std"] if "std" in pack else x.std(axis=(0, 1, 2))
        pick = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
        z = (x[pick] - np.asarray(mean, np.float32)) / np.maximum(np.asarray(std, np.float32), 1e-12)
        return np.ascontiguousarray(z.transpose(0, 3, 1, 2)), labels[pick], classes

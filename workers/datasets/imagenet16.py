"""ImageNet16-120: NAS-Bench-201's downsampled ImageNet (Chrabaszcz et al. 2017) at 16×16, restricted to
the 120 classes NAS-Bench-201 trains on.

The files are the benchmark's own: `train_data_batch_1..10` and `val_data`, each a pickled dict whose
`data` holds rows of 3×16×16 pixels (channel-major) and `labels` the ImageNet class, 1-based. NAS-Bench-201
(xautodl's `ImageNet16(..., use_num_of_class_only=120)`) keeps the images whose label L is 1 <= L <= 120
and trains on L - 1; so does this reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zcpipe.workers.datasets.base import DATASETS, Dataset, DatasetError
from zcpipe.workers.datasets.files import pack_or_none, read_pickled_images

CLASSES = 120
GET = (
    "get NAS-Bench-201's ImageNet16 folder (train_data_batch_1..10, val_data; see the NAS-Bench-201 README) "
    "and pass it, or an .npz pack with uint8 `images` (N×16×16×3) and `labels` 0..119"
)
WHAT = "a NAS-Bench-201 ImageNet16 batch file"
TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))


# mean [122.68, 116.66, 104.01] / 255 and std [63.22, 61.26, 65.09] / 255, as NAS-Bench-201 trains.
@DATASETS.register(
    "imagenet16-120", num_classes=CLASSES, input_shape=(3, 16, 16),
    mean=(0.48110, 0.45749, 0.40788), std=(0.24792, 0.24024, 0.25525), how_to_get=GET,
)  # fmt: skip
class ImageNet16(Dataset):
    def read(self, root: str) -> tuple[np.ndarray, np.ndarray]:
        path = Path(root).expanduser()
        if (pack := pack_or_none(path, GET, (16, 16, 3), CLASSES)) is not None:
            return pack
        folder = path / "ImageNet16" if (path / "ImageNet16").is_dir() else path
        files = [folder / name for name in TRAIN_FILES]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DatasetError(f"ImageNet16 not found at {path}: missing {', '.join(missing[:3])}; {GET}")
        parts = [read_batch(f) for f in files]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def read_batch(path: Path, classes: int = CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """One file's images of the first `classes` classes (N×16×16×3 uint8) and their 0-based labels."""
    images, labels = read_pickled_images(path, WHAT, GET, "labels", 16, encoding="latin1")
    keep = (labels >= 1) & (labels <= classes)
    return images[keep], labels[keep] - 1

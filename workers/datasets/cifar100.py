"""CIFAR-100 (Krizhevsky 2009), fine labels: the official cifar-100-python/ `train` and `test` pickles
(`meta` names the classes) or an .npz pack such as ../shared/data/cifar100/train_sample.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zcpipe.workers.datasets.base import DATASETS, Dataset, DatasetError
from zcpipe.workers.datasets.files import entry, load_pickle, pack_or_none, read_pickled_images

GET = (
    "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and extract it there, "
    "or pass an .npz pack with uint8 `images` (N×32×32×3) and fine `labels` 0..99"
)
WHAT = "an official CIFAR-100 python file"


@DATASETS.register(
    "cifar100", num_classes=100, input_shape=(3, 32, 32),
    mean=(0.5071, 0.4867, 0.4408), std=(0.2675, 0.2565, 0.2761), how_to_get=GET,
)  # fmt: skip
class Cifar100(Dataset):
    def read(self, root: str) -> tuple[np.ndarray, np.ndarray]:
        path = Path(root).expanduser()
        if (pack := pack_or_none(path, GET, (32, 32, 3), 100)) is not None:
            return pack
        folder = path / "cifar-100-python" if (path / "cifar-100-python").is_dir() else path
        train = folder / "train"
        if not train.is_file():
            raise DatasetError(f"CIFAR-100 not found at {path}: expected cifar-100-python/train; {GET}")
        # The proxies' minibatch is drawn from the training images, as for CIFAR-10.
        return read_official(train)


def read_official(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N×32×32×3 uint8) and fine labels of one official CIFAR-100 file (`train` or `test`)."""
    images, labels = read_pickled_images(path, WHAT, GET, "fine_labels", 32)
    if len(labels) and (labels.min() < 0 or labels.max() > 99):
        raise DatasetError(f"{path} is not {WHAT} (fine labels must be in 0..99); {GET}")
    return images, labels


def class_names(folder: Path) -> list[str]:
    """The 100 fine class names from the official `meta` file."""
    meta = folder / "meta"
    d = load_pickle(meta, "the official CIFAR-100 meta file", GET)
    return [n.decode() if isinstance(n, bytes) else n for n in entry(d, "fine_label_names", meta, "meta", GET)]


# mean [129.3, 124.1, 112.4] / 255 and std [68.2, 65.4, 70.4] / 255, as NAS-Bench-201 trains CIFAR-100.

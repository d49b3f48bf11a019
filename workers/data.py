"""The minibatch data-dependent proxies read: synthetic, or real images from an npz pack or the
official CIFAR-10 python batches. A missing or malformed dataset is an error, never a fallback."""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from zcpipe.errors import InputError, WorkersError
from zcpipe.workers.proxies.base import Batch

# Per-channel statistics the NB201 training pipeline normalises CIFAR with.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
DATASETS = ("synthetic", "cifar10")
GET_CIFAR10 = (
    "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it there, "
    "or pass an .npz pack with uint8 `images` (N×32×32×3) and `labels`"
)


class DatasetError(WorkersError, InputError, ValueError):
    """The dataset is missing or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class DataSpec:
    """Which minibatch: the dataset's name and root, the batch size, and the seed of the draw."""

    name: str = "synthetic"
    root: str | None = None
    batch_size: int = 64
    seed: int = 0


def load_batch(spec: DataSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """(images float32 N×C×H×W normalised, labels int64, num_classes) for `spec`, on the CPU."""
    if spec.batch_size < 1:
        raise DatasetError(f"`batch_size` must be positive, got {spec.batch_size}", options=["batch_size"])
    if spec.name == "synthetic":
        rng = np.random.default_rng(spec.seed)
        images = rng.standard_normal((spec.batch_size, 3, 32, 32), dtype=np.float32)
        labels = rng.integers(0, 10, spec.batch_size).astype(np.int64)
        return images, labels, 10
    if spec.name == "cifar10":
        images, labels = _read_cifar10(spec.root)
        if len(images) < spec.batch_size:
            raise DatasetError(
                f"{spec.root} holds {len(images)} images, fewer than `batch_size` {spec.batch_size}",
                options=["batch_size"],
            )
        pick = np.sort(np.random.default_rng(spec.seed).choice(len(images), spec.batch_size, replace=False))
        x = images[pick].astype(np.float32) / 255.0
        x = (x - np.array(CIFAR10_MEAN, dtype=np.float32)) / np.array(CIFAR10_STD, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), labels[pick].astype(np.int64), 10
    raise DatasetError(f"unknown dataset {spec.name!r}; choose one of: {', '.join(DATASETS)}")


def batch_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """The content hash of a batch (images and labels), as the configuration hash records it."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).tobytes())
    return h.hexdigest()


def to_batch(images: np.ndarray, labels: np.ndarray, num_classes: int, device: str | torch.device) -> Batch:
    return Batch(
        images=torch.from_numpy(images).to(device),
        labels=torch.from_numpy(labels).to(device),
        num_classes=num_classes,
        sha256=batch_sha256(images, labels),
    )


def _read_cifar10(root: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not root:
        raise DatasetError(
            f"`data` cifar10 needs `data_root`: a folder holding cifar-10-batches-py/ ({GET_CIFAR10})",
            options=["data", "data_root"],
        )
    path = Path(root).expanduser()
    if path.suffix == ".npz":
        return _read_npz(path)
    folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    if not all(f.is_file() for f in files):
        raise DatasetError(f"CIFAR-10 not found at {path}: expected cifar-10-batches-py/data_batch_1..5; {GET_CIFAR10}")
    parts = [_read_official_batch(f) for f in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"dataset pack {path} does not exist; {GET_CIFAR10}")
    try:
        with np.load(path, allow_pickle=False) as pack:
            if "images" not in pack or "labels" not in pack:
                raise DatasetError(f"{path} lacks `images` and `labels` arrays (it has {sorted(pack.files)})")
            images, labels = pack["images"], pack["labels"]
    except (OSError, ValueError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{path} is not a readable .npz pack ({e}); {GET_CIFAR10}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DatasetError(f"{path}: `images` must be uint8 N×32×32×3, got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],) or labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"{path}: `labels` must be N ints in 0..9 matching the images")
    return images, labels


class _ArrayOnlyUnpickler(pickle.Unpickler):
    # The official CIFAR batches are pickled dicts of numpy arrays; allow exactly that, nothing callable.
    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a CIFAR batch file")


def _read_official_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
        raise DatasetError(f"{path} is not an official CIFAR-10 python batch ({e}); {GET_CIFAR10}") from None
    return data, labels

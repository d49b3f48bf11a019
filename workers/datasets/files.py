"""Readers the image datasets share: `.npz` packs and the official pickled batches, loaded by an
unpickler that allows numpy arrays and nothing callable."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np

from zcpipe.workers.datasets.base import DatasetError


class ArrayOnlyUnpickler(pickle.Unpickler):
    """The official CIFAR and ImageNet16 batches are pickled dicts of numpy arrays and lists: allow exactly
    that, nothing callable."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a dataset batch file")


def load_pickle(path: Path, what: str, how_to_get: str, encoding: str = "bytes") -> dict:
    """A pickled batch file as a dict, or a one-line DatasetError."""
    try:
        return ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding=encoding).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DatasetError(f"{path} is not {what} ({e}); {how_to_get}") from None


def entry(d: dict, key: str, path: Path, what: str, how_to_get: str):
    """`d[key]`, with either str or bytes keys, or a one-line DatasetError naming what is missing."""
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise DatasetError(f"{path} is not {what} (no `{key}` entry); {how_to_get}")


def read_pickled_images(
    path: Path, what: str, how_to_get: str, label_key: str, side: int, encoding: str = "bytes"
) -> tuple[np.ndarray, np.ndarray]:
    """An official pickled batch (`data`: rows of 3×side×side channel-major pixels, `label_key`: one label
    per row) as uint8 N×side×side×3 images and int64 labels, or a one-line DatasetError."""
    d = load_pickle(path, what, how_to_get, encoding)
    try:
        data = np.asarray(entry(d, "data", path, what, how_to_get), dtype=np.uint8).reshape(-1, 3, side, side)
        labels = np.asarray(entry(d, label_key, path, what, how_to_get), dtype=np.int64)
    except ValueError as e:
        raise DatasetError(f"{path} is not {what} ({e}); {how_to_get}") from None
    if len(labels) != len(data):
        raise DatasetError(f"{path} is not {what} (labels and images differ in count); {how_to_get}")
    return data.transpose(0, 2, 3, 1), labels


def pack_or_none(path: Path, how_to_get: str, shape: tuple[int, int, int], classes: int):
    """(images, labels) of the .npz pack at `path`, or None where `path` is not a pack (a folder)."""
    if path.suffix != ".npz":
        return None
    pack = read_pack(path, how_to_get, shape, classes)
    return pack["images"], pack["labels"]


def read_pack(
    path: Path,
    how_to_get: str,
    shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of an .npz pack with `images` (N×H×W×C) and integer `labels`, checked against the
    dataset's image `shape` (H, W, C) and label range where given."""
    if not path.is_file():
        raise DatasetError(f"dataset pack {path} does not exist; {how_to_get}")
    try:
        with np.load(path, allow_pickle=False) as pack:
            arrays = {k: pack[k] for k in pack.files}
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path} is not a readable .npz pack ({e}); {how_to_get}") from None
    if "images" not in arrays or "labels" not in arrays:
        raise DatasetError(f"{path} lacks `images` and `labels` arrays (it has {sorted(arrays)})")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 4 or (shape is not None and (images.dtype != np.uint8 or images.shape[1:] != shape)):
        want = "uint8 N×" + "×".join(map(str, shape)) if shape else "N×H×W×C"
        raise DatasetError(f"{path}: `images` must be {want}, got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DatasetError(f"{path}: `labels` must be N non-negative integers matching the images")
    if num_classes is not None and labels.max() >= num_classes:
        raise DatasetError(f"{path}: `labels` must be N ints in 0..{num_classes - 1} matching the images")
    return arrays

"""The dataset registry: each reader on small files in the official structure (truncated and malformed ones
give one-line errors), the real CIFAR-100 pack, Dey et al.'s generator, users' own packs, and the task
entering the configuration."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from zcpipe.workers.data import DataSpec, batch_sha256, load_batch
from zcpipe.workers.datasets import DatasetError, available_datasets, get_dataset

CIFAR100_NPZ = SHARED_DATA / "cifar100" / "train_sample.npz"


def test_the_registry_declares_each_task():
    assert available_datasets() == ["cifar10", "cifar100", "imagenet16-120", "npz", "synthetic", "synthetic-cifar10"]
    shapes = {n: (get_dataset(n).num_classes, get_dataset(n).input_shape) for n in available_datasets()}
    assert shapes["cifar100"] == (100, (3, 32, 32)) and shapes["imagenet16-120"] == (120, (3, 16, 16))
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet' \\(`data`\\); choose one of: cifar10, cifar100"):
        get_dataset("imagenet")


def _cifar100_folder(tmp, images, fine, coarse=None, drop=None):
    d = tmp / "cifar-100-python"
    d.mkdir()
    coarse = coarse if coarse is not None else np.zeros(len(fine), int)
    entry = {b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1),  # the official layout: int lists
             b"fine_labels": [int(v) for v in fine], b"coarse_labels": [int(v) for v in coarse]}  # fmt: skip
    if drop:
        entry.pop(drop)
    for name in ("train", "test"):
        with open(d / name, "wb") as f:
            pickle.dump(entry, f)
    with open(d / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, f)
    return tmp


def test_cifar100_official_files_read_fine_labels_and_the_same_pixels_as_a_pack(tmp_path):
    from zcpipe.workers.datasets.cifar100 import class_names

    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (80, 32, 32, 3), dtype=np.uint8)
    fine = rng.integers(0, 100, 80)
    _cifar100_folder(tmp_path, images, fine, coarse=fine // 5)
    np.savez(tmp_path / "same.npz", images=images, labels=fine)
    official = load_batch(DataSpec("cifar100", str(tmp_path), 32, 3))
    pack = load_batch(DataSpec("cifar100", str(tmp_path / "same.npz"), 32, 3))
    assert batch_sha256(*official[:2]) == batch_sha256(*pack[:2]) and official[2] == 100
    assert class_names(tmp_path / "cifar-100-python")[:2] == ["c0", "c1"]


@pytest.mark.parametrize(
    "damage,message",
    [
        ("truncate", "is not an official CIFAR-100 python file"),
        ("no-fine", "no `fine_labels` entry"),
        ("callable", r"refusing builtins\.print"),
        ("missing", "CIFAR-100 not found at"),
    ],
)
def test_damaged_cifar100_files_are_one_line_errors(tmp_path, damage, message):
    images = np.zeros((20, 32, 32, 3), np.uint8)
    _cifar100_folder(tmp_path, images, range(20), drop=b"fine_labels" if damage == "no-fine" else None)
    train = tmp_path / "cifar-100-python" / "train"
    if damage == "truncate":
        train.write_bytes(train.read_bytes()[:200])
    elif damage == "callable":
        train.write_bytes(pickle.dumps({b"data": images.reshape(20, -1), b"fine_labels": [0] * 20, b"x": print}))
    elif damage == "missing":
        train.unlink()
    with pytest.raises(DatasetError, match=message) as e:
        load_batch(DataSpec("cifar100", str(tmp_path), 8, 0))
    assert "\n" not in str(e.value)


def test_the_real_cifar100_pack_loads_with_nb201s_normalisation_and_a_seeded_draw():
    a = load_batch(DataSpec("cifar100", str(CIFAR100_NPZ), 64, 0))
    b = load_batch(DataSpec("cifar100", str(CIFAR100_NPZ), 64, 0))
    c = load_batch(DataSpec("cifar100", str(CIFAR100_NPZ), 64, 1))
    assert batch_sha256(*a[:2]) == batch_sha256(*b[:2]) != batch_sha256(*c[:2])
    x, y, n = a
    assert x.shape == (64, 3, 32, 32) and n == 100 and y.max() < 100 and len(set(y.tolist())) > 30
    assert abs(float(x.mean())) < 0.3 and 0.8 < float(x.std()) < 1.2  # CIFAR-100's own statistics


def _imagenet16_folder(tmp, rng, per_file=30):
    """NAS-Bench-201's ImageNet16 files: pickled dicts, `data` rows of 3×16×16 channel-major pixels, 1-based
    ImageNet `labels` over all 1,000 classes."""
    folder = tmp / "ImageNet16"
    folder.mkdir()
    kept = []
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        labels = rng.integers(1, 1001, per_file)
        labels[:3] = [1, 120, 121]  # the edges of NAS-Bench-201's rule
        data = rng.integers(0, 255, (per_file, 3 * 16 * 16), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels.tolist(), "mean": np.zeros(3)}, f)
        if name != "val_data":
            kept += [(d, lab) for d, lab in zip(data, labels, strict=True) if 1 <= lab <= 120]
    return folder, kept


def test_imagenet16_keeps_nb201s_120_classes_as_0_based_labels(tmp_path):
    folder, kept = _imagenet16_folder(tmp_path, np.random.default_rng(0))
    images, labels = get_dataset("imagenet16-120").read(str(tmp_path))
    assert len(images) == len(kept) and images.shape[1:] == (16, 16, 3)
    assert labels.tolist() == [lab - 1 for _, lab in kept] and labels.min() == 0 and labels.max() <= 119
    first = kept[0][0].reshape(3, 16, 16).transpose(1, 2, 0)
    assert np.array_equal(images[0], first)  # channel-major rows become HWC pixels
    x, _y, n = load_batch(DataSpec("imagenet16-120", str(folder), 16, 0))
    assert x.shape == (16, 3, 16, 16) and n == 120
    (folder / "train_data_batch_7").unlink()
    with pytest.raises(DatasetError, match="missing train_data_batch_7"):
        load_batch(DataSpec("imagenet16-120", str(folder), 16, 0))


def test_synthetic_cifar10_is_deterministic_balanced_and_labelled_by_its_networks():
    import torch

    from zcpipe.workers.datasets.synthetic_cifar10 import labelling_networks

    a = load_batch(DataSpec("synthetic-cifar10", None, 40, 7))
    b = load_batch(DataSpec("synthetic-cifar10", None, 40, 7))
    c = load_batch(DataSpec("synthetic-cifar10", None, 40, 8))
    assert batch_sha256(*a[:2]) == batch_sha256(*b[:2]) != batch_sha256(*c[:2])
    x, y, n = a
    assert x.shape == (40, 3, 32, 32) and n == 10
    assert np.bincount(y, minlength=10).tolist() == [4] * 10  # capped per class: balanced enough to train on
    nets = labelling_networks(7)
    flat = torch.from_numpy(x).permute(0, 2, 3, 1).reshape(40, -1)  # back to Dey's HWC order
    with torch.no_grad():
        argmax = torch.cat([net(flat) for net in nets], dim=1).argmax(1).numpy()
    assert np.array_equal(argmax, y)  # each label is the argmax over the 10 random networks


def test_a_users_own_pack_of_one_channel_signals_needs_no_code(tmp_path):
    rng = np.random.default_rng(0)
    signals = rng.normal(size=(50, 24, 40, 1)).astype(np.float32)
    np.savez(tmp_path / "ecg.npz", images=signals, labels=rng.integers(0, 3, 50))
    x, _y, n = load_batch(DataSpec("npz", str(tmp_path / "ecg.npz"), 16, 0))
    assert x.shape == (16, 1, 24, 40) and n == 3  # inferred: the largest label plus one
    np.savez(tmp_path / "stated.npz", images=signals, labels=np.zeros(50, int), num_classes=5)
    assert load_batch(DataSpec("npz", str(tmp_path / "stated.npz"), 16, 0))[2] == 5
    np.savez(tmp_path / "bad.npz", images=signals, labels=rng.normal(size=50))
    with pytest.raises(DatasetError, match="`labels` must be N non-negative integers"):
        load_batch(DataSpec("npz", str(tmp_path / "bad.npz"), 16, 0))


def test_the_task_enters_the_configuration_hash():
    from zcpipe.pipeline.ingest.config import IngestConfig, config_hash

    sha = "0" * 64
    c10 = IngestConfig(space="nb201", store="x", limit=1, data="cifar10", data_root="r").value_config(sha)
    c100 = IngestConfig(space="nb201", store="x", limit=1, data="cifar100", data_root="r")
    assert "num_classes" not in c10  # CIFAR-10 and synthetic hashes are as before
    values = c100.value_config(sha, 100, (3, 32, 32))
    assert (values["data"], values["num_classes"], values["input_shape"]) == ("cifar100", 100, [3, 32, 32])
    assert config_hash(values) != config_hash(c10)

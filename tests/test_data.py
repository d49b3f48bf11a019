import pickle

import numpy as np
import pytest

from tests.conftest import CIFAR_NPZ
from zcpipe.workers.data import DatasetError, DataSpec, batch_sha256, load_batch


def test_synthetic_is_deterministic_and_seeded():
    a = load_batch(DataSpec("synthetic", None, 8, 1))
    b = load_batch(DataSpec("synthetic", None, 8, 1))
    c = load_batch(DataSpec("synthetic", None, 8, 2))
    assert batch_sha256(*a[:2]) == batch_sha256(*b[:2]) != batch_sha256(*c[:2])
    assert a[0].shape == (8, 3, 32, 32) and a[0].dtype == np.float32


def test_npz_pack_gives_normalised_real_images():
    x, y, n = load_batch(DataSpec("cifar10", str(CIFAR_NPZ), 64, 0))
    assert x.shape == (64, 3, 32, 32) and y.shape == (64,) and n == 10
    assert abs(float(x.mean())) < 0.5 and 0.5 < float(x.std()) < 1.5  # normalised
    assert len(set(y.tolist())) > 5


def _write_official(folder, images, labels):
    d = folder / "cifar-10-batches-py"
    d.mkdir()
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    for i in range(1, 6):
        part = slice((i - 1) * 20, i * 20)
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": flat[part], b"labels": labels[part].tolist()}, f)


def test_official_cifar_batches_read_the_same_pixels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (100, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 100)
    _write_official(tmp_path, images, labels)
    np.savez(tmp_path / "same.npz", images=images, labels=labels)
    a = load_batch(DataSpec("cifar10", str(tmp_path), 16, 3))
    b = load_batch(DataSpec("cifar10", str(tmp_path / "same.npz"), 16, 3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_official_batch_refuses_arbitrary_pickles(tmp_path):
    images = np.zeros((100, 32, 32, 3), np.uint8)
    _write_official(tmp_path, images, np.zeros(100, np.int64))
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": images[:20].reshape(20, -1), b"labels": [0] * 20, b"x": print}, f)
    with pytest.raises(DatasetError, match=r"refusing builtins\.print"):
        load_batch(DataSpec("cifar10", str(tmp_path), 16, 0))


@pytest.mark.parametrize(
    "root,match",
    [
        (None, "needs `data_root`"),
        ("nonexistent/cifar", "CIFAR-10 not found"),
        ("nonexistent/x.npz", "does not exist"),
    ],
)
def test_missing_dataset_is_a_clear_error(root, match):
    with pytest.raises(DatasetError, match=match):
        load_batch(DataSpec("cifar10", root, 16, 0))


def test_malformed_npz_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((10, 28, 28), np.uint8), labels=np.zeros(10))
    with pytest.raises(DatasetError, match="uint8 N×32×32×3"):
        load_batch(DataSpec("cifar10", str(tmp_path / "bad.npz"), 4, 0))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"not a readable \.npz"):
        load_batch(DataSpec("cifar10", str(tmp_path / "junk.npz"), 4, 0))

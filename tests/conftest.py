from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZCPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CIFAR_NPZ = SHARED_DATA / "cifar10" / "train_sample.npz"
NB201_LABELS = SHARED_DATA / "nb201" / "labels.csv"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def pytest_configure(config):
    if not SHARED_DATA.is_dir():
        raise pytest.UsageError(
            f"shared benchmark data not found at {SHARED_DATA}; set ZCPIPE_SHARED_DATA to the shared/data folder"
        )


@pytest.fixture(scope="session")
def cifar_batch():
    """A real CIFAR-10 minibatch of 32 images from the shared sample."""
    from zcpipe.workers.data import DataSpec, load_batch, to_batch

    images, labels, n = load_batch(DataSpec("cifar10", str(CIFAR_NPZ), 32, 0))
    return to_batch(images, labels, n, "cpu")


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()

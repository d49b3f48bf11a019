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


REFERENCE_STORE = SHARED_DATA / "stores" / "nb201-c10-3000"


@pytest.fixture(scope="session")
def ref_store(tmp_path_factory):
    """A writable copy of the shared 3,000-cell NB201 store, reconciled by `zcpipe store reconcile` and with
    the real NB201 labels imported. Tests that write to it use their own model names."""
    import shutil
    import subprocess
    import sys

    from zcpipe.pipeline.labels import import_labels

    store = tmp_path_factory.mktemp("ref") / "store"
    shutil.copytree(REFERENCE_STORE, store, copy_function=shutil.copy)
    for p in store.rglob("*"):  # the shared copy is read-only
        p.chmod(0o755 if p.is_dir() else 0o644)
    store.chmod(0o755)
    out = subprocess.run(
        [sys.executable, "-m", "zcpipe.cli", "store", "reconcile", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    import_labels(str(store), "nb201", str(NB201_LABELS), "auto", False)
    return store, out.stderr


@pytest.fixture(scope="session")
def ref_data(ref_store):
    from zcpipe.store.training import load_training_set

    return load_training_set(ref_store[0], "nb201", target="cifar10_valid")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server for the session, its AWS_* settings exported so subprocesses and Ray workers
    started from here reach it too."""
    from tests.s3 import moto_server

    with moto_server() as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def s3_store(s3_server, tmp_path, monkeypatch):
    """A store URL in a fresh bucket, with this test's own local cache."""
    from tests.s3 import new_bucket

    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(tmp_path / "cache"))
    return f"s3://{new_bucket(s3_server)}/store"

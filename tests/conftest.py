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


# Tests that read the shared benchmark data: those using these fixtures, or naming (directly or through a
# module-level helper or constant) one of these names. Without the data they skip; with
# ZCPIPE_REQUIRE_DATA=1 (CI) a missing data folder fails the run instead.
DATA_FIXTURES = {"cifar_batch", "ref_store", "ref_data"}
DATA_NAMES = {"SHARED_DATA", "CIFAR_NPZ", "NB201_LABELS", "REFERENCE_STORE", "ingest_args", "nb201_labels_for"}
SKIP_REASON = (
    f"needs the shared benchmark data at {SHARED_DATA} (the project's shared/data folder beside the checkout, "
    "described in its README; or set ZCPIPE_SHARED_DATA)"
)


def pytest_configure(config):
    if os.environ.get("ZCPIPE_REQUIRE_DATA") == "1" and not SHARED_DATA.is_dir():
        raise pytest.UsageError(f"ZCPIPE_REQUIRE_DATA=1 but {SKIP_REASON}: no test may skip for it here")


def _names_needing_data(module) -> set[str]:
    """Module-level names whose definition mentions a data name, closed over each other."""
    import ast
    import inspect

    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return set(DATA_NAMES)
    defs = {}
    for node in tree.body:
        targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        for name in [*targets, *([node.name] if hasattr(node, "name") else [])]:
            defs[name] = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
                n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            }
    need = set(DATA_NAMES)
    while True:
        more = {name for name, used in defs.items() if name not in need and used & need}
        if not more:
            return need
        need |= more


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    by_module: dict[object, set[str]] = {}
    for item in items:
        module = getattr(item, "module", None)
        if module not in by_module:
            by_module[module] = _names_needing_data(module) if module else set(DATA_NAMES)
        needs = by_module[module]
        uses_fixture = bool(DATA_FIXTURES & set(getattr(item, "fixturenames", ())))
        function = getattr(item, "function", None)
        code = getattr(function, "__code__", None)
        names = set(code.co_names) | set(code.co_varnames) if code else set()
        params = str(getattr(getattr(item, "callspec", None), "params", ""))
        if uses_fixture or names & needs or any(n in params for n in DATA_NAMES) or _nested_names(code) & needs:
            item.add_marker(skip)


def _nested_names(code) -> set[str]:
    """Names used by functions defined inside a test (their code objects are constants of it)."""
    out: set[str] = set()
    for const in getattr(code, "co_consts", ()) or ():
        if hasattr(const, "co_names"):
            out |= set(const.co_names) | _nested_names(const)
    return out


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

    from zcpipe.pipeline import import_labels

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
    from zcpipe.store.tensor_reader import load_training_set

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


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    # A ProxyWorker sets torch's thread count for its process; a later test in the same process must not
    # inherit it (float32 rounding, and so every hand-set tolerance, depends on how work is split).
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

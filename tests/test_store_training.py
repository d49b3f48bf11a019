"""Relocatable stores and the training reader, on the shared store of 3,000 real NB201 cells."""

import csv
import shutil

import numpy as np
import pytest

from tests.conftest import NB201_LABELS
from tests.helpers import cli
from zcpipe.store import Catalog
from zcpipe.store.tensor_reader import TrainingDataError, load_training_set


def test_reconcile_registers_every_copied_shard(ref_store):
    store, message = ref_store
    assert "registered 188 shards" in message and "quarantined 0" in message
    counts = Catalog(store).query("SELECT status, count(*) AS n FROM archs GROUP BY 1 ORDER BY 1").to_pylist()
    assert counts == [{"status": "ok", "n": 2950}, {"status": "partial", "n": 50}]


def _tree(root):
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_a_moved_store_answers_queries_and_reading_writes_nothing(ref_store, tmp_path):
    src, _ = ref_store
    # Only the catalog and one shard per query are needed; a partial copy keeps the test small.
    moved = tmp_path / "elsewhere" / "store"
    shutil.copytree(src, moved, ignore=shutil.ignore_patterns("models"))
    before = _tree(moved)
    cat = Catalog(moved)
    assert cat.query("SELECT count(*) AS n FROM archs").to_pylist() == [{"n": 3000}]
    assert cat.query("SELECT count(DISTINCT arch) AS n FROM layers").to_pylist() == [{"n": 3000}]
    assert cat.info()["configs"][0]["archs"] == 3000
    assert len(load_training_set(moved, "nb201", target="cifar10_valid")) == 3000
    assert _tree(moved) == before  # a reader leaves no file, lock or WAL behind: fine on a read-only mount


def test_a_store_without_catalog_points_to_reconcile(tmp_path):
    from tests.helpers import cli

    (tmp_path / "shards").mkdir()
    r = cli("sql", "--store", tmp_path, "SELECT 1")
    assert r.returncode == 2 and f"`zcpipe store reconcile --store {tmp_path}` registers the shards" in r.stderr


def test_reconcile_quarantines_a_damaged_registered_shard(ref_store, tmp_path):
    src, _ = ref_store
    store = tmp_path / "s"
    shutil.copytree(src, store, ignore=shutil.ignore_patterns("models"))
    victim = sorted((store / "shards" / "nb201").glob("*/*"))[3]
    (victim / "archs.parquet").write_bytes(b"damaged")
    with Catalog(store).writer() as w:
        did = w.reconcile(verify_all=True)
    assert did["quarantined"] == 1 and (store / "quarantine" / victim.name).exists()
    assert Catalog(store).query("SELECT count(*) AS n FROM archs").to_pylist() == [{"n": 2984}]


def test_training_set_is_aligned_by_slot_and_joined_with_labels(ref_store, ref_data):
    store, _ = ref_store
    d = ref_data
    assert len(d) == 3000 and d.nodewise.shape == (3000, len(d.proxies), 188) and len(d.slots) == 188
    assert d.archs == sorted(d.archs)
    with open(NB201_LABELS) as f:
        truth = {r["arch"]: float(r["cifar10_valid"]) for r in csv.DictReader(f)}
    np.testing.assert_allclose(d.labels, [truth[a] for a in d.archs])
    # Column s is the same layer position in every architecture: compare with layers.parquet by slot name.
    picks = [0, 1234, 2999]
    keys = ", ".join(f"'{d.archs[i]}'" for i in picks)
    rows = Catalog(store).query(f"SELECT arch, slot, snip, synflow FROM layers WHERE arch IN ({keys})").to_pylist()
    assert rows
    present = {(r["arch"], r["slot"]) for r in rows}
    for i in picks:
        expect = {d.slots[s] for s in np.flatnonzero(d.mask[i])}
        assert expect == {slot for a, slot in present if a == d.archs[i]}
    for r in rows:
        i, s = d.archs.index(r["arch"]), d.slots.index(r["slot"])
        assert d.nodewise[i, d.proxies.index("snip"), s] == pytest.approx(r["snip"], rel=1e-12)
        assert d.nodewise[i, d.proxies.index("synflow"), s] == pytest.approx(r["synflow"], rel=1e-12)
    # absent slots are NaN with the mask off, never zero
    assert np.isnan(d.nodewise[~np.broadcast_to(d.mask[:, None, :], d.nodewise.shape)]).all()
    # whole-network NULLs (50 partial cells) stay NaN
    assert np.isnan(d.scalar("jacov")).sum() == 50 and np.isfinite(d.scalar("synflow")).all()


def test_reader_errors_say_what_to_do(ref_store):
    store, _ = ref_store
    with pytest.raises(TrainingDataError, match=r"no 'cifar10_vaild' labels.*labels there: cifar100_valid"):
        load_training_set(store, "nb201", target="cifar10_vaild")
    with pytest.raises(TrainingDataError, match=r"no statistics for space 'nb101'; ingest some first"):
        load_training_set(store, "nb101", target="cifar10_valid")
    r = cli("train", "--store", store, "--space", "nb101", "--predictor", "mlp", "--target", "cifar10_valid",
            "--train-size", "10")  # fmt: skip
    assert r.returncode == 2 and f"run `zcpipe ingest --store {store} ...` first" in r.stderr, r.stderr
    with pytest.raises(TrainingDataError, match=r"config_hash 'deadbeef' has no statistics.*b73d81fda35aaef5"):
        load_training_set(store, "nb201", config_hash="deadbeef")


def test_unique_training_keeps_one_cell_per_isomorphism_class(ref_store):
    from zcpipe.pipeline import TrainConfig, train
    from zcpipe.store.model_artifacts import model_dir
    from zcpipe.workers.spaces import get_space

    store, _ = ref_store
    key = get_space("nb201").isomorphism_key
    archs = load_training_set(store, "nb201", target="cifar10_valid").archs
    classes = {key(a) for a in archs}
    assert len(classes) < len(archs)  # the store holds duplicates, so the option has work to do
    res = train(TrainConfig(store, "nb201", "gbdt", "cifar10_valid", 156, 0, name="unique-gbdt", unique=True))
    assert res.metrics["n"] == len(classes) - 156
    trained = model_dir(store, "unique-gbdt")[1]["train_archs"]["nb201"]
    assert len({key(a) for a in trained}) == 156

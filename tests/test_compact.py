"""`zcpipe store compact`: many small shards become one, atomically, with the same rows and tensors, on
local disk and on S3; superseded rows are dropped; a crash after the swap is finished by reconcile."""

from __future__ import annotations

import numpy as np
import pytest

from zcpipe import settings
from zcpipe.store import Catalog, TensorBlock, write_staged_shard
from zcpipe.store.compact import compact
from zcpipe.store.tensor_reader import load_training_set
from zcpipe.workers.spaces import get_space

SLOTS = ["a", "b", "c"]


def _commit(store, shard_id: str, archs: list[str], status: str = "ok", replace: bool = False, seed: int = 0,
            chash: str = "c"):  # fmt: skip
    rng = np.random.default_rng(seed)
    n = len(archs)
    rows = [{"space": "nb201", "arch": a, "config_hash": chash, "run_id": "r", "shard_id": shard_id,
             "status": status, "synflow": float(rng.normal())} for a in archs]  # fmt: skip
    layers = [{"space": "nb201", "arch": a, "config_hash": chash, "shard_id": shard_id, "slot": s, "layer_index": i,
               "synflow": float(rng.normal())} for a in archs for i, s in enumerate(SLOTS)]  # fmt: skip
    block = TensorBlock(archs, ["synflow"], SLOTS, rng.normal(size=(n, 1, 3)), np.ones((n, 3), bool))
    cat = Catalog(store)
    with cat.writer() as w:
        m = write_staged_shard(store, shard_id=shard_id, space="nb201", run_id="r", config_hash=chash, arch_rows=rows,
                               layer_rows=layers, proxy_names=["synflow"], tensors=block)  # fmt: skip
        w.commit(m, replace=replace)


def _snapshot(store):
    cat = Catalog(store)
    archs = cat.query("SELECT arch, status, synflow FROM archs ORDER BY arch").to_pylist()
    layers = cat.query("SELECT arch, slot, synflow FROM layers ORDER BY arch, slot").to_pylist()
    data = load_training_set(store, "nb201")
    return archs, layers, data.archs, data.nodewise


@pytest.mark.parametrize("where", ["local", "s3"])
def test_compaction_keeps_every_row_and_tensor(where, tmp_path, request):
    store = str(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store")
    archs = get_space("nb201").sample(12, 0)
    for k in range(4):
        _commit(store, f"s{k}", archs[3 * k : 3 * k + 3], seed=k)
    before = _snapshot(store)
    assert len(before[0]) == 12
    summary = compact(store)
    assert (summary.shards_before, summary.shards_after, summary.archs) == (4, 1, 12)
    after = _snapshot(store)
    assert after[:3] == before[:3]
    np.testing.assert_array_equal(after[3], before[3])
    cat = Catalog(store)
    assert cat.query("SELECT count(*) AS n FROM shards").column("n")[0].as_py() == 1
    assert cat.query("SELECT count(DISTINCT shard_id) AS n FROM layers").column("n")[0].as_py() == 1
    if where == "local":  # the replaced shards' folders are gone
        assert len(list((tmp_path / "store" / "shards" / "nb201").glob("*/*"))) == 1
    assert compact(store).shards_before == 0  # one shard left: nothing to merge


def test_two_configurations_of_one_space_compact_in_one_run(tmp_path):
    """Proxies added later as a configuration of their own (`bench/add_proxies.py`): both configurations'
    small shards compact in one run, each into a shard of its own, every row and tensor kept."""
    store = str(tmp_path / "store")
    archs = get_space("nb201").sample(6, 2)
    for chash in ("c", "d"):
        for k in range(2):
            _commit(store, f"{chash}{k}", archs[3 * k : 3 * k + 3], seed=k, chash=chash)
    before = {h: load_training_set(store, "nb201", config_hash=h) for h in ("c", "d")}
    summary = compact(store)
    assert (summary.groups, summary.shards_before, summary.shards_after, summary.archs) == (2, 4, 2, 12)
    rows = Catalog(store).query("SELECT config_hash, count(*) AS n FROM archs GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [{"config_hash": "c", "n": 6}, {"config_hash": "d", "n": 6}]
    for h, data in before.items():
        np.testing.assert_array_equal(load_training_set(store, "nb201", config_hash=h).nodewise, data.nodewise)
    assert not list((tmp_path / "store" / "staging").iterdir())


def test_a_retried_arch_keeps_only_its_new_row_through_compaction(tmp_path):
    store = str(tmp_path / "store")
    archs = get_space("nb201").sample(4, 1)
    _commit(store, "s0", archs[:2], status="failed")
    _commit(store, "s1", archs[2:])
    _commit(store, "s2", archs[:1], replace=True, seed=5)  # --retry-failed recomputed one of them
    rows = Catalog(store).query("SELECT arch, status FROM archs ORDER BY arch").to_pylist()
    assert len(rows) == 4 and sum(r["status"] == "ok" for r in rows) == 3
    compact(store)
    assert Catalog(store).query("SELECT arch, status FROM archs ORDER BY arch").to_pylist() == rows


def test_reconcile_deletes_retired_shards_left_by_a_crash(tmp_path):
    store = str(tmp_path / "store")
    archs = get_space("nb201").sample(4, 2)
    _commit(store, "s0", archs[:2])
    _commit(store, "s1", archs[2:])
    cat = Catalog(store)
    # the swap committed, then the process died before deleting the old folders
    with cat.writer() as w:
        w.retire(["s0"])
    old = tmp_path / "store" / "shards" / "nb201" / "r" / "s0"
    assert old.is_dir()
    with cat.writer() as w:
        did = w.reconcile()
    assert not old.exists() and did["orphans_registered"] == 0  # deleted, not taken back as an orphan
    assert cat.query("SELECT count(*) AS n FROM archs").column("n")[0].as_py() == 2


def test_on_s3_replaced_shards_outlive_the_swap_for_readers_on_older_snapshots(s3_store, monkeypatch):
    from zcpipe.store import remote
    from zcpipe.store.layout import StoreLayout

    monkeypatch.setenv("ZCPIPE_SHARD_CACHE", "0")  # this reader goes to the bucket for every file
    archs = get_space("nb201").sample(6, 4)
    for k in range(3):
        _commit(s3_store, f"s{k}", archs[2 * k : 2 * k + 2], seed=k)
    cat = Catalog(s3_store)
    with cat.reader() as before:  # a reader on another node, on the snapshot from before compaction
        assert compact(s3_store).shards_after == 1
        assert before.sql("SELECT count(*) FROM layers").fetchall() == [(18,)]
    old = {f"shards/nb201/r/s{k}" for k in range(3)}
    assert old <= set(remote.shard_prefixes(StoreLayout(s3_store)))
    with cat.writer() as w:  # within the grace period reconcile neither deletes nor takes them back
        assert w.reconcile()["orphans_registered"] == 0
    assert old <= set(remote.shard_prefixes(StoreLayout(s3_store)))
    monkeypatch.setattr(settings, "SNAPSHOT_GRACE_S", 0)
    with cat.writer() as w:
        w.reconcile()
    assert not old & set(remote.shard_prefixes(StoreLayout(s3_store)))
    assert cat.query("SELECT count(*) AS n FROM archs").column("n")[0].as_py() == 6

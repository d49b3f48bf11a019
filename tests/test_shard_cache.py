"""A remote store's shards are read from local copies: fetched once, checked against their manifests,
never half-visible, dropped some time after compaction retires them; with the cache off, the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from zcpipe.store import Catalog, TensorBlock, shard_cache, write_staged_shard
from zcpipe.store.compact import compact
from zcpipe.store.layout import StoreLayout
from zcpipe.store.tensor_reader import load_training_set
from zcpipe.workers.spaces import get_space

SLOTS = ["a", "b"]


def _commit(store: str, shard_id: str, archs: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = [{"space": "nb201", "arch": a, "config_hash": "c", "run_id": "r", "shard_id": shard_id, "status": "ok",
             "synflow": float(rng.normal())} for a in archs]  # fmt: skip
    layers = [{"space": "nb201", "arch": a, "config_hash": "c", "shard_id": shard_id, "slot": s, "layer_index": i,
               "synflow": float(rng.normal())} for a in archs for i, s in enumerate(SLOTS)]  # fmt: skip
    block = TensorBlock(archs, ["synflow"], SLOTS, rng.normal(size=(len(archs), 1, 2)), np.ones((len(archs), 2), bool))
    meta = {"shard_id": shard_id, "space": "nb201", "run_id": "r", "config_hash": "c"}
    manifest = write_staged_shard(store, **meta, arch_rows=rows, layer_rows=layers, proxy_names=["synflow"],
                                  tensors=block)  # fmt: skip
    with Catalog(store).writer() as w:
        w.commit(manifest)


def _answers(store: str):
    cat = Catalog(store)
    layers = cat.query("SELECT arch, slot, synflow FROM layers ORDER BY arch, slot").to_pylist()
    data = load_training_set(store, "nb201")
    return layers, data.archs, data.nodewise


@pytest.fixture
def two_shards(s3_store):
    archs = get_space("nb201").sample(6, 3)
    _commit(s3_store, "s0", archs[:3], seed=0)
    _commit(s3_store, "s1", archs[3:], seed=1)
    return s3_store


def test_reads_come_from_verified_local_copies_after_one_fetch(two_shards, monkeypatch):
    store = two_shards
    layout = StoreLayout(store)
    root = shard_cache.cache_root(layout)
    first = _answers(store)
    copies = sorted(
        p.relative_to(root).as_posix() for p in root.glob("shards/nb201/r/*/*") if p.name != "manifest.json"
    )
    assert copies == [f"shards/nb201/r/{s}/{part}" for s in ("s0", "s1") for part in shard_cache.PARTS]
    assert not list((root / ".tmp").glob("*/*"))  # nothing half-written left behind
    info = Catalog(store).info()  # `zcpipe store info` shows this node's copies
    assert info["local_cache"] == str(layout.root)
    assert info["local_cache_bytes"] >= sum(f.stat().st_size for f in root.rglob("*") if f.is_file())

    # The bucket's copy changes behind the reader's back: the reader keeps its verified local copy.
    layout.fs.pipe_file(layout.key("shards/nb201/r/s0/layers.parquet"), b"not parquet")
    second = _answers(store)
    assert second[:2] == first[:2]
    np.testing.assert_array_equal(second[2], first[2])

    # The same store read straight from the bucket (cache off) fails on the damaged file, as it should:
    # proof the answers above came from the local copies.
    monkeypatch.setenv("ZCPIPE_SHARD_CACHE", "0")
    with pytest.raises(Exception, match="unreadable"):
        Catalog(store).query("SELECT count(*) FROM layers")


def test_the_cache_off_gives_the_same_answers(two_shards, monkeypatch):
    cached = _answers(two_shards)
    monkeypatch.setenv("ZCPIPE_SHARD_CACHE", "0")
    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(shard_cache.cache_root(StoreLayout(two_shards)).parent / "other"))
    direct = _answers(two_shards)
    assert direct[:2] == cached[:2]
    np.testing.assert_array_equal(direct[2], cached[2])


def test_a_copy_that_does_not_match_its_manifest_is_refused(two_shards):
    layout = StoreLayout(two_shards)
    layout.fs.pipe_file(layout.key("shards/nb201/r/s1/archs.parquet"), b"tampered")
    refused = r"s1: archs.parquet does not match its checksum; reconciling the store quarantines it"
    with pytest.raises(shard_cache.ShardFetchError, match=refused):
        Catalog(two_shards).query("SELECT count(*) FROM archs")
    root = shard_cache.cache_root(layout)
    assert not (root / "shards/nb201/r/s1/archs.parquet").exists()  # never placed where readers look


def test_copies_of_compacted_shards_are_dropped_after_the_grace_period(two_shards, monkeypatch):
    before = _answers(two_shards)
    root = shard_cache.cache_root(StoreLayout(two_shards))
    assert compact(two_shards).shards_after == 1
    after = _answers(two_shards)  # the new shard is fetched; the old copies are only marked
    assert after[1] == before[1]
    np.testing.assert_array_equal(after[2], before[2])
    old = [root / "shards/nb201/r/s0", root / "shards/nb201/r/s1"]
    assert all((d / shard_cache.RETIRED).exists() for d in old)
    monkeypatch.setattr(shard_cache, "PRUNE_AFTER_S", -1.0)
    Catalog(two_shards).query("SELECT 1")
    assert not any(d.exists() for d in old)
    assert len(list(root.glob("shards/nb201/*/*"))) == 1


def test_a_shard_whose_files_are_gone_says_to_reconcile_and_reconcile_drops_it(two_shards):
    from zcpipe.store.remote import remove_prefix

    layout = StoreLayout(two_shards)
    remove_prefix(layout, "shards/nb201/r/s1")  # e.g. deleted by hand from the bucket
    with pytest.raises(shard_cache.ShardFetchError, match="reconciling the store drops it"):
        Catalog(two_shards).query("SELECT count(*) FROM archs")
    with Catalog(two_shards).writer() as w:
        assert w.reconcile()["missing_dropped"] == 1
    assert Catalog(two_shards).query("SELECT count(*) AS n FROM archs").column("n")[0].as_py() == 3

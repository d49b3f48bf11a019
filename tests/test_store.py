"""Shards and the catalog on real Parquet, Zarr and DuckDB files."""

import numpy as np
import pytest

from zcpipe.store import Catalog, CorruptShardError, TensorBlock, read_tensors, write_staged_shard
from zcpipe.store.layout import StoreLayout

SLOTS = ["stem", "a", "b", "head"]


def _stage(root, shard_id, archs, run_id="run1", chash="c0"):
    arch_rows = [
        {
            "space": "toy",
            "arch": a,
            "config_hash": chash,
            "run_id": run_id,
            "shard_id": shard_id,
            "status": "ok",
            "reason": None,
            "null_reasons": {},
            "params": 10.0,
            "flops": 20.0,
            "synflow": float(i),
            "proxy_seconds": {"synflow": 0.1},
            "seconds": 0.2,
            "micro_batches": 1,
            "device": "cpu",
            "zcpipe_version": "t",
            "torch_version": "t",
        }
        for i, a in enumerate(archs)
    ]
    layer_rows = [
        {
            "space": "toy",
            "arch": a,
            "config_hash": chash,
            "shard_id": shard_id,
            "slot": s,
            "layer_index": j,
            "op_type": "Conv2d",
            "op": "conv",
            "shape": [1, 2],
            "numel": 2,
            "params": 2,
            "flops": 4,
            "synflow": 1.0,
        }
        for a in archs
        for j, s in enumerate(SLOTS[:2])
    ]
    values = np.full((len(archs), 1, len(SLOTS)), np.nan)
    values[:, 0, :2] = 1.0
    mask = np.zeros((len(archs), len(SLOTS)), bool)
    mask[:, :2] = True
    block = TensorBlock(list(archs), ["synflow"], SLOTS, values, mask)
    return write_staged_shard(
        root,
        shard_id=shard_id,
        space="toy",
        run_id=run_id,
        config_hash=chash,
        arch_rows=arch_rows,
        layer_rows=layer_rows,
        proxy_names=["synflow"],
        tensors=block,
    )


def test_commit_makes_rows_visible_in_sql_and_tensors_readable(tmp_path):
    cat = Catalog(tmp_path)
    with cat.writer() as w:
        w.reconcile()  # start-up clears staging, so workers stage after it
        final = w.commit(_stage(tmp_path, "s1", ["x", "y", "z"]))
        assert w.committed_archs("toy", "c0") == {"x", "y", "z"}
    assert not (StoreLayout(tmp_path).staging / "s1").exists()
    assert cat.query("SELECT count(*) AS n FROM archs").to_pylist() == [{"n": 3}]
    assert cat.query("SELECT count(*) AS n FROM layers WHERE slot = 'a'").to_pylist() == [{"n": 3}]
    assert cat.query("SELECT n_archs FROM shards").to_pylist() == [{"n_archs": 3}]
    t = read_tensors(final)
    assert t.values.shape == (3, 1, 4) and t.slots == SLOTS and t.mask[:, :2].all() and not t.mask[:, 2:].any()


def test_empty_store_has_typed_views(tmp_path):
    with Catalog(tmp_path).writer() as w:
        w.reconcile()
    t = Catalog(tmp_path).query("SELECT * FROM archs")
    assert t.num_rows == 0 and {"space", "arch", "config_hash", "status", "params"} <= set(t.column_names)


def test_a_corrupt_staged_shard_is_refused_and_nothing_shows(tmp_path):
    cat = Catalog(tmp_path)
    m = _stage(tmp_path, "s1", ["x"])
    path = StoreLayout(tmp_path).staged("s1") / "archs.parquet"
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    with cat.writer() as w, pytest.raises(CorruptShardError, match=r"archs\.parquet does not match"):
        w.commit(m)
    assert cat.query("SELECT count(*) AS n FROM archs").to_pylist() == [{"n": 0}]


def test_reconcile_after_crashes(tmp_path):
    layout = StoreLayout(tmp_path)
    cat = Catalog(tmp_path)
    with cat.writer() as w:
        w.reconcile()
    # 1. crash while a worker was writing: staging without a manifest
    (layout.staging / "half").mkdir(parents=True)
    (layout.staging / "half" / "archs.parquet").write_bytes(b"partial")
    # 2. crash between the rename into shards/ and the catalog transaction
    m = _stage(tmp_path, "s2", ["p", "q"])
    target = layout.committed("toy", "run1", "s2")
    target.parent.mkdir(parents=True)
    layout.staged("s2").rename(target)
    # 3. a shard directory that was damaged on disk
    _stage(tmp_path, "s3", ["r"])
    bad = layout.committed("toy", "run1", "s3")
    layout.staged("s3").rename(bad)
    (bad / "layers.parquet").write_bytes(b"garbage")
    with cat.writer() as w:
        did = w.reconcile()
        assert w.committed_archs("toy", "c0") == set(m.archs)
    shards = {k: did[k] for k in ("staging_removed", "orphans_registered", "quarantined", "missing_dropped")}
    assert shards == {"staging_removed": 1, "orphans_registered": 1, "quarantined": 1, "missing_dropped": 0}
    assert not any(layout.staging.iterdir())
    assert (layout.quarantine / "s3").exists()
    assert sorted(r["arch"] for r in cat.query("SELECT arch FROM archs").to_pylist()) == ["p", "q"]


def test_a_shard_repeating_committed_archs_is_rejected_atomically(tmp_path):
    import duckdb

    cat = Catalog(tmp_path)
    with cat.writer() as w:
        w.reconcile()
        w.commit(_stage(tmp_path, "s1", ["x", "y"]))
        with pytest.raises(duckdb.ConstraintException):
            w.commit(_stage(tmp_path, "s2", ["y", "z"]))
        assert w.committed_archs("toy", "c0") == {"x", "y"}


def test_reader_without_catalog_says_what_is_missing_and_whether_shards_are_there(tmp_path):
    from zcpipe.store import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match="no catalog in") as e:
        Catalog(tmp_path / "nothing").query("SELECT 1")
    assert e.value.has_shards is False  # the CLI then says to ingest; with shards, to reconcile
    (tmp_path / "copied" / "shards").mkdir(parents=True)
    with pytest.raises(StoreNotFoundError) as e:
        Catalog(tmp_path / "copied").query("SELECT 1")
    assert e.value.has_shards is True


def test_a_second_ingest_on_the_same_store_is_refused_while_one_runs(tmp_path):
    from zcpipe.store import CatalogBusyError

    with Catalog(tmp_path).ingest_lock():
        with pytest.raises(CatalogBusyError, match=r"another ingest .*pid"), Catalog(tmp_path).ingest_lock():
            pass
    with Catalog(tmp_path).ingest_lock():  # released: free again
        pass

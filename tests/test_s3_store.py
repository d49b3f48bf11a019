"""A store on a real S3 API (moto's server on 127.0.0.1): ingest, SQL, labels, training, the commit
protocol without rename, leases, and --retry-failed."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from tests.conftest import CIFAR_NPZ
from tests.helpers import commit_arch_rows, nb201_labels_for
from zcpipe.pipeline import TrainConfig, evaluate, import_labels, predict, train
from zcpipe.pipeline.graph_rows import graph_rows
from zcpipe.pipeline.ingest import IngestConfig, ingest
from zcpipe.store import Catalog, TensorBlock, write_staged_shard
from zcpipe.store.catalog import CatalogWriter
from zcpipe.store.layout import StoreLayout
from zcpipe.store.remote import Lease, LeaseHeldError, LeaseLostError, PublishConflictError
from zcpipe.store.tensor_reader import load_training_set
from zcpipe.workers.spaces import get_space


def _cfg(store: str, **kw) -> IngestConfig:
    opts = dict(space="nb201", store=store, data="cifar10", data_root=str(CIFAR_NPZ), batch_size=16, workers=2,
                chunk_size=2, proxies=("synflow", "snip"))  # fmt: skip
    return IngestConfig(**{**opts, **kw})


def _keys(store: str) -> list[str]:
    lay = StoreLayout(store)
    return [k[len(lay.base) + 1 :] for k in lay.fs.find(lay.base)]


def _shard(store: str, shard_id: str, archs: list[str], run_id: str = "r1"):
    n = len(archs)
    rows = [{"space": "nb201", "arch": a, "config_hash": "c", "run_id": run_id, "shard_id": shard_id,
             "status": "ok", "synflow": float(i)} for i, a in enumerate(archs)]  # fmt: skip
    block = TensorBlock(archs, ["synflow"], ["x"], np.zeros((n, 1, 1)), np.ones((n, 1), bool))
    return write_staged_shard(store, shard_id=shard_id, space="nb201", run_id=run_id, config_hash="c",
                              arch_rows=rows, layer_rows=[], proxy_names=["synflow"], tensors=block)  # fmt: skip


@pytest.mark.slow
def test_ingest_sql_labels_train_predict_on_s3(s3_server, ray_session, s3_store, tmp_path):
    summary = ingest(_cfg(s3_store, limit=6), progress=False)
    assert (summary.done, summary.failed) == (6, 0)
    keys = _keys(s3_store)
    assert "catalog.duckdb" in keys and not any(k.startswith("staging/") for k in keys)
    cat = Catalog(s3_store)
    shards = cat.query("SELECT path FROM shards").column("path").to_pylist()
    assert sorted(k.removesuffix("/manifest.json") for k in keys if k.endswith("/manifest.json")) == sorted(shards)
    rows = cat.query("SELECT arch, node_ip, synflow FROM archs ORDER BY arch").to_pylist()
    assert len(rows) == 6 and all(r["node_ip"] and r["synflow"] is not None for r in rows)
    assert cat.query("SELECT count(DISTINCT arch) AS n FROM layers").column("n")[0].as_py() == 6

    again = ingest(_cfg(s3_store, limit=6), progress=False)  # nothing left to do, nothing duplicated
    assert (again.done, again.skipped) == (0, 6)

    archs = [r["arch"] for r in rows]
    import_labels(s3_store, "nb201", nb201_labels_for(archs, tmp_path), "auto", False)
    data = load_training_set(s3_store, "nb201", target="cifar10_valid")  # zarr tensors read from S3
    assert data.nodewise.shape[0] == 6 and data.mask.any(axis=1).all()
    result = train(TrainConfig(store=s3_store, space="nb201", predictor="mlp", target="cifar10_valid",
                               train_size=4, name="m", hparams={"epochs": 2, "proxies": "synflow,snip"}))  # fmt: skip
    assert str(result.artifact) == f"{s3_store}/models/m"
    assert "models/m/config.json" in _keys(s3_store)
    assert predict(s3_store, "m") == 6
    # a second process with an empty cache reads the model back from the bucket
    assert evaluate(s3_store, "m")["n_test"] == 2
    assert cat.query("SELECT count(*) AS n FROM predictions WHERE model = 'm'").column("n")[0].as_py() == 6


def test_uploaded_shards_are_invisible_until_committed_and_reconcile_finishes_them(s3_store):
    archs = get_space("nb201").sample(5, 0)
    commit_arch_rows(s3_store, "nb201", [{"space": "nb201", "arch": archs[0], "config_hash": "c",
                                          "shard_id": "s", "status": "ok"}], ["synflow"])  # fmt: skip
    _shard(s3_store, "orphan", archs[1:3])  # uploaded whole; its driver died before the catalog commit
    lay = StoreLayout(s3_store)
    lay.fs.pipe_file(lay.key("shards/nb201/r1/torn/archs.parquet"), b"half an upload")  # no manifest
    _shard(s3_store, "bad", archs[3:5])
    lay.fs.pipe_file(lay.key("shards/nb201/r1/bad/archs.parquet"), b"bit rot")

    cat = Catalog(s3_store)
    assert cat.query("SELECT count(*) AS n FROM archs").column("n")[0].as_py() == 1  # readers see commits only
    with cat.ingest_lock(), cat.writer() as w:
        did = w.reconcile()
    shards = {k: did[k] for k in ("staging_removed", "orphans_registered", "quarantined", "missing_dropped")}
    assert shards == {"staging_removed": 1, "orphans_registered": 1, "quarantined": 1, "missing_dropped": 0}
    got = cat.query("SELECT arch FROM archs ORDER BY arch").column("arch").to_pylist()
    assert got == sorted(archs[:3])
    keys = _keys(s3_store)
    assert not any("/torn/" in k for k in keys) and any(k.startswith("quarantine/bad/") for k in keys)


def test_catalog_lease_excludes_a_second_writer_and_expires_when_its_holder_dies(s3_store):
    lay = StoreLayout(s3_store)
    with Lease(lay, "x.lock", ttl=30, wait=0, what="the test lease"):
        with pytest.raises(LeaseHeldError, match="the test lease is held by"):
            Lease(lay, "x.lock", ttl=30, wait=0.3, what="the test lease").__enter__()
    # a holder that died: its lease names an expiry in the past, and is taken over
    lay.fs.pipe_file(lay.key("x.lock"), json.dumps({"owner": "dead:1", "expires": time.time() - 1}).encode())
    with Lease(lay, "x.lock", ttl=30, wait=0, what="the test lease") as lease:
        assert json.loads(lay.fs.cat_file(lay.key("x.lock")))["owner"] == lease.owner
    assert not lay.fs.exists(lay.key("x.lock"))

    # a writer waits for the catalog lease instead of overwriting another writer's commit
    cat = Catalog(s3_store)
    order = []
    with cat.writer() as w:
        t = threading.Thread(target=lambda: (cat.writer().__enter__(), order.append("second")))
        t.start()
        time.sleep(1.0)
        order.append("first")
        w.add_graphs(graph_rows(get_space("nb201"), [(a, a) for a in get_space("nb201").sample(2, 0)]))
    t.join(30)
    assert order == ["first", "second"]


def test_a_missing_bucket_is_one_line_that_says_to_create_it(s3_server, tmp_path, monkeypatch):
    from tests.helpers import cli

    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(tmp_path))
    r = cli("ingest", "--space", "nb201", "--limit", "2", "--store", "s3://zc-no-such-bucket/x", "--no-progress")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: The specified bucket does not exist: create the bucket first, or fix --store"


def test_of_several_processes_taking_over_an_expired_lease_exactly_one_wins(s3_store):
    lay = StoreLayout(s3_store)
    lay.fs.pipe_file(lay.key("x.lock"), json.dumps({"owner": "dead:1", "expires": time.time() - 1}).encode())
    start, won, refused = threading.Barrier(6), [], []

    def contend():
        lease = Lease(StoreLayout(s3_store), "x.lock", ttl=30, wait=0, what="the test lease")
        start.wait()
        try:
            won.append(lease.__enter__())
        except LeaseHeldError:
            refused.append(lease)

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert (len(won), len(refused)) == (1, 5)
    assert json.loads(lay.fs.cat_file(lay.key("x.lock")))["owner"] == won[0].owner
    won[0].__exit__(None, None, None)
    assert not lay.fs.exists(lay.key("x.lock"))


def test_a_holder_whose_lease_was_taken_over_neither_keeps_nor_deletes_it(s3_store):
    lay = StoreLayout(s3_store)
    holder = Lease(lay, "x.lock", ttl=0.6, wait=0, what="the test lease").__enter__()
    holder.ensure_held()
    # The holder stalled past its expiry and another process took the lease over.
    lay.fs.pipe_file(lay.key("x.lock"), json.dumps({"owner": "other:2", "expires": time.time() + 60}).encode())
    time.sleep(0.5)  # the holder's next renewal finds it
    with pytest.raises(LeaseLostError, match="lost the test lease"):
        holder.ensure_held()
    holder.__exit__(None, None, None)
    assert json.loads(lay.fs.cat_file(lay.key("x.lock")))["owner"] == "other:2"


def test_a_writer_does_not_publish_over_a_catalog_published_since_it_synced(s3_store, tmp_path):
    import duckdb

    archs = get_space("nb201").sample(3, 0)
    commit_arch_rows(s3_store, "nb201", [{"space": "nb201", "arch": archs[0], "config_hash": "c",
                                          "shard_id": "s", "status": "ok"}], ["synflow"])  # fmt: skip
    lay, cat = StoreLayout(s3_store), Catalog(s3_store)
    other = tmp_path / "other.duckdb"
    lay.fs.get_file(lay.key("catalog.duckdb"), str(other))
    with duckdb.connect(str(other)) as con:  # what a writer that took the lease over published
        CatalogWriter(con, lay).add_graphs(graph_rows(get_space("nb201"), [("theirs", archs[1])]))
    with pytest.raises(PublishConflictError, match="nothing of this commit was published"):
        with cat.writer() as w:
            w.add_graphs(graph_rows(get_space("nb201"), [(archs[1], archs[1])]))
            lay.fs.put_file(str(other), lay.key("catalog.duckdb"))
    assert cat.query("SELECT arch FROM graphs").column("arch").to_pylist() == ["theirs"]
    with cat.writer() as w:  # the next writer starts from what was published
        w.add_graphs(graph_rows(get_space("nb201"), [(archs[2], archs[2])]))
    assert sorted(cat.query("SELECT arch FROM graphs").column("arch").to_pylist()) == sorted(["theirs", archs[2]])


@pytest.mark.slow
def test_retry_failed_recomputes_failed_archs_once(s3_server, ray_session, s3_store, tmp_path):
    archs = get_space("nb201").sample(3, 5)
    listing = tmp_path / "archs.txt"
    listing.write_text("\n".join(archs))
    first = ingest(_cfg(s3_store, archs_file=str(listing)), progress=False)
    # one more arch of the same configuration that failed (as an out-of-memory or a crash would leave it)
    extra = get_space("nb201").sample(4, 6)[-1]
    assert extra not in archs
    failed = {"space": "nb201", "arch": extra, "config_hash": first.config_hash, "shard_id": "s", "status": "failed"}
    commit_arch_rows(s3_store, "nb201", [failed], ["synflow"], config_hash=first.config_hash)
    listing.write_text("\n".join([*archs, extra]))
    again = ingest(_cfg(s3_store, archs_file=str(listing)), progress=False)
    assert (again.done, again.skipped) == (0, 4)  # a failure counts as done ...
    retry = ingest(_cfg(s3_store, archs_file=str(listing), retry_failed=True), progress=False)
    assert (retry.done, retry.skipped) == (1, 3)  # ... until --retry-failed
    rows = Catalog(s3_store).query("SELECT arch, status FROM archs ORDER BY arch").to_pylist()
    assert sorted(r["arch"] for r in rows) == sorted([*archs, extra]) and {r["status"] for r in rows} == {"ok"}
    assert Catalog(s3_store).query(f"SELECT count(*) AS n FROM layers WHERE arch = '{extra}'").column("n")[0].as_py()

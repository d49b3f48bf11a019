"""Ingest end to end on a real local Ray, real shards and a real catalog; kills included."""

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CIFAR_NPZ, ROOT
from tests.helpers import ingest_args
from zcpipe.pipeline.ingest import IngestConfig, ingest
from zcpipe.store import Catalog, read_tensors
from zcpipe.workers.spaces import BuildOptions, get_space, weight_layers

pytestmark = pytest.mark.slow
PROXIES = ("synflow", "snip", "grad_norm", "fisher", "grasp")
FAST = dict(data="cifar10", data_root=str(CIFAR_NPZ), batch_size=16, proxies=PROXIES)


def _cfg(store, **kw):
    return IngestConfig(space="nb201", store=str(store), **{"limit": 6, **FAST, **kw})


def _values(store):
    rows = (
        Catalog(store)
        .query("SELECT arch, params, flops, synflow, snip, grad_norm, fisher, grasp FROM archs ORDER BY arch")
        .to_pylist()
    )
    layers = (
        Catalog(store)
        .query("SELECT arch, slot, synflow, snip, grad_norm, fisher, grasp FROM layers ORDER BY arch, layer_index")
        .to_pylist()
    )
    return rows, layers


def test_ingest_writes_every_layer_and_a_rerun_adds_nothing(tmp_path, ray_session):
    s1 = ingest(_cfg(tmp_path, workers=2), progress=False)
    assert (s1.done, s1.skipped, s1.failed) == (6, 0, 0)
    cat = Catalog(tmp_path)
    archs = cat.query("SELECT arch, status, params, synflow, grasp FROM archs").to_pylist()
    assert len(archs) == 6 and all(r["status"] == "ok" for r in archs)
    space = get_space("nb201")
    for r in archs:
        model = space.build(r["arch"], BuildOptions())
        n_layers = len(weight_layers(model))
        got = cat.query(f"SELECT count(*) AS n FROM layers WHERE arch = '{r['arch']}'").to_pylist()[0]["n"]
        assert got == n_layers
        assert r["params"] == sum(p.numel() for p in model.parameters())
        assert np.isfinite(r["synflow"]) and r["synflow"] >= 0  # 0 when no path joins input and output
    # layer values sum to the whole-network value
    check = cat.query(
        "SELECT a.arch, a.snip, sum(l.snip) AS s FROM archs a JOIN layers l USING (arch, config_hash) GROUP BY ALL"
    ).to_pylist()
    assert all(r["snip"] == pytest.approx(r["s"], rel=1e-12) for r in check)
    shard_dirs = Catalog(tmp_path).committed_shard_dirs("nb201")
    t = read_tensors(shard_dirs[0])
    assert t.proxies == [*PROXIES, "params", "flops"] and t.slots == space.slots()
    assert t.values.shape[1:] == (len(PROXIES) + 2, len(space.slots()))
    assert t.mask.any(axis=1).all()

    # A larger --limit only adds cells (the sample is a prefix of one seeded permutation): 2 computed.
    s2 = ingest(_cfg(tmp_path, workers=2, limit=8), progress=False)
    assert (s2.done, s2.skipped) == (2, 6)
    assert cat.query("SELECT count(*) AS n FROM archs").to_pylist() == [{"n": 8}]
    runs = cat.query("SELECT state, done, skipped FROM runs ORDER BY started_at").to_pylist()
    assert [(r["state"], r["done"], r["skipped"]) for r in runs] == [("finished", 6, 0), ("finished", 2, 6)]


def test_one_and_two_workers_give_identical_values(tmp_path, ray_session):
    ingest(_cfg(tmp_path / "one", workers=1), progress=False)
    ingest(_cfg(tmp_path / "two", workers=2), progress=False)
    assert _values(tmp_path / "one") == _values(tmp_path / "two")


def test_a_batched_ingest_is_its_own_configuration_with_the_single_engines_values(tmp_path, ray_session):
    # Three architectures per pass, chunks cut from the plan in spec order: every cell once, in its own row.
    batched = ingest(_cfg(tmp_path / "batched", workers=1, arch_batch=3), progress=False)
    single = ingest(_cfg(tmp_path / "single", workers=1), progress=False)
    assert (batched.done, batched.failed) == (6, 0) and batched.config_hash != single.config_hash
    (rows_b, layers_b), (rows_s, layers_s) = _values(tmp_path / "batched"), _values(tmp_path / "single")
    assert [r["arch"] for r in rows_b] == [r["arch"] for r in rows_s]
    assert len(layers_b) == len(layers_s)
    for got, ref in zip(rows_b, rows_s, strict=True):
        assert (got["params"], got["flops"]) == (ref["params"], ref["flops"])
        for name in ("synflow", "snip", "grad_norm", "fisher"):  # float32 noise of grouped kernels
            assert got[name] == pytest.approx(ref[name], rel=1e-2)
    # Chunks hold neighbours in spec order (so a pass's architectures share ops): shard by shard, the
    # specs follow one another.
    rows = Catalog(tmp_path / "batched").query("SELECT arch_spec, shard_id FROM archs ORDER BY arch_spec").to_pylist()
    shards = [r["shard_id"] for r in rows]
    assert len(set(shards)) > 1 and shards == sorted(shards)
    again = ingest(_cfg(tmp_path / "batched", workers=1, arch_batch=3), progress=False)
    assert (again.done, again.skipped) == (0, 6)


def test_proxies_ingested_later_as_their_own_configuration_read_beside_the_first(tmp_path, ray_session):
    from zcpipe.store.tensor_reader import TrainingDataError, load_training_set

    first = ingest(_cfg(tmp_path, workers=1, limit=3, proxies=("synflow", "snip")), progress=False)
    later = ingest(_cfg(tmp_path, workers=1, limit=2, proxies=("meco", "snip")), progress=False)
    a, b = first.config_hash, later.config_hash
    with pytest.raises(TrainingDataError, match="holds 2 configurations"):
        load_training_set(tmp_path, "nb201")
    one, two = load_training_set(tmp_path, "nb201", config_hash=a), load_training_set(tmp_path, "nb201", config_hash=b)
    both = load_training_set(tmp_path, "nb201", config_hash=f"{a},{b}")
    assert both.config_hash == f"{a},{b}" and both.archs == two.archs and len(both) == 2  # the cells both hold
    # one column per name, the first configuration's where both hold it (snip); the later one's own (meco)
    assert both.proxies == ["synflow", "snip", "params", "flops", "meco"]
    rows = [one.archs.index(x) for x in both.archs]
    np.testing.assert_array_equal(both.nodewise[:, :4], one.nodewise[rows])
    np.testing.assert_array_equal(both.nodewise[:, 4], two.nodewise[:, two.proxies.index("meco")])
    np.testing.assert_array_equal(both.scalar("meco"), two.scalar("meco"))
    np.testing.assert_array_equal(both.scalar("snip"), one.scalar("snip")[rows])
    with pytest.raises(TrainingDataError, match="name each configuration once"):
        load_training_set(tmp_path, "nb201", config_hash=f"{a},{a}")


def _wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _committed_shards(store):
    try:
        return Catalog(store).query("SELECT count(*) AS n FROM shards").to_pylist()[0]["n"]
    except FileNotFoundError:
        return 0


# Two cheap proxies: what a kill may lose does not depend on which values are computed.
CHEAP = ("--proxies", "synflow,snip")


def _start(store, n, *extra, env=None):
    return subprocess.Popen(
        ingest_args(store, n, "--chunk-size", "2", *CHEAP, *extra),
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _exactly_once(store, n):
    rows = Catalog(store).query("SELECT arch FROM archs").to_pylist()
    assert len(rows) == n and len({r["arch"] for r in rows}) == n
    layout_staging = Path(store) / "staging"
    assert not layout_staging.exists() or not any(layout_staging.iterdir())


def _actor_pids(driver_pid: int) -> list[int]:
    """IngestActor processes started by this test's driver (its descendants), never another run's."""
    import psutil

    out = []
    for p in psutil.Process(driver_pid).children(recursive=True):
        try:
            if "ray::IngestActor" in " ".join(p.cmdline()):
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _hold_chunks(tmp_path, *allowed: str) -> tuple[dict, Path]:
    """An environment whose ingest actors run only the chunks listed in the returned file (workers/failpoints)."""
    listing = tmp_path / "chunks-allowed"
    listing.write_text("\n".join(allowed) + "\n")
    return {**os.environ, "ZCPIPE_FAILPOINTS": f"ingest-chunk={listing}"}, listing


def test_a_killed_worker_is_restarted_and_its_chunk_retried(tmp_path):
    env, listing = _hold_chunks(tmp_path, "00000")
    store = tmp_path / "s"
    proc = _start(store, 10, "--workers", "2", env=env)
    try:
        _wait_for(lambda: _committed_shards(store) >= 1, 240, "a first commit")
        # Chunk 0 is committed and no other may run: each actor now holds a chunk in flight.
        time.sleep(1)
        assert _committed_shards(store) == 1
        pids = _actor_pids(proc.pid)
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)
        listing.write_text("\n".join(f"{i:05d}" for i in range(5)) + "\n")  # let every chunk run
        out, _ = proc.communicate(timeout=420)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert "10 done, 0 skipped (already committed), 0 failed" in out.decode()
    _exactly_once(store, 10)


def test_a_killed_driver_loses_nothing_and_a_rerun_finishes_once(tmp_path):
    env, _ = _hold_chunks(tmp_path, "00000", "00001")  # two chunks of 2 may commit, the other three wait
    store = tmp_path / "s"
    proc = _start(store, 10, "--workers", "2", env=env)
    try:
        _wait_for(lambda: _committed_shards(store) >= 2, 240, "two commits")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started, mid-run
        proc.wait(timeout=60)
    # What is visible is whole: exactly the two committed shards, no duplicates.
    visible = Catalog(store).query("SELECT arch FROM archs").to_pylist()
    assert len(visible) == 4 and len({r["arch"] for r in visible}) == 4
    rerun = subprocess.run(
        ingest_args(store, 10, *CHEAP, "--workers", "2"), cwd=ROOT, capture_output=True, text=True, timeout=420
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "6 done, 4 skipped" in rerun.stderr
    _exactly_once(store, 10)
    runs = Catalog(store).query("SELECT state, done FROM runs ORDER BY started_at").to_pylist()
    # The killed run counts what it committed.
    assert [(r["state"], r["done"]) for r in runs] == [("interrupted", 4), ("finished", 6)]


# Narrow networks: what is checked (rows, layers, slots, tensors) does not depend on the width.
SMALL = {"nb101": {"stem_channels": 16, "cells_per_stack": 1}, "nds": {"width": 8, "depth": 5}}


@pytest.mark.parametrize("space_name", ["nb101", "nds-darts", "nds-enas", "nds-nasnet", "nds-amoeba", "nds-pnas"])
def test_every_space_ingests_with_slots_and_tensors(tmp_path, ray_session, space_name):
    params = SMALL[space_name.split("-")[0]]
    cfg = IngestConfig(space=space_name, store=str(tmp_path), limit=4, workers=2, data="synthetic", batch_size=8,
                       proxies=PROXIES, space_params=params)  # fmt: skip
    summary = ingest(cfg, progress=False)
    assert (summary.done, summary.failed) == (4, 0)
    cat = Catalog(tmp_path)
    rows = cat.query("SELECT arch, arch_spec, status, synflow, snip, grasp FROM archs").to_pylist()
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    space = get_space(space_name, **params)
    for r in rows[:3]:
        assert space.parse(r["arch_spec"]) == r["arch"]
        model = space.build(r["arch_spec"], BuildOptions())
        n = cat.query(f"SELECT count(*) AS n FROM layers WHERE arch = '{r['arch']}'").to_pylist()[0]["n"]
        assert n == len(weight_layers(model))
    t = read_tensors(cat.committed_shard_dirs(space_name)[0])
    assert t.slots == space.slots() and t.mask.sum() > 0

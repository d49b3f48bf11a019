"""`zcpipe nas` on the shared 3,000-cell NB201 store with its real labels: the loops query real benchmark
values, proxies help BANANAS, a killed run resumes to exactly the run it would have been."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import cli
from zcpipe.pipeline.nas import NasConfig, run_nas
from zcpipe.pipeline.nas.pool import load_pool
from zcpipe.store import Catalog


@pytest.fixture(scope="module")
def pool(ref_store):
    return load_pool(str(ref_store[0]), "nb201", "cifar10_valid", ("onehot", "zc", "graph"))


def _history(store, run_id):
    rows = Catalog(store).query("SELECT seed, query, arch, valid, best_valid FROM nas_queries WHERE run_id = ? "
                                "ORDER BY seed, query", [run_id]).to_pylist()  # fmt: skip
    return rows


@pytest.mark.parametrize("algo", ["random", "rea", "local", "bananas"])
def test_every_loop_spends_its_budget_on_distinct_real_cells_and_is_a_function_of_its_seed(ref_store, pool, algo):
    store = str(ref_store[0])
    feats = ("onehot", "zc") if algo == "bananas" else ("onehot",)
    for name in (f"t-{algo}-a", f"t-{algo}-b"):
        run_nas(NasConfig(store, "nb201", "cifar10_valid", algo, budget=40, seeds=2, features=feats, name=name),
                progress=False, pool=pool)  # fmt: skip
    a, b = _history(store, f"t-{algo}-a"), _history(store, f"t-{algo}-b")
    assert [r["arch"] for r in a] == [r["arch"] for r in b]  # the same seeds, the same run
    for seed in (0, 1):
        mine = [r for r in a if r["seed"] == seed]
        assert len(mine) == 40 and len({r["arch"] for r in mine}) == 40
        truth = {arch: v for arch, v in zip(pool.archs, pool.valid, strict=True)}
        assert all(r["valid"] == truth[r["arch"]] for r in mine)  # a query returns the benchmark's label
        assert [r["best_valid"] for r in mine] == list(np.maximum.accumulate([r["valid"] for r in mine]))
    assert [r["arch"] for r in a if r["seed"] == 0] != [r["arch"] for r in a if r["seed"] == 1]


def test_zero_cost_features_make_bananas_beat_random_search(ref_store, pool):
    store = str(ref_store[0])
    regret = {}
    for algo, feats in (("random", ("onehot",)), ("bananas", ("onehot", "zc", "graph"))):
        r = run_nas(NasConfig(store, "nb201", "cifar10_valid", algo, budget=80, seeds=4, features=feats,
                              name=f"t-vs-{algo}"), progress=False, pool=pool)  # fmt: skip
        regret[algo] = r.summary.regret[0]
        assert r.notes and "restricted to the 3000 cells" in r.notes[0] and "15625" in r.notes[0]
    assert regret["bananas"] < 0.5 * regret["random"], regret


def test_a_warm_start_queries_the_top_cells_of_the_zero_shot_vote_first(ref_store, pool):
    store = str(ref_store[0])
    run_nas(NasConfig(store, "nb201", "cifar10_valid", "rea", budget=35, seeds=1, warm_start="zc:nwot",
                      name="t-ws"), progress=False, pool=pool)  # fmt: skip
    first = [r["arch"] for r in _history(store, "t-ws")][:30]
    top = [pool.archs[i] for i in np.argsort(-pool.zc["nwot"], kind="stable")[:30]]
    assert first == top
    with pytest.raises(Exception, match="proxy 'nope' is not in this store's statistics"):
        run_nas(NasConfig(store, "nb201", "cifar10_valid", "rea", budget=5, seeds=1, warm_start="zc:nope",
                          name="t-ws2"), progress=False, pool=pool)  # fmt: skip


@pytest.mark.slow
def test_a_killed_run_resumes_to_exactly_the_uninterrupted_run(ref_store, tmp_path):
    store = str(ref_store[0])
    args = [sys.executable, "-m", "zcpipe.cli", "nas", "--store", store, "--target", "cifar10_valid", "--algo",
            "bananas", "--features", "onehot,zc", "--budget", "70", "--seeds", "2", "--no-progress",
            "--format", "json"]  # fmt: skip
    listing = tmp_path / "flushes-allowed"
    listing.write_text("")  # no flush may pass: the run holds after its first (seed 0, 50 queries)
    env = {**os.environ, "ZCPIPE_FAILPOINTS": f"nas-flush={listing}"}
    proc = subprocess.Popen([*args, "--name", "t-kill"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while len(_rows(store, "t-kill")) < 50:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert len(_rows(store, "t-kill")) == 50  # mid-seed: 50 of seed 0's 70 queries recorded
    resumed = subprocess.run([*args, "--name", "t-kill"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after 50 recorded queries" in resumed.stderr
    fresh = subprocess.run([*args, "--name", "t-fresh"], capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    assert _rows(store, "t-kill") == _rows(store, "t-fresh") and len(_rows(store, "t-fresh")) == 140
    assert json.loads(resumed.stdout)[0]["best valid"] == json.loads(fresh.stdout)[0]["best valid"]
    state = cli("sql", "--store", store, "--format", "json", "SELECT state FROM nas_runs WHERE run_id = 't-kill'")
    assert json.loads(state.stdout) == [{"state": "finished"}]


def _rows(store, run_id):
    return [(r["seed"], r["query"], r["arch"]) for r in _history(store, run_id)]


def test_bad_nas_options_are_one_line_errors(ref_store):
    store = ref_store[0]
    for args, message in ((["--algo", "hill"], "--algo 'hill': choose random, rea, local, bananas"),
                          (["--algo", "bananas", "--guided"], "--guided (ZC-guided moves) is for rea and local"),
                          (["--features", "onehot,magic"], "--features: choose from onehot, zc, graph, nodewise"),
                          (["--warm-start", "best"], "--warm-start is zc")):  # fmt: skip
        r = cli("nas", "--store", store, "--target", "cifar10_valid", "--budget", "5", "--seeds", "1", *args)
        assert r.returncode == 2 and message in r.stderr, r.stderr


def test_nb101_walks_its_labelled_cells_without_statistics(tmp_path):
    """NB101's labelled cells (no statistics in the store): the loops that need no proxies run on their graphs;
    those that do say so."""
    from tests.conftest import SHARED_DATA
    from zcpipe.pipeline import import_labels

    store = str(tmp_path / "s")
    import_labels(store, "nb101", str(SHARED_DATA / "nb101" / "labels.jsonl"))
    pool = load_pool(store, "nb101", "cifar10_valid", ("onehot", "graph"))
    assert len(pool) == 292 and pool.restricted  # the distinct labelled cells
    r = run_nas(NasConfig(store, "nb101", "cifar10_valid", "bananas", budget=30, seeds=2,
                          features=("onehot", "graph")), progress=False, pool=pool)  # fmt: skip
    assert r.summary.seeds == 2 and r.summary.best_valid[0] > 90
    with pytest.raises(Exception, match="the `features` zc and nodewise need them"):
        load_pool(store, "nb101", "cifar10_valid", ("onehot", "zc"))
    with pytest.raises(Exception, match="a ZC warm start or guided move needs them"):
        run_nas(NasConfig(store, "nb101", "cifar10_valid", "rea", budget=5, seeds=1, warm_start="zc", name="t-101"),
                progress=False, pool=pool)  # fmt: skip

"""Batch re-training as Ray Tune trials: a grid sweep killed part-way resumes to exactly its points, and a
hyper-parameter search selects on validation cells and registers its refit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.helpers import ZCPIPE, cli
from zcpipe.store import Catalog


def _sweep_rows(store, sweep: str) -> list[dict]:
    return (
        Catalog(store)
        .query(
            "SELECT name, predictor, seed, train_size, n_test, hparams FROM models "
            f"WHERE name LIKE '{sweep}-%' ORDER BY 1"
        )
        .to_pylist()
    )


@pytest.mark.slow
def test_sweep_of_two_predictors_resumes_after_a_kill(ref_store, tmp_path):
    store = ref_store[0]
    args = [*ZCPIPE, "train", "--store", str(store), "--space", "nb201", "--target", "cifar10_valid",
            "--sweep", "grid", "--predictor", "mlp,parzc", "--train-sizes", "100", "--seeds", "0",
            "--epochs", "20", "--no-progress"]  # fmt: skip
    # Only the first point may run before the kill; the others wait at a failpoint, so the kill lands
    # mid-sweep however fast the machine is.
    allowed = tmp_path / "points-allowed"
    allowed.write_text("grid-mlp-n100-s0\n")
    env = {**os.environ, "ZCPIPE_FAILPOINTS": f"sweep-point={allowed}"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=env)  # fmt: skip
    deadline = time.monotonic() + 300
    while not _sweep_rows(store, "grid"):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its Ray and its trials, mid-sweep
    proc.wait()
    interrupted = _sweep_rows(store, "grid")
    assert [r["name"] for r in interrupted] == ["grid-mlp-n100-s0"]

    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    rows = _sweep_rows(store, "grid")
    assert [r["name"] for r in rows] == ["grid-mlp-n100-s0", "grid-parzc-n100-s0"]
    assert {(r["predictor"], r["seed"], r["train_size"]) for r in rows} == {("mlp", 0, 100), ("parzc", 0, 100)}
    assert all(r["n_test"] == 3000 - 100 for r in rows)
    kept = {r["name"] for r in interrupted}
    assert all(json.loads(r["hparams"])["epochs"] == 20 for r in rows) and kept <= {r["name"] for r in rows}

    done = subprocess.run(args, capture_output=True, text=True, timeout=300)  # nothing left: no new rows
    assert done.returncode == 0 and len(_sweep_rows(store, "grid")) == 2


@pytest.mark.slow
def test_hpo_selects_on_validation_cells_and_registers_the_refit(ref_store):
    from zcpipe.pipeline import TrainConfig
    from zcpipe.pipeline.training.sweeps import SweepConfig, run_hpo

    store = str(ref_store[0])
    base = TrainConfig(store=store, space="nb201", predictor="gbdt", target="cifar10_valid", train_size=80)
    cfg = SweepConfig(base=base, name="search", predictors=("gbdt",), train_sizes=(80,), seeds=(3,), hpo_trials=4)
    name = run_hpo(cfg, progress=False)
    assert name == "search-best"
    (row,) = _sweep_rows(store, "search")
    hp = json.loads(row["hparams"])
    assert 100 <= hp["n_estimators"] < 800 and 4 <= hp["num_leaves"] < 64 and 0.01 <= hp["learning_rate"] <= 0.3
    assert row["train_size"] == 80 and row["seed"] == 3
    trials = [p for p in (ref_store[0] / "sweeps" / "search-hpo").iterdir() if p.is_dir()]
    assert len(trials) == 4
    for t in trials:  # each trial scored on validation cells: 25% of the 80 training cells
        result = json.loads((t / "result.json").read_text().splitlines()[-1])
        assert -1 <= result["val_kendall"] <= 1
    assert run_hpo(cfg, progress=False) == "search-best"  # done: nothing runs again
    assert len(_sweep_rows(store, "search")) == 1


def test_sweep_options_fail_early_with_a_fix():
    base = ["train", "--store", "nowhere", "--space", "nb201", "--target", "x"]
    out = cli(*base, "--predictor", "gbdt", "--seeds", "0,1")
    assert out.returncode == 2 and "add --sweep NAME" in out.stderr
    out = cli(*base, "--predictor", "gbdt,mlp", "--sweep", "s", "--hpo", "3", "--train-sizes", "10")
    assert out.returncode == 2 and "--hpo searches one predictor" in out.stderr


@pytest.mark.slow
def test_a_search_on_s3_keeps_its_tune_experiment_in_the_bucket(s3_store, tmp_path, monkeypatch):
    """A RayJob's driver pod does not outlive the job: the search's state must be in the store."""
    import csv

    import numpy as np
    from ray import tune

    from tests.helpers import commit_arch_rows, nb201_labels_for
    from zcpipe.pipeline import TrainConfig, import_labels
    from zcpipe.pipeline.training.sweeps import SweepConfig, _tune_storage, run_hpo
    from zcpipe.store.layout import StoreLayout
    from zcpipe.workers.spaces import get_space

    archs = get_space("nb201").sample(100, 5)
    labels = nb201_labels_for(archs, tmp_path)
    with open(labels) as f:
        acc = {r["arch"]: float(r["cifar10_valid"]) for r in csv.DictReader(f)}
    rng = np.random.default_rng(0)
    rows = [{"space": "nb201", "arch": a, "config_hash": "c", "shard_id": "s", "status": "ok",
             "synflow": acc[a] + float(rng.normal()), "snip": float(rng.normal())} for a in archs]  # fmt: skip
    commit_arch_rows(s3_store, "nb201", rows, ["synflow", "snip"])
    import_labels(s3_store, "nb201", labels)
    base = TrainConfig(store=s3_store, space="nb201", predictor="gbdt", target="cifar10_valid", train_size=80)
    cfg = SweepConfig(base=base, name="s3search", predictors=("gbdt",), train_sizes=(80,), seeds=(0,), hpo_trials=2)
    assert run_hpo(cfg, progress=False) == "s3search-best"
    layout = StoreLayout(s3_store)
    results = [k for k in layout.fs.find(layout.key("sweeps/s3search-hpo")) if k.endswith("/result.json")]
    assert len(results) == 2
    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(tmp_path / "another-node"))  # nothing of it on local disk
    path, fs = _tune_storage(s3_store)
    assert tune.Tuner.can_restore(f"{path}/s3search-hpo", storage_filesystem=fs)

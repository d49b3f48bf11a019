"""Networks as each benchmark trained them, per task, and a store holding several tasks side by side."""

from __future__ import annotations

import csv
import math
import pathlib

import numpy as np
import pytest

from tests.conftest import CIFAR_NPZ, NB201_LABELS, SHARED_DATA
from tests.helpers import cli, commit_arch_rows
from zcpipe.workers.spaces import BuildOptions, get_space

NB301_STORE = SHARED_DATA / "stores" / "nb301-c10"


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_nb201_on_cifar100_and_imagenet16_differs_from_cifar10_by_the_classifier_only():
    rows = list(csv.DictReader(open(NB201_LABELS)))[::1500]
    space = get_space("nb201")
    for r in rows:
        c10 = _params(space.build(r["arch"], BuildOptions()))
        c100 = _params(space.build(r["arch"], BuildOptions(num_classes=100)))
        im16 = space.build(r["arch"], BuildOptions(num_classes=120, input_shape=(3, 16, 16)))
        # The head reads C=64 features after the last cell: (classes) x (64 weights + 1 bias).
        assert c100 - c10 == 90 * 65 and _params(im16) - c10 == 110 * 65
        if abs(c10 / 1e6 - float(r["params_m"])) < 1e-6:  # the CIFAR-10 count of labels.csv (bar issue #36)
            assert round((c10 + 90 * 65) / 1e6, 6) == round(float(r["params_m"]) + 90 * 65 / 1e6, 6)
        import torch

        assert im16(torch.zeros(2, 3, 16, 16)).shape == (2, 120)


def test_the_nb301_network_is_darts_at_c32_with_8_cells_under_the_nds_darts_name():
    nb301, c16 = get_space("nb301"), get_space("nds-darts")
    assert nb301.name == "nds-darts" and nb301.params() == {"width": 32, "depth": 8}
    key = nb301.sample(1, 0)[0]
    big, small = _params(nb301.build(key, BuildOptions())), _params(c16.build(key, BuildOptions()))
    assert 3.3 < big / small < 4.1  # width doubled: most weights scale by four (the README's "a quarter")


def _hand_count_darts_c32(normal, reduce) -> int:
    """DARTS' NetworkCIFAR as NAS-Bench-301 trained it (C=32, 8 cells, reductions at cells 2 and 5, affine
    BatchNorm everywhere, 10 classes), counted by hand from DARTS' op definitions."""

    def bn(c):  # affine BatchNorm: a weight and a bias per channel
        return 2 * c

    def op(name, c, stride):
        k = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "dil_conv_3x3": 3, "dil_conv_5x5": 5}.get(name)
        if name.startswith("sep_conv"):  # twice: depthwise kxk, pointwise 1x1, BN
            return 2 * (c * k * k + c * c + bn(c))
        if name.startswith("dil_conv"):  # depthwise kxk (dilated), pointwise 1x1, BN
            return c * k * k + c * c + bn(c)
        if name == "skip_connect" and stride == 2:  # FactorizedReduce: two 1x1 convs to c/2 each, BN
            return 2 * (c * (c // 2)) + bn(c)
        return 0  # pools (max, and avg without count of padding), identity

    total = 3 * 3 * 3 * 96 + bn(96)  # stem: 3x3 conv to 3C, BN
    pp, p, cur = 96, 96, 32
    reduction_prev = False
    for i in range(8):
        reduction = i in (2, 5)
        if reduction:
            cur *= 2
        # preprocess0: FactorizedReduce after a reduction, else ReLU-1x1 conv-BN; preprocess1: ReLU-1x1 conv-BN
        total += (2 * (pp * (cur // 2)) if reduction_prev else pp * cur) + bn(cur)
        total += p * cur + bn(cur)
        for name, j in reduce if reduction else normal:
            total += op(name, cur, 2 if reduction and j < 2 else 1)
        pp, p, reduction_prev = p, 4 * cur, reduction
    return total + p * 10 + 10  # classifier on the last cell's 4C channels


@pytest.mark.parametrize("row", [0, 1])
def test_nb301_parameter_counts_equal_a_count_by_hand(row):
    import json

    g = json.loads((SHARED_DATA / "darts" / "labels.jsonl").read_text().splitlines()[row])
    space = get_space("nb301")
    key = space.parse(json.dumps({"normal": g["normal"], "reduce": g["reduce"]}))
    assert _params(space.build(key, BuildOptions())) == _hand_count_darts_c32(g["normal"], g["reduce"])


@pytest.mark.slow
def test_nb301_values_equal_the_shared_nb301_store_for_the_same_genotypes():
    import pyarrow.parquet as pq

    from zcpipe.workers.data import DataSpec, load_batch
    from zcpipe.workers.worker import ProxyWorker, WorkerConfig

    proxies = ("synflow", "snip", "grad_norm", "fisher", "grasp", "plain", "l2_norm", "jacov", "nwot", "zen",
               "epe_nas", "params", "flops")  # fmt: skip
    shard = sorted(pathlib.Path(NB301_STORE / "shards").rglob("archs.parquet"))[0]
    stored = pq.read_table(shard).to_pylist()[:1]  # one genotype: 13 proxies of the C=32 network take ~25 s
    images, labels, classes = load_batch(DataSpec("cifar10", str(CIFAR_NPZ), 64, 0))
    worker = ProxyWorker(WorkerConfig(space="nb301", proxies=proxies, seed=0, threads=1), images, labels, classes)
    for row in stored:
        got = worker.compute(row["arch"], row["arch_spec"]).stats.values
        for p in proxies:
            tol = STORE_TOLERANCE.get(p, 2e-5)
            assert math.isclose(got[p], row[p], rel_tol=tol, abs_tol=1e-12), (p, got[p], row[p])


# The shared store was written on another machine's CPU: float32 kernels sum in another order on another CPU
# (and between torch's CPU and CUDA builds). Measured on an AMD EPYC against the store, largest of two cells:
# snip 3.6e-5, grad_norm 4.0e-5, plain 1.9e-5, fisher 9.2e-6, GraSP 1.7e-4 (its second-order term), epe_nas
# 4.7e-4 (the log of near-zero correlations amplifies rounding); synflow (float64), l2_norm, nwot, zen,
# jacov within 2e-6. Each bound is about 5x the largest seen; counts are exact.
STORE_TOLERANCE = {"params": 0.0, "flops": 0.0, "snip": 2e-4, "grad_norm": 2e-4, "plain": 1e-4, "fisher": 1e-4,
                   "grasp": 1e-3, "epe_nas": 2e-3}  # fmt: skip


def test_a_store_holding_two_tasks_keeps_them_apart(tmp_path):
    archs = get_space("nb201").sample(12, 3)
    rng = np.random.default_rng(0)
    for dataset, chash, offset in (("cifar10", "c10", 0.0), ("cifar100", "c100", 100.0)):
        rows = [{"space": "nb201", "arch": a, "config_hash": chash, "dataset": dataset, "shard_id": f"s-{chash}",
                 "run_id": "r", "status": "ok", "synflow": offset + rng.normal()} for a in archs]  # fmt: skip
        cat = commit_arch_rows(tmp_path, "nb201", rows, ["synflow"], config_hash=chash, shard_id=f"s-{chash}")
    from tests.helpers import nb201_labels_for
    from zcpipe.pipeline import import_labels

    import_labels(str(tmp_path), "nb201", nb201_labels_for(archs, tmp_path))
    by_task = cat.query(
        "SELECT dataset, label_dataset, count(*) AS n FROM archs_labeled GROUP BY ALL ORDER BY ALL"
    ).to_pylist()
    assert by_task == [
        {"dataset": "cifar10", "label_dataset": "cifar10", "n": 24},  # cifar10_test and cifar10_valid
        {"dataset": "cifar100", "label_dataset": "cifar100", "n": 12},
    ]
    every = cat.query("SELECT count(*) AS n FROM archs_labeled_any").column("n")[0].as_py()
    assert every == 2 * 12 * 4
    r = cli("train", "--store", tmp_path, "--space", "nb201", "--predictor", "proxy:synflow", "--target",
            "cifar100_valid", "--train-size", "0")  # fmt: skip
    assert r.returncode == 2 and "pick one" in r.stderr and "--data" in r.stderr  # two tasks: say which
    r = cli("train", "--store", tmp_path, "--space", "nb201", "--predictor", "proxy:synflow", "--target",
            "cifar100_valid", "--train-size", "0", "--data", "cifar100", "--name", "on-c100")  # fmt: skip
    assert r.returncode == 0, r.stderr
    config = cat.query("SELECT config_hash FROM models WHERE name = 'on-c100'").column("config_hash")[0].as_py()
    assert config == "c100"
    with cat.writer() as w:  # one ingest run per task
        for dataset, chash in (("cifar10", "c10"), ("cifar100", "c100")):
            w.start_run(f"run-{chash}", "nb201", chash, {"values": {"dataset": dataset}}, 12, dataset)
            w.finish_run(f"run-{chash}", "finished", 12, 0, 0)
    # The report shows the tasks side by side: per-task ρ, average ranks, profiles, a heatmap per task.
    r = cli("report", "--store", tmp_path, "--out", tmp_path / "report.html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert 'id="tasks"' in page and "nb201 cifar100 (cifar100_valid, n=12)" in page
    assert "nb201 cifar10 (cifar10_valid, n=12)" in page and "Performance profiles (Dolan-Moré)" in page
    provenance = page.split('id="metadata"')[1]
    assert "run-c10" in provenance and "run-c100" in provenance  # every task's run, not only the first


def test_performance_profiles_follow_dolan_and_more():
    from zcpipe.pipeline.reports.tasks import performance_profiles

    rho = {"t1": {"a": 0.8, "b": 0.6}, "t2": {"a": 0.5, "b": 0.75}}
    prof = performance_profiles(rho, ["a", "b"])
    tau = prof["tau"]
    share = dict(zip(tau, prof["share"]["a"], strict=True))
    # a is best on t1 (ratio 1) and on t2 costs 0.5 against the best 0.25: ratio 2
    assert share[1.0] == 0.5 and share[1.95] == 0.5 and share[2.0] == 1.0
    assert prof["share"]["b"][0] == 0.5 and prof["share"]["b"][-1] == 1.0  # b: ratio 2 on t1 (0.4 / 0.2)

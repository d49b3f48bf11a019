"""Ground truth: the shared plain files import whole; the official formats are read from small files
written here in the benchmarks' own structures."""

import bz2
import json
import pickle

import numpy as np
import pytest
import torch

from tests.conftest import NB201_LABELS, SHARED_DATA
from tests.helpers import cli, commit_arch_rows
from zcpipe.pipeline.labels import LabelFormatError, import_labels
from zcpipe.store import Catalog

A0 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
A1 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _count(store, where=""):
    return Catalog(store).query(f"SELECT count(*) AS n, count(DISTINCT arch) AS a FROM labels {where}").to_pylist()[0]


def test_shared_plain_files_import_without_losing_a_row(tmp_path):
    assert import_labels(str(tmp_path), "nb201", str(NB201_LABELS)).rows == 4 * 15625
    nb101 = import_labels(str(tmp_path), "nb101", str(SHARED_DATA / "nb101" / "labels.jsonl"))
    assert import_labels(str(tmp_path), "nds-darts", str(SHARED_DATA / "darts" / "labels.jsonl")).rows == 725
    import_labels(str(tmp_path), "nb101", str(SHARED_DATA / "nb101" / "labels.jsonl"))  # again: idempotent
    assert _count(tmp_path, "WHERE space = 'nb201' AND label = 'cifar10_valid'") == {"n": 15625, "a": 15625}
    # NB101 repeats isomorphic cells (e.g. 55 specs prune to input->output): 500 rows, 292 cells, each cell
    # one row holding the mean of its rows, and the report says so.
    assert (nb101.rows, nb101.rows + nb101.merged) == (292, 500)
    assert _count(tmp_path, "WHERE space = 'nb101'") == {"n": 292, "a": 292}
    assert _count(tmp_path, "WHERE space = 'nds-darts'") == {"n": 725, "a": 725}
    best = (
        Catalog(tmp_path)
        .query(
            "SELECT arch, value, epochs, seed_agg FROM labels WHERE label = 'cifar10_test' ORDER BY value DESC LIMIT 1"
        )
        .to_pylist()[0]
    )
    assert best["value"] == pytest.approx(94.3733) and best["epochs"] == 200 and best["seed_agg"] == "mean over seeds"


def test_archs_labeled_joins_statistics_with_labels(tmp_path):
    rows = [
        {
            "space": "nb201",
            "arch": a,
            "config_hash": "c",
            "run_id": "r",
            "shard_id": "s",
            "status": "ok",
            "synflow": float(i),
        }
        for i, a in enumerate([A0, A1])
    ]
    cat = commit_arch_rows(tmp_path, "nb201", rows, ["synflow"])
    import_labels(str(tmp_path), "nb201", str(NB201_LABELS))
    got = cat.query("SELECT arch, synflow, value FROM archs_labeled WHERE label = 'cifar10_test' ORDER BY arch")
    assert got.num_rows == 2
    import csv

    truth = {r["arch"]: float(r["cifar10_test"]) for r in csv.DictReader(open(NB201_LABELS))}
    assert {r["arch"]: r["value"] for r in got.to_pylist()} == {A0: truth[A0], A1: truth[A1]}


def _results(epochs, dataset_evals: dict) -> dict:
    """An ArchResults state dict as NAS-Bench-201 / NATS-Bench store it."""
    all_results = {}
    for (dataset, seed), evals in dataset_evals.items():
        all_results[(dataset, seed)] = {
            "name": dataset,
            "seed": seed,
            "epochs": epochs,
            "train_acc1es": {epochs - 1: 99.0},
            "eval_names": sorted({k.split("@")[0] for k in evals}),
            "eval_acc1es": evals,
            "params": {dataset: 0.8},
            "flop": {dataset: 100.0},
            "net_state_dict": None,
        }
    return {
        "arch_index": 0,
        "arch_str": A0,
        "all_results": all_results,
        "dataset_seed": {d: [s for (dd, s) in dataset_evals if dd == d] for d, _ in dataset_evals},
        "clear_net_done": True,
    }


FULL = _results(
    200,
    {
        ("cifar10-valid", 777): {"x-valid@199": 90.0, "x-valid@100": 10.0},
        ("cifar10-valid", 888): {"x-valid@199": 92.0},
        ("cifar10", 777): {"ori-test@199": 93.5},
    },
)
LESS = _results(12, {("cifar10-valid", 777): {"x-valid@11": 70.0}})


def _by_label(store):
    rows = Catalog(store).query("SELECT label, epochs, value, seed_agg FROM labels ORDER BY label, epochs")
    return [(r["label"], r["epochs"], r["value"], r["seed_agg"]) for r in rows.to_pylist()]


def test_nb201_pth_needs_trust_and_reads_final_epoch_means(tmp_path):
    path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save(
        {
            "meta_archs": [A0],
            "arch2infos": {0: {"less": LESS, "full": FULL}},
            "evaluated_indexes": [0],
            "total_archs": 1,
        },
        path,
    )
    with pytest.raises(LabelFormatError, match="can run code") as refused:
        import_labels(str(tmp_path / "s"), "nb201", str(path))
    assert refused.value.options == ("trust_pickle",)
    r = cli("labels", "import", "--store", tmp_path / "s", "--space", "nb201", path)
    assert r.returncode == 2 and "pass --trust-pickle" not in r.stderr and "allow it (--trust-pickle)" in r.stderr
    import_labels(str(tmp_path / "s"), "nb201", str(path), trust_pickle=True)
    assert _by_label(tmp_path / "s") == [
        ("cifar10_test", 200, 93.5, "mean of 1 seeds"),
        ("cifar10_valid", 12, 70.0, "mean of 1 seeds"),
        ("cifar10_valid", 200, 91.0, "mean of 2 seeds"),
    ]


def test_nats_tss_folder(tmp_path):
    folder = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    folder.mkdir()
    for name, obj in [
        ("meta.pickle.pbz2", {"meta_archs": [A1, A0], "evaluated_indexes": [0, 1]}),
        ("000001.pickle.pbz2", {"12": LESS, "200": FULL}),
    ]:
        with bz2.open(folder / name, "wb") as f:
            pickle.dump(obj, f)
    import_labels(str(tmp_path / "s"), "nb201", str(folder), trust_pickle=True)
    rows = Catalog(tmp_path / "s").query("SELECT DISTINCT arch FROM labels").to_pylist()
    assert rows == [{"arch": A0}]
    assert ("cifar10_valid", 200, 91.0, "mean of 2 seeds") in _by_label(tmp_path / "s")


def test_nds_json_stores_accuracy_from_top1_error(tmp_path):
    genotype = {
        "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4,
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1]] * 4,
        "reduce_concat": [2, 3, 4, 5],
    }
    models = [
        {
            "net": {"genotype": genotype, "width": 16, "depth": 20, "aux": False},
            "train_ep_top1": [60.0, 20.0, 8.0],
            "test_ep_top1": [55.0, 15.0, 6.25],
        }
    ]
    path = tmp_path / "DARTS.json"
    path.write_text(json.dumps(models))
    import_labels(str(tmp_path / "s"), "nds-darts", str(path))
    row = Catalog(tmp_path / "s").query("SELECT label, value, epochs, detail FROM labels").to_pylist()[0]
    assert row == {"label": "cifar10_test", "value": 93.75, "epochs": 3, "detail": "width=16,depth=20"}


def test_nas_bench_suite_zero_json(tmp_path):
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(
        json.dumps(
            {
                "cifar10": {
                    "(2, 2, 0, 2, 2, 2)": {"id": 6111, "val_accuracy": 91.6, "synflow": {"score": 1.0, "time": 0.1}}
                }
            }
        )
    )
    import_labels(str(tmp_path / "s"), "nb201", str(path))
    row = Catalog(tmp_path / "s").query("SELECT arch, label, value FROM labels").to_pylist()[0]
    assert row == {"arch": A0, "label": "cifar10_valid", "value": 91.6}


def test_unparseable_rows_fail_the_whole_import(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(f"arch,cifar10_test\n{A0},90\n|junk|,80\n")
    with pytest.raises(LabelFormatError, match=r"bad\.csv:3"):
        import_labels(str(tmp_path / "s"), "nb201", str(path))
    with pytest.raises(FileNotFoundError):
        Catalog(tmp_path / "s").query("SELECT * FROM labels")


def test_the_cookbook_spearman_sql_matches_scipy(tmp_path):
    """The SQL cookbook's query is what users copy: run it and compare with scipy on the same rows."""
    import csv
    import re

    from scipy.stats import spearmanr

    from tests.conftest import ROOT

    readme = (ROOT / "docs" / "sql.md").read_text()
    sql = re.search(r"<!-- sql:spearman -->\n```sql\n(.+?)```", readme, re.S).group(1)
    truth = {r["arch"]: float(r["cifar10_valid"]) for r in csv.DictReader(open(NB201_LABELS))}
    archs = sorted(truth)[:60]
    rng = np.random.default_rng(0)
    names = ["synflow", "snip", "grad_norm", "fisher", "grasp", "params", "flops"]
    rows = []
    for a in archs:
        r = {"space": "nb201", "arch": a, "config_hash": "c", "run_id": "r", "shard_id": "s", "status": "ok"}
        r.update({n: float(truth[a] + rng.normal(0, 3)) for n in names})
        r["flops"] = float(rng.integers(0, 5))  # heavy ties
        rows.append(r)
    cat = commit_arch_rows(tmp_path, "nb201", rows, names)
    import_labels(str(tmp_path), "nb201", str(NB201_LABELS))
    got = {r["proxy"]: r["spearman"] for r in cat.query(sql).to_pylist()}
    for n in names:
        expect = spearmanr([r[n] for r in rows], [truth[r["arch"]] for r in rows]).statistic
        assert got[n] == pytest.approx(expect, abs=1e-3), n


def test_each_file_name_finds_its_registered_reader_and_the_help_lists_them_all(tmp_path):
    from zcpipe.pipeline.labels import detect_format, formats

    names = {"a.csv": "csv", "a.jsonl": "jsonl", "NAS-Bench-201-v1_1-096897.pth": "nb201-pth",
             "nasbench_full.tfrecord": "nb101-tfrecord", "DARTS.json": "nds-json",
             "zc_nasbench201.json": "zc-json"}  # fmt: skip
    assert {name: detect_format(tmp_path / name) for name in names} == names
    assert detect_format(tmp_path) == "nats-tss"  # a folder
    assert sorted({*names.values(), "nats-tss"}) == formats()[1:]  # every registered format is detectable
    with pytest.raises(LabelFormatError, match=r"cannot tell the format of .*a\.txt; name it"):
        detect_format(tmp_path / "a.txt")
    with pytest.raises(LabelFormatError, match=r"unknown label format 'xls' \(`format`\); choose one of: csv"):
        import_labels(str(tmp_path), "nb201", str(NB201_LABELS), fmt="xls")
    help_text = " ".join(cli("labels", "import", "--help").stdout.split())
    assert " | ".join(formats()) in help_text.replace("│ ", "").replace(" │", "")

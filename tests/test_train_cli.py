"""The training stage's CLI contract on the shared 3,000-cell NB201 store: train -> evaluate -> predict
-> search, the `models` and `predictions` views, and one-line errors for bad input."""

import json
import re

import pytest

from tests.helpers import cli
from zcpipe.store import Catalog

pytestmark = pytest.mark.slow


def run(*args, ok=True):
    out = cli(*args)
    assert (out.returncode == 0) == ok, out.stderr
    return out


def test_train_evaluate_predict_search(ref_store):
    store, _ = ref_store
    out = run("train", "--store", store, "--space", "nb201", "--predictor", "parzc", "--target", "cifar10_valid",
              "--train-size", 156, "--seed", 0, "--name", "cli-parzc", "--hp", "max_steps=300")  # fmt: skip
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"kendall (\S+) spearman (\S+) n_test (\d+)", last)
    assert m and int(m[3]) == 3000 - 156 and float(m[1]) > 0.45, last

    ev = json.loads(run("evaluate", "--store", store, "--model", "cli-parzc", "--format", "json").stdout)
    assert ev["n_test"] == 2844 and ev["kendall"] == pytest.approx(float(m[1]), abs=0.01)  # MC draws differ
    row = Catalog(store).query("SELECT predictor, train_size, seed, n_test, config_hash FROM models "
                               "WHERE name = 'cli-parzc'").to_pylist()  # fmt: skip
    assert row == [{"predictor": "parzc", "train_size": 156, "seed": 0, "n_test": 2844,
                    "config_hash": "b73d81fda35aaef5"}]  # fmt: skip

    run("predict", "--store", store, "--model", "cli-parzc")
    scored = Catalog(store).query("SELECT count(*) AS n, count(score_std) AS s FROM predictions "
                                  "WHERE model = 'cli-parzc'").to_pylist()  # fmt: skip
    assert scored == [{"n": 3000, "s": 3000}]

    top = json.loads(run("search", "--store", store, "--model", "cli-parzc", "--top-k", 3, "--format", "json").stdout)
    assert [r["rank"] for r in top] == [1, 2, 3] and all("cifar10_valid" in r for r in top)
    assert top[0]["score"] >= top[1]["score"] >= top[2]["score"]

    listing = run("predictors").stdout
    assert "parzc-notokenmix" in listing and "proxy:<name>" in listing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--predictor", "parzc2", "--target", "cifar10_valid", "--train-size", 10], "unknown predictor 'parzc2'"),
        (["--predictor", "gbdt", "--target", "cifar10_tst", "--train-size", 10], "no 'cifar10_tst' labels"),
        (["--predictor", "gbdt", "--target", "cifar10_valid", "--train-size", 3000], "leaves no test cell"),
        (["--predictor", "gbdt", "--target", "cifar10_valid", "--train-size", 10, "--hp", "depth=3"], "no option"),
    ],
)
def test_bad_training_input_is_a_one_line_error(ref_store, args, message):
    store, _ = ref_store
    out = run("train", "--store", store, "--space", "nb201", *args, ok=False)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr


def test_a_space_without_statistics_and_an_unknown_model_are_one_line_errors(ref_store):
    store, _ = ref_store
    out = run("train", "--store", store, "--space", "nb101", "--predictor", "gbdt", "--target", "cifar10_valid",
              "--train-size", 10, ok=False)  # fmt: skip
    assert "no statistics for space 'nb101'" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run("evaluate", "--store", store, "--model", "nope", ok=False)
    assert "no model 'nope'" in out.stderr and len(out.stderr.strip().splitlines()) == 1

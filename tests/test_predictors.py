"""Predictors on real statistics (the shared 3,000-cell NB201 store) and their building blocks."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from scipy import stats

from zcpipe.predictors import FeatureMismatchError, HyperParameterError, UnknownPredictorError, get_predictor
from zcpipe.predictors.features import nodewise_input
from zcpipe.predictors.losses import diff_kendall
from zcpipe.predictors.protocol import ProtocolError, carve_validation, split
from zcpipe.predictors.zeroshot import copeland

FAST = {"max_steps": 300}  # enough to learn; keeps the suite inside its budget


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diff_kendall_tends_to_kendall_tau_for_large_alpha(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=12), rng.normal(size=12)  # continuous: no ties, so τ-a = τ-b
    got = diff_kendall(torch.tensor(x), torch.tensor(y), alpha=1e6).item()
    assert got == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-9)
    smooth = diff_kendall(torch.tensor(x), torch.tensor(y), alpha=0.5).item()
    assert abs(smooth) < abs(got) or got == 0  # a finite α shrinks every pair's ±1 toward 0


def test_copeland_counts_majority_wins():
    # three voters over three candidates: a beats b 2-1, a beats c 2-1, c beats b 2-1
    scores = np.array([[3, 3, 1], [1, 2, 2], [2, 1, 3]], dtype=float)
    assert copeland(scores, chunk=2).tolist() == [2, 0, 1]


def test_split_is_seeded_disjoint_and_complete():
    tr, te = split(100, 10, seed=3)
    assert len(tr) == 10 and len(te) == 90 and not set(tr) & set(te) and set(tr) | set(te) == set(range(100))
    assert np.array_equal(split(100, 10, seed=3)[0], tr) and not np.array_equal(split(100, 10, seed=4)[0], tr)
    fit, val = carve_validation(tr, 0.2, seed=3)
    assert set(fit) | set(val) == set(tr) and not set(fit) & set(val)
    with pytest.raises(ProtocolError, match="leaves no test cell"):
        split(100, 100, seed=0)


def test_nodewise_input_is_minmax_within_each_arch_with_a_mask_channel(ref_data):
    x = nodewise_input(ref_data, ["synflow", "snip"])
    assert x.shape == (3000, 3, 188) and x.dtype == np.float32
    present = ref_data.mask
    assert np.array_equal(x[:, 2] == 1, present)
    assert (x[:, :2][~np.broadcast_to(present[:, None], (3000, 2, 188))] == 0).all()
    on = np.where(present[:, None], x[:, :2], np.nan)
    raw = ref_data.nodewise[:, [ref_data.proxies.index("synflow"), ref_data.proxies.index("snip")]]
    varies = np.nanmax(raw, axis=2) > np.nanmin(raw, axis=2)  # e.g. synflow is 0 everywhere if a cell cuts the path
    assert varies.mean() > 0.9
    np.testing.assert_allclose(np.nanmax(on, axis=2)[varies], 1.0)
    np.testing.assert_allclose(np.nanmin(on, axis=2)[varies], 0.0)
    assert (np.nanmax(on, axis=2)[~varies] == 0).all()  # a constant profile carries nothing: 0


def _tau(pred, data):
    return stats.kendalltau(pred.score, data.labels).statistic


@pytest.fixture(scope="module")
def splits(ref_data):
    tr, te = split(len(ref_data), 156, seed=0)
    return ref_data.subset(tr), ref_data.subset(te[:600])


def test_parzc_learns_from_real_statistics_and_shuffled_labels_do_not(splits):
    train, test = splits
    model = get_predictor("parzc", **FAST)
    model.fit(train, seed=0)
    tau = _tau(model.predict(test), test)
    shuffled = dataclasses.replace(train, labels=np.random.default_rng(0).permutation(train.labels))
    control = get_predictor("parzc", **FAST)
    control.fit(shuffled, seed=0)
    tau_control = _tau(control.predict(test), test)
    assert tau > 0.45 and tau > tau_control + 0.3, (tau, tau_control)


def test_monte_carlo_averaging_reduces_prediction_variance(splits):
    train, test = splits
    model = get_predictor("parzc", **FAST)
    model.fit(train, seed=0)
    sub = dataclasses.replace(test.subset(range(50)))

    def spread(k):
        model.hparams["mc_samples"] = k
        draws = np.stack([model.predict(sub).score for _ in range(12)])
        return draws.var(axis=0).mean()

    one, many = spread(1), spread(16)
    assert many < one / 4, (one, many)  # ~1/16 in theory
    model.hparams["mc_samples"] = 16
    assert (model.predict(sub).std > 0).all()


def test_a_model_refuses_statistics_of_another_configuration(splits):
    train, test = splits
    model = get_predictor("gbdt")
    model.fit(train, seed=0)
    other = dataclasses.replace(test, config_hash="0123456789abcdef")
    with pytest.raises(FeatureMismatchError, match="config_hash b73d81fda35aaef5"):
        model.predict(other)


@pytest.mark.parametrize("name", ["gbdt", "parzc-nobayes", "mlp", "vote", "proxy:synflow"])
def test_export_and_restore_give_the_same_scores(splits, name):
    train, test = splits
    model = get_predictor(name, **(FAST if name in ("parzc-nobayes", "mlp") else {}))
    if model.trainable:
        model.fit(train, seed=0)
    tensors, meta = model.export()
    again = get_predictor(name, **model.hparams)
    again.restore(tensors, meta)
    np.testing.assert_array_equal(again.predict(test).score, model.predict(test).score)


def test_bad_predictor_names_and_options_are_one_line_errors():
    with pytest.raises(UnknownPredictorError, match="choose one of: gbdt, graf, mlp, parzc"):
        get_predictor("parzc2")
    with pytest.raises(HyperParameterError, match="has no option lrr"):
        get_predictor("parzc", lrr=0.1)
    with pytest.raises(HyperParameterError, match="labels='ranks': choose raw, zscore or rank"):
        get_predictor("graf", labels="ranks")


def test_training_loops_end_and_batch_size_one_is_refused():
    """batch_size=1 used to `continue` forever inside `while step < total`; now it is refused before training,
    and the shared loop makes exactly `total` steps whatever the remainder."""
    import io

    from zcpipe.predictors.loop import FitProgress, TrainingLoopError, run_steps

    with pytest.raises(TrainingLoopError, match="batch_size must be at least 2, got 1"):
        run_steps("parzc", 10, 1, 5, lambda: np.arange(10), lambda idx: 0.0)
    seen = []
    losses = run_steps("parzc", 5, 4, 7, lambda: np.arange(5), lambda idx: seen.append(len(idx)) or 1.0)
    assert len(losses) == 7 and set(seen) == {4}  # the one-cell remainder of each epoch is skipped
    out = io.StringIO()  # not a terminal: lines, not a bar
    progress = FitProgress(3, "fit parzc", stream=out)
    progress.update(0.7)  # too soon for a line
    assert out.getvalue() == ""
    progress.t0 = progress.last_log = progress.t0 - 10  # as if the fit had run 10 s: the first line is due
    progress.update(0.5)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("fit parzc: step 2/3 (67%), loss 0.5000, 10s elapsed, ETA 5s")
    assert lines[1].startswith("fit parzc: step 2/3")


def test_graph_features_of_a_hand_checked_nb201_cell():
    """in -> conv3x3 -> skip -> pool -> out and in -> conv1x1 -> out are the live paths; both `none` edges
    (in -> node 2, node 1 -> node 3) carry nothing."""
    from zcpipe.pipeline.graph_rows import graph_rows
    from zcpipe.predictors.graph_features import graph_features
    from zcpipe.store.graph_reader import graph_set
    from zcpipe.workers.spaces import get_space

    cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|"
    names, x = graph_features(graph_set(graph_rows(get_space("nb201"), [(cell, cell)])))
    f = dict(zip(names, x[0], strict=True))
    assert (f["longest_path"], f["shortest_path"], f["log_paths"]) == (3, 1, pytest.approx(np.log(3)))
    assert (f["output_in_degree"], f["input_out_degree"]) == (2, 2)  # conv1x1 and pool in; conv3x3 and conv1x1 out
    assert (f["count:none"], f["on_path:none"], f["on_path:skip_connect"]) == (2, 0, 1)
    assert (f["count:avg_pool_3x3@depth3+"], f["count:none@depth2"], f["count:nor_conv_1x1@depth1"]) == (1, 1, 1)
    # Paths through one kind of operator alone, and through every kind but one.
    assert (f["only:nor_conv_1x1:longest_path"], f["only:nor_conv_3x3:longest_path"]) == (1, 0)
    assert (f["no:nor_conv_1x1:shortest_path"], f["no:skip_connect:longest_path"]) == (3, 1)
    assert f["no:skip_connect:log_paths"] == pytest.approx(np.log(2))


def test_a_darts_genotype_gets_graph_features_per_cell_type_beside_the_merged_ones():
    """A DARTS genotype's graph holds its normal and its reduction cell: each gets its own features (the
    merged counts are their sums), in node order; NB201's one cell gets none."""
    from zcpipe.pipeline.graph_rows import graph_rows
    from zcpipe.predictors.graph_features import graph_features
    from zcpipe.store.graph_reader import graph_set
    from zcpipe.workers.spaces import get_space

    normal = [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0], ["sep_conv_3x3", 1],
              ["skip_connect", 0], ["dil_conv_3x3", 2], ["sep_conv_5x5", 0], ["skip_connect", 3]]  # fmt: skip
    reduce = [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
              ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]]  # fmt: skip
    arch = json.dumps({"normal": normal, "reduce": reduce})
    names, x = graph_features(graph_set(graph_rows(get_space("nds-darts"), [(arch, arch)])))
    f = dict(zip(names, x[0], strict=True))
    assert (f["cell0:count:sep_conv_3x3"], f["cell1:count:sep_conv_3x3"], f["count:sep_conv_3x3"]) == (3, 0, 3)
    assert (f["cell0:count:max_pool_3x3"], f["cell1:count:max_pool_3x3"]) == (0, 5)
    assert (f["cell0:count:skip_connect"], f["cell1:count:skip_connect"], f["count:skip_connect"]) == (3, 3, 6)
    # separable convolutions alone reach the output in one step in the normal cell (nodes 2 and 3, both
    # concatenated), and not at all in the reduction cell, which has none
    assert f["cell0:only:sep_conv_3x3:longest_path"] == 1 and f["cell1:only:sep_conv_3x3:longest_path"] == 0
    nb201, _ = graph_features(
        graph_set(
            graph_rows(get_space("nb201"), [("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",) * 2])
        )
    )
    assert not any(n.startswith("cell") for n in nb201)


@pytest.fixture(scope="module")
def graph_splits(ref_store):
    """156 training and 600 test cells whose statistics come with their operator graphs."""
    from zcpipe.pipeline.training.fit import load_data

    data = load_data("statistics+graphs", ref_store[0], ["nb201"], "cifar10_valid", None)
    tr, te = split(len(data), 156, seed=0)
    return data.subset(tr), data.subset(te[:600])


@pytest.mark.parametrize(
    ("name", "hparams"),
    [
        ("gbdt", {"features": "zc,graph"}),
        ("mlp", {"graph": True, **FAST}),
        ("parzc", {"graph": True, "mc_samples": 0, **FAST}),  # posterior mean: deterministic scores
    ],
)
def test_graph_features_reach_the_statistics_predictors(graph_splits, name, hparams):
    """With graph features on, a predictor asks the training stage for the cells' graphs, reads them (the
    scores move when the test cells' graphs are swapped among themselves), ranks, and keeps what it needs to
    read them again with the model; without the graphs it says how to get them."""
    from zcpipe.store.tensor_reader import TrainingDataError

    train, test = graph_splits
    model = get_predictor(name, **hparams)
    assert model.input_kind == "statistics+graphs" and get_predictor(name).input_kind == "statistics"
    model.fit(train, seed=0)
    scores = model.predict(test).score
    assert _tau(model.predict(test), test) > 0.5
    swapped = dataclasses.replace(test, graphs=test.graphs.subset(np.roll(np.arange(len(test)), 1)))
    assert not np.allclose(model.predict(swapped).score, scores, rtol=1e-3, atol=1e-6)
    tensors, meta = model.export()
    again = get_predictor(name, **model.hparams)
    again.restore(tensors, json_round_trip(meta))
    np.testing.assert_allclose(again.predict(test).score, scores, rtol=1e-6)
    with pytest.raises(TrainingDataError, match="graph features need the cells' operator graphs"):
        model.predict(dataclasses.replace(test, graphs=None))


def test_gbdt_reads_only_the_whole_network_proxies_it_is_told_to(graph_splits):
    """`zc_proxies` picks columns by name (the rest of the configuration is not read: scrambling it changes
    nothing), keeps them with the model, and an unknown name is a one-line error naming what is there."""
    from zcpipe.predictors.base import FeatureMismatchError

    train, test = graph_splits
    model = get_predictor("gbdt", zc_proxies="nwot,synflow", n_estimators=50)
    model.fit(train, seed=0)
    assert model.columns == ["zc:nwot", "zc:synflow"]
    scores = model.predict(test).score
    keep = [test.scalar_names.index(n) for n in ("nwot", "synflow")]
    noise = np.random.default_rng(0).normal(size=test.scalars.shape)
    noise[:, keep] = 0
    np.testing.assert_array_equal(model.predict(dataclasses.replace(test, scalars=test.scalars + noise)).score, scores)
    again = get_predictor("gbdt", **model.hparams)
    tensors, meta = model.export()
    again.restore(tensors, json_round_trip(meta))
    np.testing.assert_array_equal(again.predict(test).score, scores)
    with pytest.raises(FeatureMismatchError, match=r"zc_proxies='meco': meco not among .*nwot"):
        get_predictor("gbdt", zc_proxies="meco").fit(train, seed=0)


def json_round_trip(meta):
    import json

    return json.loads(json.dumps(meta))

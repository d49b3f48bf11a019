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
from zcpipe.predictors import Predictor, get_predictor, rank_metrics
from zcpipe.predictors.protocol import split
from zcpipe.store import Catalog
from zcpipe.store.models import ModelError, check_name, commit_model, model_dir, stage_model, unused_name
from zcpipe.store.training import TrainingSet, load_training_set

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
    space: str
    predictor: str
    target: str
    train_size: int
    seed: int = 0
    name: str | None = None
    config_hash: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name is not None:
            check_name(self.name)
        get_predictor(self.predictor, **self.hparams)  # unknown predictor or option: one-line error now

    def default_name(self) -> str:
        return f"{self.predictor.replace(':', '-')}-{self.space}-{self.target}-n{self.train_size}-s{self.seed}"


@dataclass
class TrainResult:
    name: str
    metrics: dict[str, float]
    fit_cpu_seconds: float
    artifact: Path

    def summary(self) -> str:
        m = self.metrics
        return f"kendall {m['kendall']:.4f} spearman {m['spearman']:.4f} n_test {m['n']}"


def train(cfg: TrainConfig) -> TrainResult:
    data = load_training_set(cfg.store, cfg.space, target=cfg.target, config_hash=cfg.config_hash)
    train_idx, test_idx = split(len(data), cfg.train_size, cfg.seed)
    predictor = get_predictor(cfg.predictor, **cfg.hparams)
    if predictor.trainable and cfg.train_size < 2:
        raise ModelError(f"predictor {cfg.predictor!r} learns from labels: --train-size must be at least 2")
    t0 = time.process_time()
    fit_log = predictor.fit(data.subset(train_idx), seed=cfg.seed) if predictor.trainable else {}
    fit_cpu = time.process_time() - t0
    test = data.subset(test_idx)
    metrics = rank_metrics(predictor.predict(test).score, test.labels)
    name = cfg.name or unused_name(cfg.store, cfg.default_name())
    config = {
        "name": name,
        "train": {**asdict(cfg), "store": None, "name": name},
        "predictor": cfg.predictor,
        "hparams": predictor.hparams,
        "space": data.space,
        "config_hash": data.config_hash,
        "target": cfg.target,
        "train_size": cfg.train_size,
        "seed": cfg.seed,
        "train_archs": [data.archs[i] for i in train_idx],
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


def _save(store: str, predictor: Predictor, config: dict) -> Path:
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


def _held_out(data: TrainingSet, config: dict) -> TrainingSet:
    """Every labeled cell of `data` that the model did not train on."""
    seen = set(config["train_archs"]) if data.space == config["space"] else set()
    return data.subset([i for i, a in enumerate(data.archs) if a not in seen])


def evaluate(store: str, name: str, target: str | None = None, space: str | None = None) -> dict[str, Any]:
    predictor, config = load_model(store, name)
    space = space or config["space"]
    target = target or config["target"]
    data = load_training_set(store, space, target=target, config_hash=config["config_hash"])
    test = _held_out(data, config)
    if not len(test):
        raise ModelError(f"model {name!r} trained on every labeled {space} cell: nothing is left to evaluate")
    metrics = rank_metrics(predictor.predict(test).score, test.labels)
    return {"model": name, "space": space, "target": target, **metrics, "n_test": metrics["n"]}


def predict(store: str, name: str, space: str | None = None) -> int:
    """Score every cell of `space` with statistics under the model's configuration; commit them to
    `predictions` in one transaction (replacing this model's earlier scores for the space)."""
    predictor, config = load_model(store, name)
    space = space or config["space"]
    data = load_training_set(store, space, config_hash=config["config_hash"])
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

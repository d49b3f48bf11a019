"""A stacked predictor: two graph predictors (by default graf's trees and zc-gcn's network) whose
standardised scores are averaged with a weight chosen on the training cells alone.

The weight is chosen by K-fold cross-validation inside the training cells (each member fitted on K−1
folds, scored on the held-out fold; the weight on a grid of 0, 0.1, ..., 1 that gives the best Kendall τ
over all out-of-fold scores, ties to the most even blend), then both members are fitted on every
training cell. No test cell is ever seen: the weight is part of the fit, as a hyper-parameter chosen on
validation cells would be. Each member's score is standardised by the mean and spread of its out-of-fold
scores (on training cells it was not fitted on), so a prediction does not depend on which other cells are
predicted with it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import kendalltau

from zcpipe.predictors.base import HyperParameterError, Prediction, Predictor
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.store.graph_reader import GraphSet

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


@PREDICTORS.register(
    "stack", summary="graf + zc-gcn, standardised scores averaged with a weight chosen by CV on the training cells"
)
class Stack(Predictor):
    input_kind: str = "graphs+statistics"
    defaults: ClassVar[dict[str, Any]] = {"members": "graf,zc-gcn", "folds": 4}

    def __init__(self, **hparams: Any):
        # "member.option=value" sets a member's option (e.g. zc-gcn.max_steps=300); the rest are the stack's.
        own = {k: v for k, v in hparams.items() if "." not in k}
        super().__init__(**own)
        names = [m for m in str(self.hparams["members"]).split(",") if m]
        if len(names) != 2 or "stack" in names:
            raise HyperParameterError(f"stack members={self.hparams['members']!r}: name two other predictors")
        if int(self.hparams["folds"]) < 2:
            raise HyperParameterError(f"stack folds={self.hparams['folds']!r}: at least 2")
        self.member_hp: dict[str, dict[str, Any]] = {n: {} for n in names}
        for key, value in hparams.items():
            if "." in key:
                member, _, option = key.partition(".")
                if member not in self.member_hp:
                    raise HyperParameterError(f"stack option {key!r}: {member!r} is not a member ({', '.join(names)})")
                self.member_hp[member][option] = value
        self.hparams |= {k: v for k, v in hparams.items() if "." in k}  # saved with the model
        self.members = [PREDICTORS.get(n)(**self.member_hp[n]) for n in names]
        wrong = [m.name for m in self.members if m.input_kind != self.input_kind]
        if wrong:
            raise HyperParameterError(f"stack members must read graphs and statistics; {', '.join(wrong)} do not")
        self.weight = 0.5
        self.scale: list[tuple[float, float]] = []

    def reads_nodewise(self) -> bool:
        return False

    def fit(self, train: GraphSet, *, seed: int) -> dict[str, Any]:  # type: ignore[override]
        if train.labels is None:
            raise ValueError("fit needs a GraphSet loaded with a target label")
        folds = int(self.hparams["folds"])
        order = np.random.default_rng(seed).permutation(len(train))
        out_of_fold = np.zeros((2, len(train)))
        raw: list[list[np.ndarray]] = [[], []]
        for k in range(folds):
            held = order[k::folds]
            kept = np.setdiff1d(order, held)
            for i, member in enumerate(self.members):
                fold_model = PREDICTORS.get(member.name)(**self.member_hp[member.name])
                fold_model.fit(train.subset(kept), seed=seed + k)
                score = fold_model.predict(train.subset(held)).score
                raw[i].append(score)
                out_of_fold[i, held] = _standardise(score)
        taus = [_tau(w * out_of_fold[0] + (1 - w) * out_of_fold[1], train.labels) for w in WEIGHTS]
        best = max(taus)
        self.weight = min((w for w, t in zip(WEIGHTS, taus, strict=True) if t >= best - 1e-12),
                          key=lambda w: abs(w - 0.5))  # fmt: skip
        # Each member's scores are standardised by their spread on cells it was not fitted on (the
        # out-of-fold scores): on its own training cells a member that fits them closely spreads its
        # scores wider than on new cells, which would tilt the blend away from the chosen weight.
        self.scale = []
        for member, scores in zip(self.members, raw, strict=True):
            member.fit(train, seed=seed)
            s = np.concatenate(scores)
            self.scale.append((float(np.mean(s)), float(np.std(s)) or 1.0))
        self.fitted_on = {"members": [m.fitted_on for m in self.members]}
        return {"weight": self.weight, "cv_kendall": {str(w): round(t, 4) for w, t in zip(WEIGHTS, taus, strict=True)}}

    def check_features(self, data: GraphSet) -> None:  # type: ignore[override]
        for member in self.members:
            member.check_features(data)

    def _predict(self, data: GraphSet) -> Prediction:  # type: ignore[override]
        scores = [(m.predict(data).score - mu) / sd for m, (mu, sd) in zip(self.members, self.scale, strict=True)]
        return Prediction(self.weight * scores[0] + (1 - self.weight) * scores[1])

    def _export_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for i, member in enumerate(self.members):
            tensors, _ = member.export()
            out |= {f"m{i}.{k}": v for k, v in tensors.items()}
        return out

    def _export_meta(self) -> dict[str, Any]:
        return {"weight": self.weight, "scale": self.scale, "members": [m.export()[1] for m in self.members]}

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.weight = float(meta["weight"])
        self.scale = [tuple(s) for s in meta["scale"]]
        for i, (member, member_meta) in enumerate(zip(self.members, meta["members"], strict=True)):
            prefix = f"m{i}."
            member.restore({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, member_meta)


def _standardise(s: np.ndarray) -> np.ndarray:
    return (s - s.mean()) / (s.std() or 1.0)


def _tau(score: np.ndarray, labels: np.ndarray) -> float:
    tau = kendalltau(score, labels).statistic
    return -1.0 if np.isnan(tau) else float(tau)

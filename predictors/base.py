"""The interface every predictor implements, whether it trains (ParZC, MLP, GBDT) or not (a proxy, the vote)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from zcpipe.errors import InputError, PredictorError
from zcpipe.predictors.features import require_proxies
from zcpipe.store.tensor_reader import TrainingSet


class FeatureMismatchError(PredictorError, InputError, ValueError):
    """A fitted predictor was handed statistics of another configuration, space or slot axis."""


class HyperParameterError(PredictorError, InputError, ValueError):
    """A predictor option is unknown or has a value it cannot take."""


@dataclass(frozen=True)
class Prediction:
    score: np.ndarray  # higher = predicted better
    std: np.ndarray | None = None  # predictive std (Monte-Carlo over Bayesian weights), where the model has one


# Node-wise "proxies" that are counts, not zero-cost scores: never a default input.
_COUNTS = ("params", "flops")


def default_proxies(preferred: list[str], held: list[str]) -> list[str]:
    """The preferred proxies the data holds, in their order; failing any, every proxy it holds (counts aside)."""
    chosen = [p for p in preferred if p in held]
    return chosen or [p for p in held if p not in _COUNTS] or list(held)


class Predictor(ABC):
    """A ranker of architectures. `fit` on a labeled TrainingSet, `predict` any TrainingSet of the same
    space and configuration. `export`/`restore` round-trip it as tensors (torch.save of a state dict)
    plus JSON, never a pickled class."""

    name: ClassVar[str]
    trainable: ClassVar[bool] = True
    # What the training stage loads for it: statistics (a TrainingSet), statistics+graphs (a TrainingSet with
    # its cells' graphs), graphs, or graphs+statistics (a GraphSet). An instance may set its own from its
    # options (graph features asked for).
    input_kind: str = "statistics"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **hparams: Any):
        unknown = set(hparams) - set(self.defaults)
        if unknown:
            raise HyperParameterError(
                f"predictor {self.name!r} has no option {', '.join(sorted(unknown))}; "
                f"its options: {', '.join(sorted(self.defaults)) or 'none'}"
            )
        self.hparams = {**self.defaults, **hparams}
        self._chosen = set(hparams)  # options the user set; the rest may follow the data (see `fit`)
        self.fitted_on: dict[str, Any] | None = None

    # ------------------------------------------------------------------ contract

    def fit(self, train: TrainingSet, *, seed: int) -> dict[str, Any]:
        """Fit on `train` (labels required); returns a small training log."""
        if train.labels is None:
            raise ValueError("fit needs a TrainingSet loaded with a target label")
        self._follow_data(train)
        self.fitted_on = {"space": train.space, "config_hash": train.config_hash, "slots": train.slots}
        return self._fit(train, seed)

    def predict(self, data: TrainingSet) -> Prediction:
        self.check_features(data)
        return self._predict(data)

    def accept_statistics_of(self, config_hash: str) -> None:
        """Let this fitted predictor read statistics of another configuration of its space (another task's,
        on the same slot axis): what evaluating a model across tasks asks for, and only then."""
        self.accepted_configs = frozenset({*getattr(self, "accepted_configs", ()), config_hash})

    def reads_config(self, config_hash: str | None) -> bool:
        """Whether statistics of `config_hash` are what it was fitted on, or were accepted for it."""
        fitted = self.fitted_on or {}
        return config_hash == fitted.get("config_hash") or config_hash in getattr(self, "accepted_configs", ())

    def check_features(self, data: TrainingSet) -> None:
        fitted = self.fitted_on
        if fitted is None:
            if self.trainable:
                raise RuntimeError(f"predictor {self.name!r} is not fitted")
            return
        if data.space != fitted["space"] or not self.reads_config(data.config_hash):
            raise FeatureMismatchError(
                f"predictor {self.name!r} was trained on {fitted['space']} statistics of config_hash "
                f"{fitted['config_hash']}, not on {data.space} / {data.config_hash}: its inputs would mean something "
                "else; ingest that configuration, or train a model on this one"
            )
        if data.slots != fitted["slots"]:
            raise FeatureMismatchError(f"predictor {self.name!r} was trained on another slot axis of {data.space}")

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors for torch.save, JSON-safe state)."""
        return self._export_tensors(), {"fitted_on": self.fitted_on, **self._export_meta()}

    def restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.fitted_on = meta.get("fitted_on")
        self._restore(tensors, meta)

    # ------------------------------------------------------------------ for subclasses

    def reads_nodewise(self) -> bool:
        """Whether this predictor, as configured, reads the node-wise proxies its `proxies` option names."""
        return True

    def _follow_data(self, train: TrainingSet) -> None:
        """Options left at their default that follow the training data. The default proxy set is the store's:
        a store ingested with `--proxies synflow,snip` trains on those, not on a default it does not hold.
        Saved with the model, so predict reads the same ones. Call before anything reads `proxies`."""
        if "proxies" not in self.defaults or not hasattr(train, "proxies") or not self.reads_nodewise():
            return
        if "proxies" not in self._chosen:
            self.hparams["proxies"] = ",".join(default_proxies(self.defaults["proxies"].split(","), train.proxies))
        require_proxies(train, self.hparams["proxies"].split(","))

    def _fit(self, train: TrainingSet, seed: int) -> dict[str, Any]:
        return {}

    @abstractmethod
    def _predict(self, data: TrainingSet) -> Prediction: ...

    def _export_tensors(self) -> dict[str, torch.Tensor]:
        # A torch predictor keeps its network in `model`: its weights are what it exports.
        model = getattr(self, "model", None)
        return dict(model.state_dict()) if isinstance(model, torch.nn.Module) else {}

    def _export_meta(self) -> dict[str, Any]:
        return {}

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        return None

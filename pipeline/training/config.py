"""One fit's configuration, validated once and saved with the model (pycls style), and the
`key=value` predictor options it takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zcpipe.pipeline.errors import ConfigError
from zcpipe.pipeline.options import parse_pairs
from zcpipe.predictors import get_predictor
from zcpipe.store.model_artifacts import check_name
from zcpipe.workers.spaces import get_space


def parse_hparams(pairs: list[str]) -> dict[str, Any]:
    """Predictor options from `key=value` strings (values become int, float or bool where they read as one)."""
    return parse_pairs(pairs, "hparams", "lr=0.001")


# What a predictor may read to train on several spaces: graphs, and their whole-network proxies read as
# standings within each space (pipeline/training/graph_scores.py); node-wise statistics are per network.
CROSS_SPACE_INPUTS = ("graphs", "graphs+scores")


@dataclass(frozen=True)
class TrainConfig:
    """One fit: the predictor, its options, the label it ranks by, and which cells train it."""

    store: str
    space: str | None  # the space it is evaluated on (and trained on, unless train_spaces says otherwise)
    predictor: str
    target: str
    train_size: int | None  # cells drawn with `seed` from the training pool; None: all of it (cross-space)
    seed: int = 0
    name: str | None = None
    config_hash: str | None = None
    data: str | None = None  # the dataset whose statistics it reads, where a space has several tasks
    hparams: dict[str, Any] = field(default_factory=dict)
    train_spaces: tuple[str, ...] = ()  # graph predictors: train on these spaces' labeled graphs
    # One cell per isomorphism class of the evaluated space (`SearchSpace.isomorphism_key`): a duplicate
    # of a training cell never tests, as in GRAF's de-duplicated NB201 protocol.
    unique: bool = False

    def __post_init__(self) -> None:
        if self.name is not None:
            check_name(self.name)
        predictor = get_predictor(self.predictor, **self.hparams)  # unknown predictor or option: fail now
        for space in (*self.train_spaces, *([self.space] if self.space else [])):
            get_space(space)  # an unknown space: one-line error naming the known ones
        if self.space is None and not self.train_spaces:
            raise ConfigError(
                "`space` names the space to train on (or `train_spaces`, for graph predictors)",
                options=["space", "train_spaces"],
            )
        if self.train_spaces and predictor.input_kind not in CROSS_SPACE_INPUTS:
            raise ConfigError(
                f"`train_spaces` is for predictors that read graphs (tgnas); {self.predictor!r} reads "
                "statistics of one space",
                options=["train_spaces"],
            )
        if self.train_size is None and self.space in self.pool:
            raise ConfigError(
                f"`train_size` is needed when {self.space} is trained on: its other cells test", options=["train_size"]
            )

    @property
    def pool(self) -> tuple[str, ...]:
        return self.train_spaces or (self.space,)

    def default_name(self) -> str:
        spaces = ".".join(self.pool) + ("" if self.space in (None, *self.pool) else f"-to-{self.space}")
        size = "all" if self.train_size is None else self.train_size
        unique = "-unique" if self.unique else ""
        return f"{self.predictor.replace(':', '-')}-{spaces}-{self.target}{unique}-n{size}-s{self.seed}"

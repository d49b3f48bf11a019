"""Predictors registered by explicit name (timm style); `proxy:<name>` ranks by one stored proxy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zcpipe.errors import InputError, PredictorError
from zcpipe.predictors.base import Predictor


class UnknownPredictorError(PredictorError, InputError, ValueError):
    """No predictor is registered under that name; the message names the choices."""


@dataclass(frozen=True)
class PredictorInfo:
    name: str
    cls: type[Predictor]
    summary: str


_REGISTRY: dict[str, PredictorInfo] = {}


def register_predictor(name: str, summary: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator registering a predictor under `name` with a one-line summary."""
    def deco(cls: type[Predictor]) -> type[Predictor]:
        if name in _REGISTRY:
            raise ValueError(f"predictor {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = PredictorInfo(name, cls, summary)
        return cls

    return deco


def _load_builtin() -> None:
    # Imported on first use, so `import zcpipe.predictors` does not pull lightgbm.
    from zcpipe.predictors import gbdt, gcn, mlp, parzc, zeroshot  # noqa: F401


def available_predictors() -> list[PredictorInfo]:
    """Every registered predictor's name, class and one-line summary."""
    _load_builtin()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def get_predictor(name: str, **hparams: Any) -> Predictor:
    """A fresh predictor; `proxy:<name>` is the zero-shot ranker of that stored proxy."""
    _load_builtin()
    if name.startswith("proxy:"):
        proxy = name.split(":", 1)[1]
        if not proxy:
            raise UnknownPredictorError("proxy: needs a proxy name, e.g. proxy:synflow")
        return _REGISTRY["proxy"].cls(**{**hparams, "proxy": proxy})
    if name not in _REGISTRY or name == "proxy":
        choices = ", ".join(n for n in sorted(_REGISTRY) if n != "proxy")
        raise UnknownPredictorError(f"unknown predictor {name!r}; choose one of: {choices}, proxy:<name>")
    return _REGISTRY[name].cls(**hparams)

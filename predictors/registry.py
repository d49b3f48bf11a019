"""The predictor registry: `@PREDICTORS.register(name, summary=...)` on each predictor class (timm style).

`proxy:<name>` is not an entry of its own: it is the `proxy` predictor with option `proxy=<name>`,
spelled the way a user names a stored proxy (`get_predictor` in the package reads it)."""

from __future__ import annotations

from zcpipe.errors import InputError, PredictorError
from zcpipe.predictors.base import Predictor
from zcpipe.registry import Registry


class UnknownPredictorError(PredictorError, InputError, ValueError):
    """No predictor is registered under that name; the message names the choices."""


PREDICTORS: Registry[type[Predictor]] = Registry(
    "predictor", error=UnknownPredictorError, attrs={"summary": ""}, option="predictor"
)

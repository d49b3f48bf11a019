"""MLP baseline on the same node-wise input as ParZC (flattened), trained with the same loss:
it isolates what the Mixer and the Bayesian layers add."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch.nn as nn

from zcpipe.predictors.features import nodewise_input
from zcpipe.predictors.proxy_sets import PAPER_PROXIES
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.predictors.torch_ranker import TRAINING_DEFAULTS, TorchRanker
from zcpipe.store.tensor_reader import TrainingSet


@PREDICTORS.register("mlp", summary="MLP on flattened node-wise proxies (ParZC's input), DiffKendall loss")
class NodewiseMLP(TorchRanker):
    defaults: ClassVar[dict[str, Any]] = {
        **TRAINING_DEFAULTS,
        "proxies": ",".join(PAPER_PROXIES),
        "transform": "none",
        "align": "slot",  # slot: column s is the same layer position everywhere; position: the reference's padding
        "hidden": "256,128",
        "dropout": 0.1,
        "graph": False,  # beyond ParZC: the cell graph's features as more inputs (predictors/graph_features.py)
    }

    def inputs(self, data: TrainingSet) -> np.ndarray:
        x = nodewise_input(data, self.hparams["proxies"].split(","), self.hparams["transform"], self.hparams["align"])
        graph = self.graph_tokens(data, x.shape[1], 1)
        return x if graph is None else np.concatenate([x, graph], axis=2)

    def build(self, input_shape: tuple[int, ...]) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in (int(v) for v in str(self.hparams["hidden"]).split(",")):
            layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(self.hparams["dropout"])]
            width = h
        layers.append(nn.Linear(width, 1))
        return nn.Sequential(*layers)

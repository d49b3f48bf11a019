"""ParZC (Dong et al., "ParZC: Parametric Zero-Cost Proxies for Efficient NAS"): the Mixer Architecture
with Bayesian Network (MABN) over node-wise statistics, trained with DiffKendall.

Input: for each chosen proxy its node vector on the space's slot axis, min-max normalised within the
architecture, plus a mask channel (`features.nodewise_input`). The slot axis is cut into T segments
(tokens) of `segment` slots; each token (all channels of its slots) is embedded by a Bayesian linear
layer, mixed by Mixer blocks (token mixing: an MLP across the T tokens, i.e. on the transposed
tensor; channel mixing: an MLP across features), pooled over tokens, and read out by Bayesian linear
layers. Unlike the public reference code, the token-mixing MLP really mixes tokens, the Bayesian
layers have a prior and a KL term, and prediction averages K Monte-Carlo weight samples.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from zcpipe.predictors.bayes import BayesianLinear
from zcpipe.predictors.features import nodewise_input
from zcpipe.predictors.proxy_sets import PAPER_PROXIES
from zcpipe.predictors.registry import PREDICTORS
from zcpipe.predictors.torch_ranker import TRAINING_DEFAULTS, TorchRanker
from zcpipe.store.tensor_reader import TrainingSet


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int, dropout: float, mix_tokens: bool):
        super().__init__()
        self.mix_tokens = mix_tokens
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token_mlp = MLP(tokens, token_hidden, dropout) if mix_tokens else None
        self.channel_mlp = MLP(dim, channel_hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, D]
        if self.token_mlp is not None:
            x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MABN(nn.Module):
    def __init__(
        self,
        channels: int,
        slots: int,
        *,
        segment: int,
        dim: int,
        depth: int,
        head_hidden: int,
        dropout: float,
        bayesian: bool,
        mix_tokens: bool,
        prior_std: float,
    ):
        super().__init__()
        self.segment = segment
        self.tokens = -(-slots // segment)
        self.pad = self.tokens * segment - slots

        def linear(i: int, o: int) -> nn.Module:
            return BayesianLinear(i, o, prior_std=prior_std) if bayesian else nn.Linear(i, o)

        self.embed = linear(channels * segment, dim)
        self.blocks = nn.Sequential(
            *(MixerBlock(self.tokens, dim, max(8, dim // 2), 4 * dim, dropout, mix_tokens) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.head1, self.head2 = linear(dim, head_hidden), linear(head_hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, S]
        x = F.pad(x, (0, self.pad))
        b, c, _ = x.shape
        # token t holds slots [t*segment, (t+1)*segment) of every channel
        x = x.view(b, c, self.tokens, self.segment).permute(0, 2, 1, 3).reshape(b, self.tokens, c * self.segment)
        x = self.norm(self.blocks(self.embed(x))).mean(dim=1)
        return self.head2(F.gelu(self.head1(x)))


def cell_tokens(slots: list[str]) -> np.ndarray:
    """[T, G] slot indices, one row per slot group (the slot name up to its first '/': the stem, each cell,
    the classifier), padded with -1 to the widest group. Depth-first slot order keeps groups contiguous."""
    groups: dict[str, list[int]] = {}
    for i, slot in enumerate(slots):
        groups.setdefault(slot.split("/", 1)[0], []).append(i)
    width = max(len(g) for g in groups.values())
    return np.array([g + [-1] * (width - len(g)) for g in groups.values()])


class _ParZCBase(TorchRanker):
    bayesian: ClassVar[bool] = True
    mix_tokens: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        **TRAINING_DEFAULTS,
        "proxies": ",".join(PAPER_PROXIES),
        "transform": "none",  # per-architecture min-max of the raw values, as the paper
        "align": "slot",  # slot: column s is one layer position in every arch; position: the reference's padding
        "segment": 12,  # slots per token (12: one NB201 cell's conv slots), or "cell": one token per cell
        "dim": 64,
        "depth": 2,
        "head_hidden": 64,
        "dropout": 0.1,
        "prior_std": 0.1,
        # Beyond the paper: one more token with each proxy's whole-network value (signed log, standardised
        # on the training cells), the magnitude that per-architecture min-max removes.
        "global_token": False,
        # Beyond the paper: the cell graph's features (predictors/graph_features.py), standardised on the
        # training cells, as extra tokens after the node-wise ones.
        "graph": False,
    }

    def fit(self, train: TrainingSet, *, seed: int) -> dict[str, Any]:
        self._follow_data(train)
        self._cell_width = cell_tokens(train.slots).shape[1]
        whole = self._whole_network(train)
        self._whole_mean, self._whole_std = whole.mean(0).tolist(), np.maximum(whole.std(0), 1e-8).tolist()
        return super().fit(train, seed=seed)

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._cell_width = meta["cell_width"]
        self._whole_mean, self._whole_std = meta["whole_mean"], meta["whole_std"]
        super()._restore(tensors, meta)

    def _export_meta(self) -> dict[str, Any]:
        return {
            **super()._export_meta(),
            "cell_width": getattr(self, "_cell_width", None),
            "whole_mean": self._whole_mean,
            "whole_std": self._whole_std,
        }

    def _whole_network(self, data: TrainingSet) -> np.ndarray:
        """[A, P] signed log of each chosen proxy summed over the architecture's layers."""
        idx = [data.proxies.index(p) for p in self.hparams["proxies"].split(",")]
        total = np.nansum(np.where(data.mask[:, None, :], data.nodewise[:, idx, :], np.nan), axis=2)
        return np.sign(total) * np.log1p(np.abs(total))

    def _global_token(self, data: TrainingSet, width: int) -> np.ndarray:
        """[A, C, width]: the standardised whole-network values in slot 0 of each proxy channel."""
        z = (self._whole_network(data) - np.array(self._whole_mean)) / np.array(self._whole_std)
        token = np.zeros((len(data), len(self._whole_mean) + 1, width), np.float32)
        token[:, :-1, 0] = z
        token[:, -1, 0] = 1.0  # the mask channel marks it present
        return token

    def inputs(self, data: TrainingSet) -> np.ndarray:
        x = nodewise_input(data, self.hparams["proxies"].split(","), self.hparams["transform"], self.hparams["align"])
        if self.hparams["segment"] == "cell":
            index = cell_tokens(data.slots)  # [T, G], -1 = padding
            padded = np.concatenate([x, np.zeros((*x.shape[:2], 1), x.dtype)], axis=2)
            x = padded[:, :, index.reshape(-1)]  # padding reads the zero column
        if not self.hparams["global_token"] and not self.hparams["graph"]:
            return x
        width = self._segment(x.shape[1:])
        x = np.concatenate([x, np.zeros((*x.shape[:2], -x.shape[2] % width), x.dtype)], axis=2)
        if self.hparams["global_token"]:
            x = np.concatenate([x, self._global_token(data, width)], axis=2)
        graph = self.graph_tokens(data, x.shape[1], width)
        return x if graph is None else np.concatenate([x, graph], axis=2)

    def _segment(self, input_shape: tuple[int, ...]) -> int:
        seg = self.hparams["segment"]
        return int(seg) if seg != "cell" else self._cell_width

    def build(self, input_shape: tuple[int, ...]) -> nn.Module:
        h = self.hparams
        return MABN(
            input_shape[0],
            input_shape[1],
            segment=self._segment(input_shape),
            dim=h["dim"],
            depth=h["depth"],
            head_hidden=h["head_hidden"],
            dropout=h["dropout"],
            bayesian=self.bayesian,
            mix_tokens=self.mix_tokens,
            prior_std=h["prior_std"],
        )


@PREDICTORS.register("parzc", summary="ParZC: Mixer with Bayesian layers on node-wise proxies, DiffKendall loss")
class ParZC(_ParZCBase):
    pass


@PREDICTORS.register("parzc-nobayes", summary="ParZC ablation: plain linear layers instead of Bayesian ones")
class ParZCNoBayes(_ParZCBase):
    bayesian = False


@PREDICTORS.register("parzc-notokenmix", summary="ParZC ablation: no token-mixing MLP (channel mixing only)")
class ParZCNoTokenMix(_ParZCBase):
    mix_tokens = False

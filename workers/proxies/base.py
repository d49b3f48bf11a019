"""What a proxy declares: its scope, the pass that feeds it, and its two implementations.

`standalone` is the zero-cost-nas way (its own forward/backward on a fresh copy)
and serves as the test oracle; `extract` reads the same quantity from the shared
passes the engine runs once per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn as nn

from zcpipe.workers.proxies.inputs import Batch, Need

if TYPE_CHECKING:
    from zcpipe.workers.proxies.passes import ArchInputs, DataPass

__all__ = [
    "Batch",
    "LayerScores",
    "Need",
    "PassName",
    "Proxy",
    "ProxyContext",
    "ProxyUndefined",
    "Scope",
    "value_or_raise",
]

Scope = Literal["layer", "arch"]
# data: the shared forward/backward on the batch; synflow: its own float64 pass on |θ|;
# weights: reads the weights only; zen: its own re-initialised copy; own: its own passes on a copy
# (its own input or its own split of the batch: meco, swap, zico); count: params/flops.
# Every name but data and count runs `standalone` (workers/engine.py).
PassName = Literal["data", "synflow", "weights", "zen", "own", "count"]


class ProxyUndefined(ArithmeticError):
    """The proxy has no finite value for this network; the message is the stored reason."""


@dataclass
class ProxyContext:
    layers: list[nn.Module]
    generator_seed: int
    micro_batch: int | None = None  # None: the whole batch in one pass
    extras: dict[str, object] = field(default_factory=dict)


LayerScores = list[torch.Tensor]


def value_or_raise(value: float | ProxyUndefined) -> float:
    """One architecture's entry of `Proxy.extract_archs`: its value, or its reason raised."""
    if isinstance(value, ProxyUndefined):
        raise value
    return value


class Proxy:
    """A zero-cost measure: its declared policy (scope, the pass that feeds it, what it needs) and its two
    implementations, `standalone` (the oracle) and `extract` (from the shared pass)."""

    name: str = ""
    scope: Scope = "layer"
    pass_name: PassName = "data"
    needs: tuple[Need, ...] = ()
    version: str = "1"
    # A standalone pass that honours `ProxyContext.micro_batch`, so out of memory splits it.
    splits_batch: bool = False
    # A layer proxy some of whose layers have no value by definition (MeCo's correlation of a feature map
    # with one position, ZiCo's layer whose gradients never vary): `standalone` returns NaN for them, which
    # is stored as NULL for that layer and left out of the whole-network sum, as the reference leaves it.
    undefined_layers: str | None = None  # what a NaN layer means, said in the arch's reasons
    # The batched path (workers/batched) sums `elements` over each architecture's rows of a stacked layer,
    # then applies `finish` to the sum: "sum" keeps it, "sqrt" takes its root (a norm's square root of
    # summed squares). Only passes the batched path runs for many architectures at once use it.
    finish: Literal["sum", "sqrt"] = "sum"

    def standalone(self, net: nn.Module, batch: Batch, ctx: ProxyContext) -> LayerScores | float:
        raise NotImplementedError

    def extract(self, data: DataPass) -> LayerScores | float:
        raise NotImplementedError(f"{self.name} has no shared-pass extraction")

    def extract_archs(self, inputs: ArchInputs) -> list[float | ProxyUndefined] | None:
        """A whole-network proxy's value for each of several architectures at once (`ArchInputs`: theirs
        stacked, on their device), or the reason it has none, computed with one set of kernels and one copy
        to the host for all. None: no such form, and the batched path calls `extract` per architecture."""
        return None

    def elements(self, data: DataPass) -> LayerScores:
        """Per-element scores of each layer whose sum, then `finish`, is the layer's value: what the
        batched path reduces per architecture over a stacked layer. `extract`'s tensors by default."""
        return self.extract(data)

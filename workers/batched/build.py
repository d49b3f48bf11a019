"""Which networks batch together, and the batched network for them."""

from __future__ import annotations

import torch
import torch.nn as nn

from zcpipe.workers.batched.darts import BatchedDarts
from zcpipe.workers.batched.nb201 import BatchedNB201
from zcpipe.workers.batched.network import BatchedNetwork
from zcpipe.workers.spaces.nb201 import TinyNetwork
from zcpipe.workers.spaces.nds import NetworkCIFAR


def _shape(model: nn.Module) -> tuple | None:
    """What must be equal for two networks to batch: everything but the ops their cells chose (None:
    a network the batched path does not take)."""
    if isinstance(model, TinyNetwork):
        return ("nb201", model.classifier.in_features, model.classifier.out_features, len(model.cells),
                model.stem[0].in_channels)  # fmt: skip
    if isinstance(model, NetworkCIFAR):
        cells = tuple(
            (len(c.edge_ops), tuple(c.concat), c.reduction, type(c.preprocess0).__name__) for c in model.cells
        )
        stem = model.stem[0]
        return ("darts", model.classifier.in_features, model.classifier.out_features, stem.in_channels,
                stem.out_channels, cells)  # fmt: skip
    return None


def can_batch(models: list[nn.Module]) -> bool:
    """Whether these networks can run as one batched network (NB201 networks of one shape, or DARTS-style
    networks of one width, depth and cell output)."""
    if not models:
        return False
    first = _shape(models[0])
    return first is not None and all(_shape(m) == first for m in models)


def batched_network(models: list[nn.Module], device: torch.device | str | None = None) -> BatchedNetwork:
    """The batched network of `models` (see `can_batch`), in their dtype, on `device` (theirs where None)."""
    if not can_batch(models):
        raise TypeError("the batched path takes NB201 or DARTS-style networks of one shape (see can_batch)")
    cls = BatchedNB201 if isinstance(models[0], TinyNetwork) else BatchedDarts
    return cls(models, device)

"""The contract every search space implements (see DESIGN.md, "Search spaces")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch.nn as nn

from zcpipe.errors import InputError, WorkersError


class ArchError(WorkersError, InputError, ValueError):
    """An architecture key that does not parse or does not belong to the space."""


@dataclass(frozen=True)
class ArchGraph:
    """Operator-labelled DAG of one cell (TG-NAS input): node i has op `ops[i]`, edge i->j if adj[i][j]."""

    ops: list[str]
    adjacency: np.ndarray


# Operators that pass nothing on: a path through them carries no signal from input to output.
DEAD_OPS = frozenset({"none", "zero"})


def connects(graph: ArchGraph) -> bool:
    """Whether the cell's output depends on its input: a path from node 0 (input) to the last node (output)
    through operators that are not `none`. A supernet's edge with several ops is live if any of them is."""
    adj = np.asarray(graph.adjacency)
    last = len(graph.ops) - 1
    seen, todo = {0}, [0]
    while todo:
        node = todo.pop()
        for nxt in np.flatnonzero(adj[node]):
            nxt = int(nxt)
            if nxt in seen or graph.ops[nxt] in DEAD_OPS:
                continue
            if nxt == last:
                return True
            seen.add(nxt)
            todo.append(nxt)
    return False


@dataclass(frozen=True)
class BuildOptions:
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (3, 32, 32)
    extra: dict[str, Any] = field(default_factory=dict)


def tag(layer: nn.Module, slot: str, op: str) -> nn.Module:
    """Record a weight layer's node slot and semantic op on the layer itself.

    The engine reads these attributes instead of guessing slots from module
    names, so a builder that forgets a layer fails loudly (see `layer_slots`).
    """
    layer.zc_slot = slot
    layer.zc_op = op
    return layer


WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv2d/Linear layers in module order, each with its tagged slot; raises if one is untagged."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, WEIGHT_LAYERS):
            if not hasattr(module, "zc_slot"):
                raise RuntimeError(f"weight layer {name!r} of {type(model).__name__} has no node slot")
            found.append((name, module))
    return found


class SearchSpace(ABC):
    """A registered search space. Arch keys are canonical strings; equal architectures share one."""

    name: str
    # Whether the space's networks can run many at once through the batched path (workers/batched).
    batches: bool = False

    @abstractmethod
    def parse(self, text: str) -> str:
        """Validate `text` and return the canonical arch key; raise ArchError with a hint otherwise."""

    def spec(self, text: str) -> str:
        """What `build` and `graph` take for `text`; the key itself where the key is buildable."""
        return self.parse(text)

    def key_and_spec(self, text: str) -> tuple[str, str]:
        """`(parse(text), spec(text))`, for spaces where both share one costly parse."""
        return self.parse(text), self.spec(text)

    def enumerate(self) -> Iterator[str]:
        raise ArchError(f"space {self.name!r} is not enumerable; sample it (`limit` N)", options=["limit"])

    def isomorphism_key(self, arch: str) -> str:
        """A key that equal networks share: the arch key itself, unless the space knows that some of its
        cells compute the same function (NB201's `none` and skip edges); see `unique_indices`."""
        return arch

    @abstractmethod
    def sample(self, n: int, seed: int) -> list[str]:
        """`n` distinct arch keys drawn uniformly with a seeded generator: the first n of one seeded
        sequence, so `sample(m, seed)` for m > n starts with `sample(n, seed)` (a larger `limit` only adds)."""

    @abstractmethod
    def build(self, arch: str, options: BuildOptions) -> nn.Module:
        """The network as the benchmark trained it. Its `forward` returns logits and `features`
        returns the map before global pooling; every Conv2d/Linear is tagged with a slot."""

    @abstractmethod
    def graph(self, arch: str) -> ArchGraph: ...

    def supernet_edges(self) -> list[list[str]]:
        """For a space with a supernet (every op on every edge), each edge's candidate ops, in edge order."""
        raise ArchError(f"space {self.name!r} has no supernet to prune")

    def supernet_graph(self, edge_ops: list[list[str]]) -> ArchGraph:
        """The operator graph of a supernet that keeps `edge_ops[k]` on edge k."""
        raise ArchError(f"space {self.name!r} has no supernet to prune")

    def cell_of(self, edge_ops: list[str]) -> str:
        """The arch key of the cell with one op per edge."""
        raise ArchError(f"space {self.name!r} has no supernet to prune")

    def node_slots(self, arch: str) -> list[list[str]]:
        """For each node of `graph(arch)`, the slots of the weight layers it stands for in the built
        network (all its repeats over the stacked cells); empty for nodes without weights."""
        raise ArchError(f"space {self.name!r} does not map graph nodes to slots")

    @abstractmethod
    def slots(self) -> list[str]:
        """Every node slot the space can hold, in a fixed depth-first order."""

    def params(self) -> dict[str, Any]:
        """Space parameters that change values; they enter the configuration hash."""
        return {}


def unique_indices(space: SearchSpace, archs: list[str]) -> list[int]:
    """Indices of one architecture per isomorphism class of `space`, the first in sorted arch-key order
    (so the pick does not depend on how `archs` is ordered), ascending."""
    first: dict[str, tuple[str, int]] = {}
    for i, arch in enumerate(archs):
        key = space.isomorphism_key(arch)
        if key not in first or arch < first[key][0]:
            first[key] = (arch, i)
    return sorted(i for _, i in first.values())

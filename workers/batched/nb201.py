"""B NAS-Bench-201 networks as one module (the shared machinery is `network.py`).

Every NB201 cell shares one skeleton, so the only thing that differs between architectures is which
op sits on each of the six edges: each edge is one choice (grouped by op, input fixed). The stem, the
residual blocks, the last BatchNorm and the classifier are every architecture's, one grouped layer each.
No FLOP is spent on an op an architecture did not choose (a masked supernet would spend 2-3x); the cost
is two block moves on each edge where the pass chose several ops (and their backward; `blocks.py`), and
the replicated input (`B` copies of the images, for per-architecture input gradients). The weights are
copied from the B networks the space built, so initialisation is the space's own.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from zcpipe.workers.batched.network import BatchedNetwork, Choice
from zcpipe.workers.spaces.nb201 import InferCell, ReLUConvBN, ResNetBasicBlock, TinyNetwork


class BatchedNB201(BatchedNetwork):
    """B NB201 networks (`TinyNetwork`) of equal C, N and classes, computed together."""

    def __init__(self, nets: list[TinyNetwork], device: torch.device | str | None = None):
        if not nets or not all(isinstance(n, TinyNetwork) for n in nets):
            raise TypeError("BatchedNB201 takes a non-empty list of NB201 TinyNetworks")
        super().__init__(nets, device)
        every = self._every
        self._plan: list[tuple[str, object]] = []
        for i, cell in enumerate(nets[0].cells):
            cells = [n.cells[i] for n in nets]
            if isinstance(cell, ResNetBasicBlock):
                blocks = [self._compile([getattr(c, part) for c in cells], every) for part in ("conv_a", "conv_b")]
                self._plan.append(("res", (*blocks, self._compile([c.downsample for c in cells], every))))
            elif isinstance(cell, InferCell):
                self._plan.append(("cell", [self._edge(cells, k) for k in range(len(cell.edges))]))
            else:
                raise TypeError(f"unexpected NB201 cell {type(cell).__name__}")
        self._last = self._compile([n.lastact for n in nets], every)  # BatchNorm, ReLU
        self._layer([n.classifier for n in nets], every)

    def _edge(self, cells: list[InferCell], k: int) -> Choice:
        return self._choice([(_op_name(c.edges[k]), 0, 1, c.edges[k]) for c in cells])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._run(self._stem, self._replicated(x))
        for kind, plan in self._plan:
            if kind == "res":
                conv_a, conv_b, down = plan
                x = self._run(down, x) + self._run(conv_b, self._run(conv_a, x))
            else:
                x = self._run_cell(plan, x)
        return self._run(self._last, x)

    def _run_cell(self, edges: list[Choice], x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to in (1, 2, 3):
            total = None
            for frm in range(to):
                y = self._run_choice(edges[k], [nodes[frm]])
                if y is not None:
                    total = y if total is None else total + y
                k += 1
            # Every architecture picked `none` into this node: zeros that stay in the graph, as the
            # single engine's `Zero` (x·0) does, so gradients with respect to the input are zeros, not undefined.
            nodes.append(total if total is not None else self._zeros(x, 1))
        return nodes[-1]


def _op_name(edge: nn.Module) -> str:
    if isinstance(edge, ReLUConvBN):
        return "conv3x3" if edge.op[1].kernel_size == (3, 3) else "conv1x1"
    if isinstance(edge, nn.AvgPool2d):
        return "pool"
    if isinstance(edge, nn.Identity):
        return "skip"
    return "none"

"""B DARTS-style networks (NAS-Bench-301, NDS-DARTS, NDS-PNAS) as one module (machinery: `network.py`).

A cell's two inputs are preprocessed by layers every architecture has (a 1x1 ReLU-conv-BN, or the
factorized reduction after a reduction cell): one grouped layer each. Each node sums two picks of an
(op, input state) pair, so each of a cell's 2 x nodes input slots is one choice: the architectures are
grouped by op, and each group takes its inputs' blocks of the states it may read (concatenated once
for the slot; `blocks.py`). In a reduction cell an op on a cell input has
stride 2 and one on a node stride 1, so a slot's picks form up to two parts, one per input shape.
The output concatenates the same nodes for every architecture (the spaces whose cells concatenate
every intermediate node; loose-end spaces, whose output width differs by architecture, do not batch).
"""

from __future__ import annotations

import torch

from zcpipe.workers.batched.network import BatchedNetwork, Choice
from zcpipe.workers.spaces.nds import NdsCell, NetworkCIFAR


class BatchedDarts(BatchedNetwork):
    """B `NetworkCIFAR`s of one width, depth, class count and cell output, computed together."""

    def __init__(self, nets: list[NetworkCIFAR], device: torch.device | str | None = None):
        if not nets or not all(isinstance(n, NetworkCIFAR) for n in nets):
            raise TypeError("BatchedDarts takes a non-empty list of NDS NetworkCIFARs")
        super().__init__(nets, device)
        every = self._every
        self._cells = []
        for i, cell in enumerate(nets[0].cells):
            cells: list[NdsCell] = [n.cells[i] for n in nets]
            pre0 = self._compile([c.preprocess0 for c in cells], every)
            pre1 = self._compile([c.preprocess1 for c in cells], every)
            slots = [self._slot(cells, k) for k in range(len(cell.edge_ops))]
            self._cells.append((pre0, pre1, slots, cell.concat, cell.reduction))
        self._layer([n.classifier for n in nets], every)

    def _slot(self, cells: list[NdsCell], k: int) -> Choice:
        def stride(c: NdsCell) -> int:
            return 2 if c.reduction and c.inputs[k] < 2 else 1

        return self._choice([(c.ops[k], c.inputs[k], stride(c), c.edge_ops[k]) for c in cells])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self._run(self._stem, self._replicated(x))
        for pre0, pre1, slots, concat, reduction in self._cells:
            states = [self._run(pre0, s0), self._run(pre1, s1)]
            for a in range(0, len(slots), 2):
                picks = [self._run_choice(slots[a], states), self._run_choice(slots[a + 1], states)]
                picks = [p for p in picks if p is not None]
                if not picks:  # every architecture picked `none` twice
                    states.append(self._zeros(states[0], 2 if reduction else 1))
                else:
                    states.append(picks[0] if len(picks) == 1 else picks[0] + picks[1])
            n, _, h, w = states[-1].shape
            s0, s1 = s1, torch.stack([states[i].view(n, self.n_archs, -1, h, w) for i in concat], 2).view(n, -1, h, w)
        return s1

"""The NDS spaces (Radosavovic et al. 2019): DARTS-style CIFAR networks of normal/reduction cells.

Each space fixes its op set, nodes per cell and how a cell's output is formed ("all": every
intermediate node is concatenated, as DARTS and PNAS; "loose_end": only nodes no other node reads,
as ENAS, NASNet and Amoeba). The network is DARTS's `NetworkCIFAR` (stem of 3C channels, reductions
at 1/3 and 2/3 of the depth, no auxiliary head).

Arch key: `normal=op~in,op~in|...;reduce=...`, each node's two inputs sorted, since the node sums them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from zcpipe.workers.spaces.base import ArchError, ArchGraph, BuildOptions, SearchSpace, tag
from zcpipe.workers.spaces.nds_ops import FactorizedReduce, ReLUConvBN, make_op, op_parts
from zcpipe.workers.spaces.registry import SPACES

Pair = tuple[str, int]
Cell = tuple[tuple[Pair, Pair], ...]


@dataclass(frozen=True)
class NdsDefinition:
    ops: tuple[str, ...]
    nodes: int
    merge: str  # all | loose_end


# Op sets and cell structure as pycls' NAS genotypes and NDS define them.
DEFINITIONS = {
    "nds-darts": NdsDefinition(
        (
            "max_pool_3x3",
            "avg_pool_3x3",
            "skip_connect",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "dil_conv_3x3",
            "dil_conv_5x5",
        ),
        4,
        "all",
    ),
    "nds-enas": NdsDefinition(
        ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"), 5, "loose_end"
    ),
    "nds-nasnet": NdsDefinition(
        (
            "skip_connect",
            "conv_3x1_1x3",
            "conv_7x1_1x7",
            "dil_conv_3x3",
            "avg_pool_3x3",
            "max_pool_3x3",
            "max_pool_5x5",
            "max_pool_7x7",
            "conv_1x1",
            "conv_3x3",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "sep_conv_7x7",
        ),
        5,
        "loose_end",
    ),
    "nds-amoeba": NdsDefinition(
        (
            "skip_connect",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "sep_conv_7x7",
            "avg_pool_3x3",
            "max_pool_3x3",
            "dil_sep_conv_3x3",
            "conv_7x1_1x7",
        ),
        5,
        "loose_end",
    ),
    "nds-pnas": NdsDefinition(
        (
            "sep_conv_3x3",
            "sep_conv_5x5",
            "sep_conv_7x7",
            "conv_7x1_1x7",
            "skip_connect",
            "avg_pool_3x3",
            "max_pool_3x3",
            "dil_conv_3x3",
        ),
        5,
        "all",
    ),
}

_KEY_RE = re.compile(r"^normal=(.+);reduce=(.+)$")


def concat_of(cell: Cell, merge: str) -> list[int]:
    nodes = range(2, len(cell) + 2)
    if merge == "all":
        return list(nodes)
    used = {i for pair in cell for _, i in pair}
    return [n for n in nodes if n not in used]


class NdsSpace(SearchSpace):
    def __init__(self, name: str, width: int = 16, depth: int = 8):
        self.name = name
        self.d = DEFINITIONS[name]
        if width < 2 or width % 2 or depth < 3:
            raise ArchError(f"{name}: width must be even and at least 2, depth at least 3")
        self.width, self.depth = width, depth
        # Cells that concatenate every node have one output width for every architecture, so their
        # networks batch (workers/batched/darts.py); loose-end cells' widths differ.
        self.batches = self.d.merge == "all"

    def params(self) -> dict[str, Any]:
        return {"width": self.width, "depth": self.depth}

    # ------------------------------------------------------------------ keys

    def _check_cell(self, raw, which: str, text: str) -> Cell:
        pairs = [(str(op), int(i)) for op, i in raw]
        if len(pairs) != 2 * self.d.nodes:
            raise ArchError(f"{self.name} arch {text[:80]!r}: {which} needs {2 * self.d.nodes} (op, input) pairs")
        for k, (op, i) in enumerate(pairs):
            node = k // 2
            if op not in self.d.ops:
                raise ArchError(f"{self.name} arch has op {op!r} outside the space; ops are {', '.join(self.d.ops)}")
            if not 0 <= i < node + 2:
                raise ArchError(f"{self.name} arch: {which} node {node + 2} reads state {i}; it may read 0..{node + 1}")
        return tuple(
            tuple(sorted((pairs[2 * n], pairs[2 * n + 1]), key=lambda p: (p[1], p[0]))) for n in range(self.d.nodes)
        )

    def _decode(self, text: str) -> tuple[Cell, Cell]:
        t = text.strip()
        m = _KEY_RE.match(t)
        if m:
            try:
                cells = [
                    [(p.split("~")[0], int(p.split("~")[1])) for node in part.split("|") for p in node.split(",")]
                    for part in m.groups()
                ]
            except (IndexError, ValueError):
                raise ArchError(f"malformed {self.name} arch key {t[:80]!r}") from None
        else:
            try:
                g = json.loads(t)
                cells = [g["normal"], g["reduce"]]
            except (ValueError, KeyError, TypeError):
                raise ArchError(
                    f"malformed {self.name} arch {t[:80]!r}: expected normal=op~in,op~in|...;reduce=... or a "
                    'JSON genotype {"normal": [[op, input], ...], "reduce": [...]}'
                ) from None
            for which in ("normal", "reduce"):
                given = g.get(f"{which}_concat")
                cell = self._check_cell(g[which], which, t)
                if given is not None and sorted(given) != concat_of(cell, self.d.merge):
                    raise ArchError(
                        f"{self.name} arch: {which}_concat {given} disagrees with the space's "
                        f"{self.d.merge!r} rule ({concat_of(cell, self.d.merge)})"
                    )
        return self._check_cell(cells[0], "normal", t), self._check_cell(cells[1], "reduce", t)

    @staticmethod
    def _encode(normal: Cell, reduce: Cell) -> str:
        def part(cell: Cell) -> str:
            return "|".join(",".join(f"{op}~{i}" for op, i in node) for node in cell)

        return f"normal={part(normal)};reduce={part(reduce)}"

    def parse(self, text: str) -> str:
        return self._encode(*self._decode(text))

    def sample(self, n: int, seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        out: dict[str, None] = {}
        while len(out) < n:
            cells = []
            for _ in range(2):
                cells.append(
                    [
                        (self.d.ops[rng.integers(len(self.d.ops))], int(rng.integers(k // 2 + 2)))
                        for k in range(2 * self.d.nodes)
                    ]
                )
            out[self._encode(self._check_cell(cells[0], "normal", ""), self._check_cell(cells[1], "reduce", ""))] = None
        return list(out)

    # ------------------------------------------------------------------ network

    def _reductions(self) -> set[int]:
        return {self.depth // 3, 2 * self.depth // 3}

    def build(self, arch: str, options: BuildOptions) -> nn.Module:
        normal, reduce = self._decode(arch)
        return NetworkCIFAR(self, normal, reduce, options.num_classes, options.input_shape[0])

    def graph(self, arch: str) -> ArchGraph:
        # Both cells, side by side: per cell its two inputs, one node per edge op, and its output.
        ops: list[str] = []
        blocks = []
        for cell in self._decode(arch):
            names = ["input_prev_prev", "input_prev"] + [op for node in cell for op, _ in node] + ["output"]
            size = len(names)
            adj = np.zeros((size, size), dtype=np.int8)
            for n, node in enumerate(cell):
                for e, (_, src) in enumerate(node):
                    me = 2 + 2 * n + e
                    for s in [src] if src < 2 else [2 + 2 * (src - 2), 3 + 2 * (src - 2)]:
                        adj[s, me] = 1
            for c in concat_of(cell, self.d.merge):
                adj[2 + 2 * (c - 2), size - 1] = adj[3 + 2 * (c - 2), size - 1] = 1
            ops += names
            blocks.append(adj)
        total = sum(b.shape[0] for b in blocks)
        adj = np.zeros((total, total), dtype=np.int8)
        off = 0
        for b in blocks:
            adj[off : off + b.shape[0], off : off + b.shape[0]] = b
            off += b.shape[0]
        return ArchGraph(ops=ops, adjacency=adj)

    def node_slots(self, arch: str) -> list[list[str]]:
        # Node order of `graph`: per cell kind its two inputs, one node per edge op, its output.
        red = self._reductions()
        nodes: list[list[str]] = []
        for cell, is_red in zip(self._decode(arch), (False, True), strict=True):
            cells = [i for i in range(self.depth) if (i in red) == is_red]
            pre0 = []
            for i in cells:
                parts = ("fr1", "fr2") if (i - 1) in red else ("conv",)
                pre0 += [f"cell{i:02d}/pre0/{p}" for p in parts]
            nodes += [pre0, [f"cell{i:02d}/pre1/conv" for i in cells]]
            for n, node in enumerate(cell):
                for e, (op, src) in enumerate(node):
                    parts = op_parts(op, is_red and src < 2)
                    nodes.append([f"cell{i:02d}/node{n + 2}/e{e}/{op}/{p}" for i in cells for p in parts])
            nodes.append([])
        return nodes

    def slots(self) -> list[str]:
        out = ["stem/conv"]
        red = self._reductions()
        for i in range(self.depth):
            c = f"cell{i:02d}"
            out += [f"{c}/pre0/fr1", f"{c}/pre0/fr2"] if (i - 1) in red else [f"{c}/pre0/conv"]
            out.append(f"{c}/pre1/conv")
            for n in range(self.d.nodes):
                for e in range(2):
                    for op in self.d.ops:
                        out += [f"{c}/node{n + 2}/e{e}/{op}/{p}" for p in op_parts(op, i in red)]
        out.append("classifier")
        return out


class NdsCell(nn.Module):
    def __init__(
        self, cell: Cell, merge: str, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, prefix: str
    ):
        super().__init__()
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_pp, c, f"{prefix}/pre0", "factorized_reduce")
        else:
            self.preprocess0 = ReLUConvBN(c_pp, c, 1, 1, 0, f"{prefix}/pre0/conv", "conv_1x1")
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, f"{prefix}/pre1/conv", "conv_1x1")
        self.inputs = [i for node in cell for _, i in node]
        self.ops = [op for node in cell for op, _ in node]  # what the batched path groups by
        self.reduction = reduction
        self.edge_ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and i < 2 else 1, f"{prefix}/node{n + 2}/e{e}")
            for n, node in enumerate(cell)
            for e, (op, i) in enumerate(node)
        )
        self.concat = concat_of(cell, merge)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for n in range(len(self.edge_ops) // 2):
            a, b = 2 * n, 2 * n + 1
            states.append(self.edge_ops[a](states[self.inputs[a]]) + self.edge_ops[b](states[self.inputs[b]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class NetworkCIFAR(nn.Module):
    def __init__(self, space: NdsSpace, normal: Cell, reduce: Cell, num_classes: int, in_channels: int):
        super().__init__()
        c = space.width
        c_cur = 3 * c
        self.stem = nn.Sequential(
            tag(nn.Conv2d(in_channels, c_cur, 3, padding=1, bias=False), "stem/conv", "conv_3x3"), nn.BatchNorm2d(c_cur)
        )
        c_pp, c_p, c_cur = c_cur, c_cur, c
        cells = []
        reduction_prev = False
        for i in range(space.depth):
            reduction = i in space._reductions()
            if reduction:
                c_cur *= 2
            cell = NdsCell(
                reduce if reduction else normal,
                space.d.merge,
                c_pp,
                c_p,
                c_cur,
                reduction,
                reduction_prev,
                f"cell{i:02d}",
            )
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_cur
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = tag(nn.Linear(c_p, num_classes), "classifier", "linear")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return s1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.features(x)).flatten(1))


def _factory(name: str):
    def make(width: int = 16, depth: int = 8) -> NdsSpace:
        return NdsSpace(name, width, depth)

    return make


for _name in DEFINITIONS:
    SPACES.register(_name)(_factory(_name))

# NAS-Bench-301's training network: DARTS cells in NetworkCIFAR with C=32 and 8 cells (reductions at
# cells 2 and 5), the network `../shared/data/darts/labels.jsonl` was trained as. Its rows are stored
# under space `nds-darts`, so the DARTS labels (imported for nds-darts) join them.
NB301_PARAMS = {"width": 32, "depth": 8}


@SPACES.register("nb301")
def _nb301() -> NdsSpace:
    return NdsSpace("nds-darts", **NB301_PARAMS)

"""NAS-Bench-201 (NATS-Bench TSS): the cell string, its network as the benchmark trained it, slots.

The network mirrors xautodl's `TinyNetwork` / `InferCell` / `ResNetBasicblock`
(C=16, N=5 cells per stage, residual reduction blocks), which is what the
benchmark's `params` column counts; tests check all 15,625 cells against it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from zcpipe.workers.spaces.base import ArchError, ArchGraph, BuildOptions, SearchSpace, tag
from zcpipe.workers.spaces.registry import SPACES

# NB201's own op order (xautodl's NAS_BENCH_201); enumeration and sampling index into it.
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
CONV_OPS = ("nor_conv_3x3", "nor_conv_1x1")
# (to, from) in the order the cell string lists them.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
# NASLib's op-index encoding: its own op order and edge order ((from+1, to+1) pairs).
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
NUM_ARCHS = len(OPS) ** len(EDGES)

_NODE_RE = re.compile(r"^\|(.+)\|$")


def parse_cell(text: str) -> tuple[str, ...]:
    """The six edge ops of a cell string, in `EDGES` order; ArchError on anything malformed."""
    s = text.strip()
    nodes = s.split("+")
    hint = "expected a cell string like |nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|"
    if len(nodes) != 3:
        raise ArchError(f"malformed NB201 arch {text!r}: {hint}")
    ops: list[str] = []
    for to, node in enumerate(nodes, start=1):
        m = _NODE_RE.match(node)
        if not m:
            raise ArchError(f"malformed NB201 arch {text!r}: node {to} is {node!r}; {hint}")
        entries = m.group(1).split("|")
        if len(entries) != to:
            raise ArchError(f"malformed NB201 arch {text!r}: node {to} needs {to} inputs; {hint}")
        for frm, entry in enumerate(entries):
            op, _, src = entry.partition("~")
            if op not in OPS:
                raise ArchError(f"NB201 arch {text!r} has unknown op {op!r}; ops are {', '.join(OPS)}")
            if src != str(frm):
                raise ArchError(f"malformed NB201 arch {text!r}: edge {entry!r} should read from {frm}")
            ops.append(op)
    return tuple(ops)


def cell_string(ops: tuple[str, ...] | list[str]) -> str:
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def to_naslib(arch: str) -> tuple[int, ...]:
    """NASLib's `op_indices` tuple (its `convert_str_to_op_indices`)."""
    by_edge = dict(zip(EDGES, parse_cell(arch), strict=True))
    return tuple(NASLIB_OPS.index(by_edge[(to - 1, frm - 1)]) for frm, to in NASLIB_EDGES)


def from_naslib(indices: tuple[int, ...] | list[int]) -> str:
    if len(indices) != 6 or any(not 0 <= int(i) < len(NASLIB_OPS) for i in indices):
        raise ArchError(f"NASLib NB201 op indices must be six ints in 0..4, got {indices!r}")
    by_edge = {(to - 1, frm - 1): NASLIB_OPS[int(i)] for (frm, to), i in zip(NASLIB_EDGES, indices, strict=True)}
    return cell_string([by_edge[e] for e in EDGES])


def ordinal_to_arch(i: int) -> str:
    """The i-th cell of zcpipe's enumeration (base-5 digits over `OPS`, first edge most significant)."""
    digits = []
    for _ in EDGES:
        i, d = divmod(i, len(OPS))
        digits.append(OPS[d])
    return cell_string(digits[::-1])


class BenchmarkIndex:
    """The official benchmark index <-> cell string, read from a file that lists both.

    The benchmark's index order is a shuffle fixed by its release, so it cannot be
    derived; it comes from the benchmark file the user has (or the shared labels CSV).
    """

    def __init__(self, arch_by_index: dict[int, str]):
        self.arch_by_index = arch_by_index
        self.index_by_arch = {a: i for i, a in arch_by_index.items()}

    @classmethod
    def from_rows(cls, rows: list[tuple[int, str]]) -> BenchmarkIndex:
        return cls({int(i): cell_string(parse_cell(a)) for i, a in rows})

    def index(self, arch: str) -> int:
        return self.index_by_arch[cell_string(parse_cell(arch))]

    def arch(self, index: int) -> str:
        return self.arch_by_index[index]


# ---------------------------------------------------------------------------- network


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, slot: str, op: str):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            tag(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False), slot, op),
            nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _edge_op(op: str, channels: int, slot_prefix: str) -> nn.Module:
    # Inside NB201 cells C_in == C_out and stride 1, so pooling needs no 1x1 preprocess
    # and skip_connect is a plain identity (no FactorizedReduce), as in xautodl.
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    k = 3 if op == "nor_conv_3x3" else 1
    return ReLUConvBN(channels, channels, k, 1, k // 2, f"{slot_prefix}/{op}/conv", op)


class InferCell(nn.Module):
    def __init__(self, ops: tuple[str, ...], channels: int, cell_index: int):
        super().__init__()
        self.edges = nn.ModuleList(
            _edge_op(op, channels, f"cell{cell_index:02d}/edge{to}<-{frm}")
            for op, (to, frm) in zip(ops, EDGES, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for to in (1, 2, 3):
            total = None
            for frm in range(to):
                y = self.edges[k](nodes[frm])
                total = y if total is None else total + y
                k += 1
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cell_index: int):
        super().__init__()
        p = f"cell{cell_index:02d}/resblock"
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, f"{p}/conv_a", "conv_3x3")
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, f"{p}/conv_b", "conv_3x3")
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            tag(nn.Conv2d(c_in, c_out, 1, bias=False), f"{p}/downsample", "conv_1x1"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def _layout(c: int, n: int) -> list[tuple[int, bool]]:
    return [(c, False)] * n + [(2 * c, True)] + [(2 * c, False)] * n + [(4 * c, True)] + [(4 * c, False)] * n


class TinyNetwork(nn.Module):
    def __init__(self, ops: tuple[str, ...], c: int, n: int, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = nn.Sequential(
            tag(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), "stem/conv", "conv_3x3"),
            nn.BatchNorm2d(c),
        )
        cells: list[nn.Module] = []
        c_prev = c
        for i, (c_cur, reduction) in enumerate(_layout(c, n)):
            cells.append(ResNetBasicBlock(c_prev, c_cur, i) if reduction else InferCell(ops, c_cur, i))
            c_prev = c_cur
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = tag(nn.Linear(c_prev, num_classes), "classifier", "linear")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.lastact(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.features(x)).flatten(1))


# ---------------------------------------------------------------------------- space


def supernet_graph(edge_ops: list[list[str]]) -> ArchGraph:
    """Operator nodes (TG-NAS reads operator-labelled nodes): input, one node per op on each edge (one op
    per edge for a cell; several in a pruning search's supernet, where an edge sums its ops), output.
    Every op of edge (to, from) feeds every op of the edges leaving node `to`."""
    if len(edge_ops) != len(EDGES) or not all(edge_ops):
        raise ArchError(f"an NB201 cell has {len(EDGES)} edges, each with at least one op")
    ops = ["input"]
    nodes_of_edge = []
    for candidates in edge_ops:
        nodes_of_edge.append(list(range(len(ops), len(ops) + len(candidates))))
        ops += candidates
    ops.append("output")
    adj = np.zeros((len(ops), len(ops)), dtype=np.int8)
    for k, (to, frm) in enumerate(EDGES):
        feeders = [0] if frm == 0 else [n for j, (t2, _) in enumerate(EDGES) if t2 == frm for n in nodes_of_edge[j]]
        for f in feeders:
            adj[f, nodes_of_edge[k]] = 1
        if to == 3:
            adj[nodes_of_edge[k], len(ops) - 1] = 1
    return ArchGraph(ops=ops, adjacency=adj)


@SPACES.register("nb201")
class NB201(SearchSpace):
    name = "nb201"
    batches = True  # one skeleton for every cell (workers/batched/nb201.py)

    def __init__(self, channels: int = 16, cells_per_stage: int = 5):
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    def params(self) -> dict[str, Any]:
        return {"channels": self.channels, "cells_per_stage": self.cells_per_stage}

    def parse(self, text: str) -> str:
        t = text.strip()
        if t.startswith("("):
            try:
                return from_naslib([int(v) for v in t.strip("()").split(",") if v.strip()])
            except ValueError as e:
                raise ArchError(f"malformed NASLib op tuple {text!r}: {e}") from None
        return cell_string(parse_cell(t))

    def isomorphism_key(self, arch: str) -> str:
        """NAS-Bench-201's own rule for identical cells (xautodl `Structure.to_unique_str(consider_zero=True)`),
        which gives the benchmark's 6,466 unique cells of 15,625: each node is the sorted sum of its input
        terms, a skip edge passes its input's expression on, and a `none` edge, or any edge from a node that
        is exactly one zero term, is a zero term. A node whose terms are all zero is not collapsed to zero
        (the benchmark's count keeps that distinction; collapsing it and dropping zero terms gives 5,390)."""
        ops = parse_cell(arch)
        nodes = ["0"]
        for to in range(1, 4):
            terms = []
            for (t, src), op in zip(EDGES, ops, strict=True):
                if t != to:
                    continue
                if op == "none" or nodes[src] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(nodes[src])
                else:
                    terms.append(f"({nodes[src]})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[3]

    def enumerate(self) -> Iterator[str]:
        for ops in itertools.product(OPS, repeat=len(EDGES)):
            yield cell_string(ops)

    def sample(self, n: int, seed: int) -> list[str]:
        if not 0 < n <= NUM_ARCHS:
            raise ArchError(
                f"nb201 has {NUM_ARCHS} cells; `limit` must be between 1 and {NUM_ARCHS}", options=["limit"]
            )
        # The first n of one seeded permutation: a larger `limit` only adds cells to a smaller one's.
        picks = np.random.default_rng(seed).permutation(NUM_ARCHS)[:n]
        return [ordinal_to_arch(int(i)) for i in picks]

    def build(self, arch: str, options: BuildOptions) -> nn.Module:
        return TinyNetwork(
            parse_cell(arch), self.channels, self.cells_per_stage, options.num_classes, options.input_shape[0]
        )

    def graph(self, arch: str) -> ArchGraph:
        return supernet_graph([[op] for op in parse_cell(arch)])

    def supernet_edges(self) -> list[list[str]]:
        return [list(OPS) for _ in EDGES]

    def supernet_graph(self, edge_ops: list[list[str]]) -> ArchGraph:
        return supernet_graph(edge_ops)

    def cell_of(self, edge_ops: list[str]) -> str:
        return cell_string(edge_ops)

    def node_slots(self, arch: str) -> list[list[str]]:
        cells = [i for i, (_, reduction) in enumerate(_layout(self.channels, self.cells_per_stage)) if not reduction]
        edge_nodes = [
            [f"cell{i:02d}/edge{to}<-{frm}/{op}/conv" for i in cells] if op in CONV_OPS else []
            for (to, frm), op in zip(EDGES, parse_cell(arch), strict=True)
        ]
        return [["stem/conv"], *edge_nodes, ["classifier"]]

    def slots(self) -> list[str]:
        out = ["stem/conv"]
        for i, (_, reduction) in enumerate(_layout(self.channels, self.cells_per_stage)):
            if reduction:
                out += [f"cell{i:02d}/resblock/{n}" for n in ("conv_a", "conv_b", "downsample")]
            else:
                out += [f"cell{i:02d}/edge{to}<-{frm}/{op}/conv" for to, frm in EDGES for op in CONV_OPS]
        out.append("classifier")
        return out
